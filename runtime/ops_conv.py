"""2-D convolution (NCHW, im2col + matmul) and its two backward ops.

Layouts are chosen for numpy's inner loops: the column matrix is stored
transposed, (C*KH*KW, N*OH*OW), so im2col copies whole output rows and the
matmul result comes out channel-major.  Every buffer of a compiled graph is
fixed, so ``bind`` builds the window views once (sliding_window_view is slow
to create, cheap to copy from); scratch matrices are pool workspaces.
"""
from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from msprof.runtime.graph import builder
from msprof.runtime.primitive import Primitive, nelem


def out_hw(h, w, kh, kw, stride, pad):
    return (h + 2 * pad - kh) // stride + 1, (w + 2 * pad - kw) // stride + 1


def _geometry(op, x_shape, w_shape):
    n, c, h, w = x_shape
    o, _, kh, kw = w_shape
    s, p = op.attrs["stride"], op.attrs["pad"]
    oh, ow = out_hw(h, w, kh, kw, s, p)
    return n, c, h, w, o, kh, kw, s, p, oh, ow


def _im2col_workspace(op, x_shape, w_shape):
    """The transposed column matrix, a channel-major (O, N*OH*OW) matrix,
    and the zero-padded input when there is padding."""
    n, c, h, w, o, kh, kw, s, p, oh, ow = _geometry(op, x_shape, w_shape)
    ws = [((c * kh * kw, n * oh * ow), np.float32), ((o, n * oh * ow), np.float32)]
    if p:
        ws.append(((n, c, h + 2 * p, w + 2 * p), np.float32))
    return ws


def _im2col(op, x, cols_t, padded):
    """A callable filling cols_t (C*KH*KW, N*OH*OW) with x's windows."""
    n, c, h, w = x.shape
    kh, kw = op.attrs["kernel"]
    s, p = op.attrs["stride"], op.attrs["pad"]
    oh, ow = out_hw(h, w, kh, kw, s, p)
    src = padded if p else x
    windows = sliding_window_view(src, (kh, kw), axis=(2, 3))[:, :, ::s, ::s][:, :, :oh, :ow]
    windows = windows.transpose(1, 4, 5, 0, 2, 3)           # (c, kh, kw, n, oh, ow)
    cols6 = cols_t.reshape(c, kh, kw, n, oh, ow)
    if not p:
        return lambda: np.copyto(cols6, windows)
    inner = padded[:, :, p:p + h, p:p + w]

    def im2col():
        padded.fill(0.0)          # a pool workspace: its border is not zero
        np.copyto(inner, x)
        np.copyto(cols6, windows)
    return im2col


class Conv2D(Primitive):
    """out = conv(x, w); attrs kernel (kh, kw), stride, pad (symmetric)."""
    type = "Conv2D"

    @staticmethod
    def infer(op):
        x, w = op.inputs
        if x.ndim != 4 or w.ndim != 4 or x.shape[1] != w.shape[1]:
            raise ValueError(f"Conv2D input {x.shape} and weight {w.shape} (NCHW, OIHW)")
        n, c, h, wd, o, kh, kw, s, p, oh, ow = _geometry(op, x.shape, w.shape)
        if oh <= 0 or ow <= 0:
            raise ValueError(f"Conv2D kernel {kh}x{kw} larger than input {x.shape}")
        return [((n, o, oh, ow), np.float32)]

    @staticmethod
    def flops(op):
        o, c, kh, kw = op.inputs[1].shape
        return 2 * nelem(op.outputs[0].shape) * c * kh * kw

    @staticmethod
    def workspace(op):
        return _im2col_workspace(op, op.inputs[0].shape, op.inputs[1].shape)

    @staticmethod
    def bind(op, ins, outs, ws):
        x, w = ins
        out = outs[0]
        cols_t, res = ws[0], ws[1]
        im2col = _im2col(op, x, cols_t, ws[2] if len(ws) > 2 else None)
        wmat = w.reshape(w.shape[0], -1)
        n, o, oh, ow = out.shape
        res_nchw = res.reshape(o, n, oh, ow).transpose(1, 0, 2, 3)

        def conv2d():
            im2col()
            np.matmul(wmat, cols_t, out=res)
            np.copyto(out, res_nchw)
        return conv2d

    @staticmethod
    def grad(op, douts, needs):
        (dy,), (x, w) = douts, op.inputs
        b, a = builder(), op.attrs
        dx = b.add(Conv2DBackpropInput, (dy, w), x_shape=x.shape, **a) if needs[0] else None
        dw = b.add(Conv2DBackpropFilter, (dy, x), w_shape=w.shape, **a) if needs[1] else None
        return [dx, dw]


