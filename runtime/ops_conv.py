"""2-D convolution (NCHW, im2col + matmul) and its two backward ops.

Every buffer of a compiled graph is fixed, so ``bind`` builds the window
views once (numpy's sliding_window_view is slow to create, cheap to copy
from); the column matrix lives in a pool workspace for the kernel's run.
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
    o, c2, kh, kw = w_shape
    s, p = op.attrs["stride"], op.attrs["pad"]
    oh, ow = out_hw(h, w, kh, kw, s, p)
    return n, c, h, w, o, kh, kw, s, p, oh, ow


def _workspace(op, x_shape, w_shape):
    """Column matrix, transposed output (both float32) and padded input."""
    n, c, h, w, o, kh, kw, s, p, oh, ow = _geometry(op, x_shape, w_shape)
    ws = [((n * oh * ow, c * kh * kw), np.float32), ((n * oh * ow, o), np.float32)]
    if p:
        ws.append(((n, c, h + 2 * p, w + 2 * p), np.float32))
    return ws


def _im2col(op, x, cols, padded):
    """A callable filling ``cols`` (N*OH*OW, C*KH*KW) from x, and x's view in it."""
    n, c, h, w = x.shape
    kh, kw = op.attrs["kernel"]
    s, p = op.attrs["stride"], op.attrs["pad"]
    oh, ow = out_hw(h, w, kh, kw, s, p)
    src = padded if p else x
    inner = padded[:, :, p:p + h, p:p + w] if p else None
    windows = sliding_window_view(src, (kh, kw), axis=(2, 3))[:, :, ::s, ::s][:, :, :oh, :ow]
    cols6 = cols.reshape(n, oh, ow, c, kh, kw)
    windows = windows.transpose(0, 2, 3, 1, 4, 5)
    if p:
        def fill():
            padded.fill(0.0)          # a pool workspace: its border is not zero
            np.copyto(inner, x)
            np.copyto(cols6, windows)
        return fill
    return lambda: np.copyto(cols6, windows)


class Conv2D(Primitive):
    """out = conv(x, w); attrs stride, pad (symmetric), kernel (kh, kw)."""
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
        return _workspace(op, op.inputs[0].shape, op.inputs[1].shape)

    @staticmethod
    def bind(op, ins, outs, ws):
        x, w = ins
        out = outs[0]
        cols, res = ws[0], ws[1]
        im2col = _im2col(op, x, cols, ws[2] if len(ws) > 2 else None)
        wmat_t = w.reshape(w.shape[0], -1).T
        n, o, oh, ow = out.shape
        res_nchw = res.reshape(n, oh, ow, o).transpose(0, 3, 1, 2)

        def conv2d():
            im2col()
            np.matmul(cols, wmat_t, out=res)
            np.copyto(out, res_nchw)
        return conv2d

    @staticmethod
    def grad(op, douts, needs):
        (dy,), (x, w) = douts, op.inputs
        b, a = builder(), op.attrs
        dx = b.add(Conv2DBackpropInput, (dy, w), x_shape=x.shape, **a) if needs[0] else None
        dw = b.add(Conv2DBackpropFilter, (dy, x), w_shape=w.shape, **a) if needs[1] else None
        return [dx, dw]


class Conv2DBackpropInput(Primitive):
    """dx of a convolution from dy and w: dy @ w, then col2im (scatter-add)."""
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
        x_shape, w_shape = op.attrs["x_shape"], op.inputs[1].shape
        n, c, h, w, o, kh, kw, s, p, oh, ow = _geometry(op, x_shape, w_shape)
        ws = [((n * oh * ow, c * kh * kw), np.float32), ((n, oh, ow, o), np.float32)]
        if p:
            ws.append(((n, c, h + 2 * p, w + 2 * p), np.float32))
        return ws

    @staticmethod
    def bind(op, ins, outs, ws):
        dy, w = ins
        dx = outs[0]
        dcols, dy_t = ws[0], ws[1]
        n, c, h, wd, o, kh, kw, s, p, oh, ow = _geometry(op, dx.shape, w.shape)
        acc = ws[2] if p else dx
        dy_nhwc = dy.transpose(0, 2, 3, 1)
        dy_mat = dy_t.reshape(-1, o)
        wmat = w.reshape(o, -1)
        dcols6 = dcols.reshape(n, oh, ow, c, kh, kw).transpose(0, 3, 1, 2, 4, 5)
        # One strided slab of the input per kernel tap: col2im is kh*kw adds.
        taps = [(acc[:, :, i:i + s * (oh - 1) + 1:s, j:j + s * (ow - 1) + 1:s],
                 dcols6[:, :, :, :, i, j]) for i in range(kh) for j in range(kw)]
        inner = acc[:, :, p:p + h, p:p + wd] if p else None

        def conv2d_backprop_input():
            np.copyto(dy_t, dy_nhwc)
            np.matmul(dy_mat, wmat, out=dcols)
            acc.fill(0.0)
            for slab, tap in taps:
                np.add(slab, tap, out=slab)
            if p:
                np.copyto(dx, inner)
        return conv2d_backprop_input


class Conv2DBackpropFilter(Primitive):
    """dw of a convolution from dy and x: dy^T @ im2col(x)."""
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
        x_shape, w_shape = op.inputs[1].shape, op.attrs["w_shape"]
        n, c, h, w, o, kh, kw, s, p, oh, ow = _geometry(op, x_shape, w_shape)
        ws = [((n * oh * ow, c * kh * kw), np.float32), ((n, oh, ow, o), np.float32)]
        if p:
            ws.append(((n, c, h + 2 * p, w + 2 * p), np.float32))
        return ws

    @staticmethod
    def bind(op, ins, outs, ws):
        dy, x = ins
        dw = outs[0]
        cols, dy_t = ws[0], ws[1]
        im2col = _im2col(op, x, cols, ws[2] if len(ws) > 2 else None)
        o = dw.shape[0]
        dy_nhwc = dy.transpose(0, 2, 3, 1)
        dy_mat_t = dy_t.reshape(-1, o).T
        dw_mat = dw.reshape(o, -1)

        def conv2d_backprop_filter():
            im2col()
            np.copyto(dy_t, dy_nhwc)
            np.matmul(dy_mat_t, cols, out=dw_mat)
        return conv2d_backprop_filter
