"""The functional ops a construct calls (``F.conv2d(x, w)``): each appends one
op to the graph being captured and returns its output Value(s)."""
from __future__ import annotations

from msprof.runtime.autodiff import gradients  # noqa: F401  (F.gradients)
from msprof.runtime.graph import builder
from msprof.runtime.ops_conv import Conv2D
from msprof.runtime.ops_math import Add, AddN, BiasAdd, MatMul, Mul, Reshape
from msprof.runtime.ops_nn import ReLU, SoftmaxCrossEntropyWithLogits
from msprof.runtime.ops_optim import Adam, ApplyGradientDescent, ApplyMomentum
from msprof.runtime.ops_pool import AvgPool, MaxPool


def _pair(k):
    return (k, k) if isinstance(k, int) else tuple(k)


def matmul(a, b, transpose_a=False, transpose_b=False):
    return builder().add(MatMul, (a, b), transpose_a=transpose_a, transpose_b=transpose_b)


def bias_add(x, b):
    return builder().add(BiasAdd, (x, b))


def add(a, b):
    return builder().add(Add, (a, b))


def addn(*xs):
    return builder().add(AddN, xs)


def mul(x, scale):
    return builder().add(Mul, (x, scale))


def reshape(x, shape):
    return builder().add(Reshape, (x,), shape=tuple(shape))


def flatten(x):
    x = builder().value(x)
    return reshape(x, (x.shape[0], -1))


def conv2d(x, w, stride=1, pad=0):
    b = builder()
    w = b.value(w)
    return b.add(Conv2D, (x, w), kernel=tuple(w.shape[2:]), stride=stride, pad=pad)


def max_pool(x, kernel, stride=None):
    return builder().add(MaxPool, (x,), kernel=kernel, stride=stride or kernel)


def avg_pool(x, kernel, stride=None):
    return builder().add(AvgPool, (x,), kernel=kernel, stride=stride or kernel)


def relu(x):
    return builder().add(ReLU, (x,))


def softmax_cross_entropy(logits, labels):
    """(mean loss, d loss / d logits) for int labels."""
    return builder().add(SoftmaxCrossEntropyWithLogits, (logits, labels))


def apply_gradient_descent(var, lr, grad):
    builder().add(ApplyGradientDescent, (var, lr, grad))


def apply_momentum(var, accum, lr, grad, momentum):
    builder().add(ApplyMomentum, (var, accum, lr, grad), momentum=momentum)


def adam(var, m, v, powers, lr, grad, beta1, beta2, eps):
    builder().add(Adam, (var, m, v, powers, lr, grad), beta1=beta1, beta2=beta2, eps=eps)
