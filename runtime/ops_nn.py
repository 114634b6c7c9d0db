"""Activations and the classification loss: ReLU, ReluGrad, SoftmaxCrossEntropyWithLogits."""
from __future__ import annotations

from functools import partial

import numpy as np

from msprof.runtime.graph import builder
from msprof.runtime.ops_math import Mul
from msprof.runtime.primitive import ONE, Primitive


class ReLU(Primitive):
    type = "ReLU"

    @staticmethod
    def infer(op):
        return [(op.inputs[0].shape, np.float32)]

    @staticmethod
    def flops(op):
        return op.inputs[0].size

    @staticmethod
    def bind(op, ins, outs, ws):
        return partial(np.maximum, ins[0], np.float32(0.0), out=outs[0])

    @staticmethod
    def grad(op, douts, needs):
        # From the output: y > 0 exactly where x > 0, and x may be dead by now.
        return [builder().add(ReluGrad, (douts[0], op.outputs[0]))]


class ReluGrad(Primitive):
    """dx = dy where y > 0, else 0."""
    type = "ReluGrad"

    @staticmethod
    def infer(op):
        return [(op.inputs[0].shape, np.float32)]

    @staticmethod
    def flops(op):
        return op.inputs[0].size

    @staticmethod
    def workspace(op):
        return [(op.inputs[0].shape, np.bool_)]

    @staticmethod
    def bind(op, ins, outs, ws):
        dy, y = ins
        dx, mask = outs[0], ws[0]

        def relu_grad():
            np.greater(y, 0.0, out=mask)
            np.multiply(dy, mask, out=dx)
        return relu_grad


class SoftmaxCrossEntropyWithLogits(Primitive):
    """Mean cross entropy of logits (N, K) against int labels (N,).

    Outputs (loss, backprop): like the fused kernels of real frameworks it
    computes d loss / d logits in the same pass, so the backward pass of
    the loss costs nothing more.
    """
    type = "SoftmaxCrossEntropyWithLogits"
    takes_seed = True   # its rule handles the ONE seed of a backward pass

    @staticmethod
    def infer(op):
        logits, labels = op.inputs
        if logits.ndim != 2 or labels.shape != logits.shape[:1] or labels.dtype.kind != "i":
            raise ValueError(f"logits (N, K) and int labels (N,): got {logits.shape}, "
                             f"{labels.shape} {labels.dtype}")
        return [((), np.float32), (logits.shape, np.float32)]

    @staticmethod
    def flops(op):
        return 5 * op.inputs[0].size

    @staticmethod
    def workspace(op):
        n = op.inputs[0].shape[0]
        return [((n, 1), np.float32), ((n, 1), np.float32)]

    @staticmethod
    def bind(op, ins, outs, ws):
        logits, labels = ins
        loss, prob = outs
        peak, total = ws
        n = logits.shape[0]
        rows = np.arange(n)
        inv_n = np.float32(1.0 / n)

        def softmax_cross_entropy():
            np.max(logits, axis=1, keepdims=True, out=peak)
            np.subtract(logits, peak, out=prob)
            np.exp(prob, out=prob)
            np.sum(prob, axis=1, keepdims=True, out=total)
            np.divide(prob, total, out=prob)
            # -log p[label] = log(sum) + peak - logit[label]
            picked = logits[rows, labels]
            loss[...] = (np.log(total[:, 0]) + peak[:, 0] - picked).mean()
            prob[rows, labels] -= 1.0
            np.multiply(prob, inv_n, out=prob)
        return softmax_cross_entropy

    @staticmethod
    def grad(op, douts, needs):
        dloss, dprob = douts
        if dprob is not None:
            raise NotImplementedError("the loss's backprop output is not differentiable")
        backprop = op.outputs[1]
        if dloss is ONE:
            return [backprop, None]
        return [builder().add(Mul, (backprop, dloss)), None]

