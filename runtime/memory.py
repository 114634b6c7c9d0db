"""The per-device memory pool: real byte arenas, and every block accounted.

The pool owns numpy byte arenas; every tensor a compiled graph touches is a
view of one.  Addresses are device addresses (an arena's base plus an
offset), deterministic from run to run, which makes memory timelines
comparable across runs and ranks.  Two kinds of blocks:

* persistent (parameters, optimizer state, input feeds): allocated once,
  bump-allocated from persistent arenas;
* per step (activations, gradients, workspaces): placed at compile time by
  the planner inside the graph's own arena; the executor "allocates" and
  "frees" them as it launches ops, which updates ``in_use``.

Every allocation fires ``hooks.mem_alloc`` and every free ``hooks.mem_free``
(address, size, owning op id or -1, bytes in use afterwards).
"""
from __future__ import annotations

import numpy as np

from msprof.runtime import hooks
from msprof.runtime.planner import align

ARENA_ALIGN = 1 << 20          # arenas start on MiB boundaries of the address space
PERSISTENT_CHUNK = 4 << 20     # persistent arenas grow by this much at least
BASE_ADDRESS = 1 << 32         # device addresses start here (0 stays "no address")


class Arena:
    """One contiguous byte buffer at a device address."""

    def __init__(self, base: int, nbytes: int):
        self.base, self.nbytes = base, nbytes
        self.buffer = np.zeros(max(nbytes, 1), dtype=np.uint8)
        self.used = 0            # bump pointer, for persistent arenas

    def view(self, offset: int, shape, dtype) -> np.ndarray:
        dtype = np.dtype(dtype)
        n = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
        return self.buffer[offset:offset + n].view(dtype).reshape(shape)


class Block:
    """A persistent allocation: where it is and the array living there."""
    __slots__ = ("addr", "size", "op_id", "array")

    def __init__(self, addr, size, op_id, array):
        self.addr, self.size, self.op_id, self.array = addr, size, op_id, array


class MemoryPool:
    def __init__(self):
        self.arenas: list[Arena] = []
        self._persistent: list[Arena] = []
        self._next_base = BASE_ADDRESS
        self.in_use = 0          # bytes of live blocks, persistent and per step
        self.peak = 0

    def reserve(self, nbytes: int) -> Arena:
        """A new arena (the planner's per-graph arena, or a persistent one)."""
        arena = Arena(self._next_base, nbytes)
        self._next_base += align(max(nbytes, 1), ARENA_ALIGN)
        self.arenas.append(arena)
        return arena

    @property
    def reserved(self) -> int:
        return sum(a.nbytes for a in self.arenas)

    def alloc_persistent(self, shape, dtype, op_id: int = -1) -> Block:
        size = int(np.prod(shape, dtype=np.int64)) * np.dtype(dtype).itemsize
        need = align(max(size, 1))
        arena = next((a for a in self._persistent if a.nbytes - a.used >= need), None)
        if arena is None:
            arena = self.reserve(max(PERSISTENT_CHUNK, need))
            self._persistent.append(arena)
        offset, arena.used = arena.used, arena.used + need
        block = Block(arena.base + offset, size, op_id, arena.view(offset, shape, dtype))
        self.in_use += size
        self.peak = max(self.peak, self.in_use)
        hooks.mem_alloc(block.addr, size, op_id, self.in_use)
        return block

    def free_persistent(self, block: Block) -> None:
        # Bump arenas do not reuse space; the accounting and the event are what
        # matter for the rare persistent free (a graph or parameter dropped).
        self.in_use -= block.size
        hooks.mem_free(block.addr, block.size, block.op_id, self.in_use)
