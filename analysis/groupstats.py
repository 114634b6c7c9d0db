"""Grouped statistics over integer group codes, with numpy.

pandas' ``groupby`` on big tables spends most of its time factorising the
keys and, for quantiles, sorting every column by (group, value).  The
analyses know their groups already (a code per row, computed once per
operator rather than per event), so they aggregate here.  Results are the
ones pandas gives, to the bit: sums, minima and maxima are exact integer
reductions; a mean is ``sum / count`` (what pandas' compensated sum gives
for integer values, whose partial sums stay exact below 2**53); quantiles
interpolate like ``GroupBy.quantile`` (``lo + (hi - lo) * frac``) and
medians like ``GroupBy.median`` (the mean of the two middle values).
"""
from __future__ import annotations

import numpy as np


class Groups:
    """Rows ``codes`` (0..n-1, one per row) of ``n`` groups."""

    def __init__(self, codes: np.ndarray, n: int):
        self.codes = np.asarray(codes, dtype=np.intp)
        self.n = int(n)
        self._size = None

    def size(self) -> np.ndarray:
        if self._size is None:
            self._size = np.bincount(self.codes, minlength=self.n).astype("int64")
        return self._size

    def sum(self, values) -> np.ndarray:
        v = np.asarray(values)
        out = np.zeros(self.n, dtype="float64" if v.dtype.kind == "f" else "int64")
        np.add.at(out, self.codes, v)
        return out

    def min(self, values) -> np.ndarray:
        return self._extreme(np.minimum, values)

    def max(self, values) -> np.ndarray:
        return self._extreme(np.maximum, values)

    def _extreme(self, ufunc, values) -> np.ndarray:
        v = np.asarray(values, dtype="int64")
        info = np.iinfo("int64")
        out = np.full(self.n, info.max if ufunc is np.minimum else info.min, dtype="int64")
        ufunc.at(out, self.codes, v)
        return np.where(self.size() > 0, out, 0)

    def mean(self, values) -> np.ndarray:
        size = self.size()
        with np.errstate(invalid="ignore", divide="ignore"):
            return self.sum(values) / np.where(size > 0, size, np.nan)

    def sorted_values(self, values) -> tuple[np.ndarray, np.ndarray]:
        """``values`` sorted by group, then value; and each group's first
        position in that order."""
        v = np.asarray(values, dtype="int64")
        starts = np.concatenate([[0], np.cumsum(self.size())[:-1]]).astype(np.intp)
        if not len(v):
            return v, starts
        lo, hi = int(v.min()), int(v.max())
        span = hi - lo + 1
        if span * max(self.n, 1) < 2**62:
            # One integer key per row: a plain sort, no argsort.
            k = self.codes.astype("int64") * span + (v - lo)
            k.sort()
            return k % span + lo, starts
        return v[np.lexsort((v, self.codes))], starts

    def quantiles(self, values, qs) -> list[np.ndarray]:
        """For each ``q`` of ``qs``: linear interpolation between the two
        nearest values (NaN for an empty group), as ``GroupBy.quantile``."""
        s, starts = self.sorted_values(values)
        size = self.size()
        has = size > 0
        first, last = starts[has], starts[has] + size[has] - 1
        out = []
        for q in qs:
            h = q * (size[has] - 1).astype("float64")
            i = first + h.astype(np.intp)
            frac = h % 1
            lo, hi = s[i].astype("float64"), s[np.minimum(i + 1, last)].astype("float64")
            res = np.full(self.n, np.nan)
            res[has] = np.where(frac == 0, lo, lo + (hi - lo) * frac)
            out.append(res)
        return out

    def median(self, values) -> np.ndarray:
        """The middle value, or the mean of the two middle ones (NaN for an
        empty group), as ``GroupBy.median``."""
        s, starts = self.sorted_values(values)
        size = self.size()
        out = np.full(self.n, np.nan)
        has = size > 0
        a = s[starts[has] + (size[has] - 1) // 2].astype("float64")
        b = s[starts[has] + size[has] // 2].astype("float64")
        out[has] = np.where(size[has] % 2 == 1, a, (a + b) / 2)
        return out


def first_rows(codes: np.ndarray, n: int) -> np.ndarray:
    """The first row of each of the ``n`` groups (every group must occur)."""
    first = np.full(n, len(codes), dtype=np.intp)
    np.minimum.at(first, codes, np.arange(len(codes), dtype=np.intp))
    return first
