"""Human-readable numbers: durations, byte counts, rank lists."""
from __future__ import annotations

import math


def fmt_ns(ns, sep: str = " ") -> str:
    """``1234567`` -> ``"1.23 ms"`` (``sep`` between number and unit);
    blank for a missing value."""
    if ns is None or (isinstance(ns, float) and math.isnan(ns)):
        return ""
    try:
        ns = float(ns)
    except (TypeError, ValueError):
        return ""
    if math.isnan(ns):
        return ""
    a = abs(ns)
    for unit, scale in (("s", 1e9), ("ms", 1e6), ("us", 1e3)):
        if a >= scale:
            return f"{ns / scale:.3g}{sep}{unit}" if a / scale < 100 else f"{ns / scale:.0f}{sep}{unit}"
    return f"{ns:.0f}{sep}ns"


def fmt_bytes(n, sep: str = " ") -> str:
    """``1536`` -> ``"1.5 KiB"``; blank for a missing value."""
    try:
        if n is None or n != n:  # NaN or NA
            return ""
        n = float(n)
    except (TypeError, ValueError):
        return ""
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if abs(n) >= scale:
            return f"{n / scale:.3g}{sep}{unit}" if abs(n) / scale < 100 else f"{n / scale:.0f}{sep}{unit}"
    return f"{n:.0f}{sep}B"


def fmt_ranks(ranks) -> str:
    """``[0, 1, 2, 5]`` -> ``"ranks 0-2,5"``; ``[3]`` -> ``"rank 3"``."""
    rs = sorted({int(r) for r in ranks})
    if len(rs) == 1:
        return f"rank {rs[0]}"
    runs, start = [], None
    for i, r in enumerate(rs):
        if start is None:
            start = r
        if i + 1 == len(rs) or rs[i + 1] != r + 1:
            runs.append(str(start) if start == r else f"{start}-{r}")
            start = None
    return "ranks " + ",".join(runs)


def fmt_rate(x) -> str:
    """A rate such as GFLOP/s: 3 significant digits, no exponent; blank
    for a missing value."""
    try:
        if x is None or x != x:
            return ""
        x = float(x)
    except (TypeError, ValueError):
        return ""
    return f"{x:,.0f}" if abs(x) >= 100 else f"{x:.3g}"
