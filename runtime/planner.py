"""The memory planner: where each buffer of a compiled graph lives.

Lifetimes are known at compile time (a buffer is born when the op producing
it is launched and dies after its last reader is launched), so placement is
decided once: the planner replays the graph's allocations and frees on a
best-fit free list, in the order the executor will issue them, and records
each buffer's offset and the arena size the graph needs.  At run time the
pool hands out exactly those blocks, so addresses repeat step after step.
"""
from __future__ import annotations

import bisect

ALIGN = 64


def align(n: int, to: int = ALIGN) -> int:
    return (n + to - 1) // to * to


class FreeList:
    """Best-fit allocator over [0, inf) with coalescing; tracks the high water."""

    def __init__(self):
        self.starts: list[int] = []   # free holes below ``top``, sorted
        self.sizes: dict[int, int] = {}
        self.top = 0                  # everything at and above top is free
        self.peak = 0

    def alloc(self, size: int) -> int:
        size = align(max(size, 1))
        best = None
        for start in self.starts:
            hole = self.sizes[start]
            if hole >= size and (best is None or hole < self.sizes[best]):
                best = start
        if best is None:
            # Grow: a trailing hole that touches top is extended, not wasted.
            if self.starts and self.starts[-1] + self.sizes[self.starts[-1]] == self.top:
                best = self.starts.pop()
                del self.sizes[best]
                self.top = best
            offset, self.top = self.top, self.top + size
            self.peak = max(self.peak, self.top)
            return offset
        hole = self.sizes.pop(best)
        self.starts.remove(best)
        if hole > size:
            self._insert(best + size, hole - size)
        return best

    def free(self, offset: int, size: int) -> None:
        size = align(max(size, 1))
        i = bisect.bisect(self.starts, offset)
        if i < len(self.starts) and offset + size == self.starts[i]:   # merge right
            size += self.sizes.pop(self.starts.pop(i))
        if i > 0 and self.starts[i - 1] + self.sizes[self.starts[i - 1]] == offset:  # left
            offset = self.starts[i - 1]
            size += self.sizes[offset]
            self.starts.pop(i - 1)
            del self.sizes[offset]
        if offset + size == self.top:
            self.top = offset
        else:
            self._insert(offset, size)

    def _insert(self, start, size):
        bisect.insort(self.starts, start)
        self.sizes[start] = size


def plan(events) -> tuple[dict, int]:
    """Place buffers: ``events`` is the executor's order of ("alloc", key,
    size) and ("free", key, size); returns {key: offset} and the arena size."""
    fl, where = FreeList(), {}
    for kind, key, size in events:
        if kind == "alloc":
            where[key] = fl.alloc(size)
        else:
            fl.free(where[key], size)
    return where, fl.peak
