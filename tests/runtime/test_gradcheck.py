"""Every differentiable op's backward graph against central finite differences.

The graph under test computes y = f(inputs, params) and, through autodiff,
the vector-Jacobian product of y with a random ``sens``: exactly the
gradient of sum(y * sens), which finite differences estimate by running the
same compiled graph on perturbed inputs and parameters.
"""
from __future__ import annotations

import numpy as np
import pytest

from msprof.runtime import functional as F
from msprof.runtime import nn
from msprof.runtime.tensor import Parameter

EPS = 1e-2


class VJP(nn.Cell):
    def __init__(self, fn, params, n_inputs, wrt_inputs, scalar):
        super().__init__()
        self.fn, self.plist, self.n, self.wrt, self.scalar = fn, params, n_inputs, wrt_inputs, scalar
        for i, p in enumerate(params):
            setattr(self, f"p{i}", p)

    def construct(self, *args):
        xs = args[:self.n]
        y = self.fn(*xs, *self.plist)
        sens = None if self.scalar else args[self.n]
        wrt = [xs[i] for i in self.wrt] + list(self.plist)
        return (y, *F.gradients(y, wrt, sens=sens))


def gradcheck(fn, inputs, params=(), wrt=None, rng=None, scalar=False, tol=2e-2):
    inputs = [np.asarray(x) for x in inputs]
    params = [Parameter(p) for p in params]
    wrt = [i for i, x in enumerate(inputs) if x.dtype.kind == "f"] if wrt is None else wrt
    cell = VJP(fn, params, len(inputs), wrt, scalar)
    probe = fn_shape(cell, inputs, scalar)
    sens = None if scalar else rng.standard_normal(probe).astype(np.float32)
    feed = inputs + ([] if scalar else [sens])
    y, *grads = [t.asnumpy() for t in cell(*feed)]

    def objective():
        out = cell(*feed)[0].asnumpy().astype(np.float64)
        return float(out) if scalar else float((out * sens).sum())

    targets = [inputs[i] for i in wrt] + [p.data for p in params]
    assert len(grads) == len(targets)
    for g, x in zip(grads, targets):
        assert g.shape == x.shape
        fd = np.zeros(x.shape)
        for idx in np.ndindex(x.shape):
            keep = x[idx]
            x[idx] = keep + EPS
            hi = objective()
            x[idx] = keep - EPS
            lo = objective()
            x[idx] = keep
            fd[idx] = (hi - lo) / (2 * EPS)
        np.testing.assert_allclose(g, fd, rtol=tol, atol=tol * max(1.0, np.abs(fd).max()))
    return y


def fn_shape(cell, inputs, scalar):
    """The output shape of the cell's fn, from a capture without running."""
    from msprof.runtime.graph import GraphBuilder
    with GraphBuilder("shape") as b:
        xs = [b.input(x.shape, x.dtype) for x in inputs]
        return cell.fn(*xs, *cell.plist).shape


def spread(rng, shape, gap=0.05):
    """Distinct values at least ``gap`` apart, away from 0: no kinks within EPS."""
    n = int(np.prod(shape))
    v = (np.arange(n) - n / 2 + 0.5) * gap
    v[np.abs(v) < 2 * EPS] += 3 * EPS
    return rng.permutation(v).reshape(shape).astype(np.float32)


@pytest.mark.parametrize("ta,tb", [(False, False), (False, True), (True, False), (True, True)])
def test_matmul(inline, rng, ta, tb):
    a = rng.standard_normal((4, 3) if ta else (3, 4)).astype(np.float32)
    b = rng.standard_normal((5, 4) if tb else (4, 5)).astype(np.float32)
    y = gradcheck(lambda a, b: F.matmul(a, b, ta, tb), [a, b], rng=rng)
    np.testing.assert_allclose(y, (a.T if ta else a) @ (b.T if tb else b), rtol=1e-5)


def test_matmul_against_parameter(inline, rng):
    x = rng.standard_normal((3, 4)).astype(np.float32)
    w = rng.standard_normal((2, 4)).astype(np.float32)
    gradcheck(lambda x, w: F.matmul(x, w, transpose_b=True), [x], [w], rng=rng)


@pytest.mark.parametrize("shape", [(3, 4), (2, 3, 4, 4)])
def test_bias_add(inline, rng, shape):
    x = rng.standard_normal(shape).astype(np.float32)
    b = rng.standard_normal(shape[1]).astype(np.float32)
    gradcheck(F.bias_add, [x], [b], rng=rng)