class Conv2DBackpropFilter(Primitive):
    """dw of a convolution from dy and x: dy (O, N*OH*OW) @ im2col(x)^T."""
    type = "Conv2DBackpropFilter"

    @staticmethod
    def infer(op):
        return [(op.attrs["w_shape"], np.float32)]

    @staticmethod
    def flops(op):
        o, c, kh, kw = op.attrs["w_shape"]
        return 2 * nelem(op.inputs[0].shape) * c * kh * kw

    @staticmethod
    def workspace(op):
        return _im2col_workspace(op, op.inputs[1].shape, op.attrs["w_shape"])

    @staticmethod
    def bind(op, ins, outs, ws):
        dy, x = ins
        dw = outs[0]
        cols_t, dy_cm = ws[0], ws[1]
        im2col = _im2col(op, x, cols_t, ws[2] if len(ws) > 2 else None)
        n, o, oh, ow = dy.shape
        dy_cm4 = dy_cm.reshape(o, n, oh, ow)
        dy_cn = dy.transpose(1, 0, 2, 3)
        dw_mat, cols = dw.reshape(o, -1), cols_t.T

        def conv2d_backprop_filter():
            im2col()
            np.copyto(dy_cm4, dy_cn)
            np.matmul(dy_cm, cols, out=dw_mat)
        return conv2d_backprop_filter


class Conv2DBackpropInput(Primitive):
    """dx of a convolution from dy and w: w^T @ dy, then col2im (scatter-add).

    col2im is one add per kernel tap: tap (i, j) of every window lands on a
    strided slab of the (padded) input.  Both sides are kept channel-major,
    (C, N, H, W), so each add reads a contiguous block.
    """
    type = "Conv2DBackpropInput"

    @staticmethod
    def infer(op):
        return [(op.attrs["x_shape"], np.float32)]

    @staticmethod
    def flops(op):
        o, c, kh, kw = op.inputs[1].shape
        return 2 * nelem(op.inputs[0].shape) * c * kh * kw

    @staticmethod
    def workspace(op):
        n, c, h, w, o, kh, kw, s, p, oh, ow = _geometry(op, op.attrs["x_shape"],
                                                        op.inputs[1].shape)
        return [((kh * kw * c, n * oh * ow), np.float32),    # dcols, tap-major
                ((o, n * oh * ow), np.float32),              # dy, channel-major
                ((kh * kw * c, o), np.float32),              # w, tap-major
                ((c, n, h + 2 * p, w + 2 * p), np.float32)]  # dx accumulator

    @staticmethod
    def bind(op, ins, outs, ws):
        dy, w = ins
        dx = outs[0]
        dcols, dy_cm, w_t, acc = ws
        n, c, h, wd, o, kh, kw, s, p, oh, ow = _geometry(op, dx.shape, w.shape)
        dy_cm4, dy_cn = dy_cm.reshape(o, n, oh, ow), dy.transpose(1, 0, 2, 3)
        w_t4, w_src = w_t.reshape(kh, kw, c, o), w.transpose(2, 3, 1, 0)
        dcols6 = dcols.reshape(kh, kw, c, n, oh, ow)
        taps = [(acc[:, :, i:i + s * (oh - 1) + 1:s, j:j + s * (ow - 1) + 1:s], dcols6[i, j])
                for i in range(kh) for j in range(kw)]
        result = acc[:, :, p:p + h, p:p + wd].transpose(1, 0, 2, 3)

        def conv2d_backprop_input():
            np.copyto(dy_cm4, dy_cn)
            np.copyto(w_t4, w_src)
            np.matmul(w_t, dy_cm, out=dcols)
            acc.fill(0.0)
            for slab, tap in taps:
                np.add(slab, tap, out=slab)
            np.copyto(dx, result)
        return conv2d_backprop_input
