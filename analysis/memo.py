"""Intermediates shared by several analyses, computed once per profile table.

Several analyses start from the same costly derivation of a big table (the
kernels sorted by rank and time and placed in their step windows, the
collectives matched across ranks, ...).  The tables a :class:`Profile`
reads are never modified (DESIGN: analyses are pure functions), so such a
result can be kept for as long as the table object lives.  Only tables
registered by the reader are memoised: a frame built by a caller may be
modified between calls, so it is recomputed every time.
"""
from __future__ import annotations

import weakref

import pandas as pd

_tables: dict[int, weakref.ref] = {}   # id -> weakref of each registered table
_store: dict[tuple, object] = {}


def register(df: pd.DataFrame) -> pd.DataFrame:
    """Marks a table as read-only for the rest of its life (returns it)."""
    key = id(df)
    _tables[key] = weakref.ref(df, lambda _, key=key: _forget(key))
    return df


def _forget(key: int) -> None:
    _tables.pop(key, None)
    for k in [k for k in _store if key in k[1]]:
        del _store[k]


def _registered(df) -> bool:
    ref = _tables.get(id(df))
    return ref is not None and ref() is df


def once(name: str, frames: tuple, compute):
    """``compute()``, kept per ``name`` and ``frames`` when every frame is a
    registered table or None (callers must not modify what they get)."""
    if not all(f is None or _registered(f) for f in frames):
        return compute()
    key = (name, tuple(id(f) for f in frames))
    if key not in _store:
        _store[key] = compute()
    return _store[key]