@pytest.mark.parametrize("stride,pad", [(1, 0), (2, 1), (1, 2)])
def test_conv2d(inline, rng, stride, pad):
    x = rng.standard_normal((2, 2, 7, 6)).astype(np.float32)
    w = rng.standard_normal((3, 2, 3, 3)).astype(np.float32)
    y = gradcheck(lambda x, w: F.conv2d(x, w, stride, pad), [x], [w], rng=rng)
    # and the forward values against a direct loop
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    ref = np.zeros_like(y)
    for i in range(y.shape[2]):
        for j in range(y.shape[3]):
            win = xp[:, :, i * stride:i * stride + 3, j * stride:j * stride + 3]
            ref[:, :, i, j] = np.einsum("nchw,ochw->no", win, w)
    np.testing.assert_allclose(y, ref, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("k,s", [(2, 2), (3, 1), (3, 2)])
def test_max_pool(inline, rng, k, s):
    x = spread(rng, (2, 2, 7, 7))
    y = gradcheck(lambda x: F.max_pool(x, k, s), [x], rng=rng)
    oh = (7 - k) // s + 1
    ref = np.array([[[[x[n, c, i * s:i * s + k, j * s:j * s + k].max() for j in range(oh)]
                      for i in range(oh)] for c in range(2)] for n in range(2)])
    np.testing.assert_array_equal(y, ref)


@pytest.mark.parametrize("k,s", [(2, 2), (3, 2)])
def test_avg_pool(inline, rng, k, s):
    x = rng.standard_normal((2, 2, 7, 7)).astype(np.float32)
    gradcheck(lambda x: F.avg_pool(x, k, s), [x], rng=rng)


def test_relu(inline, rng):
    gradcheck(F.relu, [spread(rng, (3, 5))], rng=rng)


def test_reshape_and_flatten(inline, rng):
    x = rng.standard_normal((2, 3, 2, 2)).astype(np.float32)
    y = gradcheck(F.flatten, [x], rng=rng)
    assert y.shape == (2, 12)


def test_fan_out_accumulates_with_addn(inline, rng):
    """A value read by three ops gets the sum of three gradients (AddN)."""
    x = spread(rng, (3, 4))
    fn = lambda x: F.add(F.add(F.relu(x), x), F.matmul(x, np.eye(4, dtype=np.float32)))  # noqa
    gradcheck(fn, [x], rng=rng)


def test_mul_by_one_element(inline, rng):
    x = rng.standard_normal((3, 4)).astype(np.float32)
    s = np.array([1.5], np.float32)
    gradcheck(lambda x, s: F.mul(x, s), [x, s], wrt=[0], rng=rng)


def test_softmax_cross_entropy(inline, rng):
    logits = rng.standard_normal((5, 4)).astype(np.float32)
    labels = np.array([0, 3, 1, 1, 2], np.int32)
    loss = gradcheck(lambda z, t: F.softmax_cross_entropy(z, t)[0], [logits, labels],
                     wrt=[0], scalar=True, rng=rng)
    p = np.exp(logits - logits.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    assert loss == pytest.approx(-np.log(p[np.arange(5), labels]).mean(), rel=1e-5)


def test_lenet_end_to_end(inline, rng):
    """The whole LeNet loss against finite differences, on a few weights (a
    smaller step: across a whole network ReLU and max-pool switches are near)."""
    eps = 3e-3
    from .nets import LeNet5
    net = LeNet5()
    loss_net = nn.WithLossCell(net, nn.SoftmaxCrossEntropyWithLogits())
    x = rng.standard_normal((2, 1, 32, 32)).astype(np.float32)
    t = np.array([3, 7], np.int32)
    params = net.trainable_params()

    class Grad(nn.Cell):
        def __init__(self):
            super().__init__()
            self.inner = loss_net

        def construct(self, x, t):
            loss = self.inner(x, t)
            return (loss, *F.gradients(loss, params))

    cell = Grad()
    loss, *grads = [g.asnumpy() for g in cell(x, t)]
    for p, g in zip(params, grads):
        flat = p.data.reshape(-1)
        for i in rng.choice(flat.size, size=3, replace=False):
            keep = flat[i]
            flat[i] = keep + eps
            hi = float(cell(x, t)[0])
            flat[i] = keep - eps
            lo = float(cell(x, t)[0])
            flat[i] = keep
            fd = (hi - lo) / (2 * eps)
            assert g.reshape(-1)[i] == pytest.approx(fd, rel=3e-2, abs=1e-3), p.name
