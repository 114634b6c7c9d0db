"""Bulk consumer of a BPF ring buffer of fixed-size records.

BCC's ring-buffer API calls a Python function per record, which caps a
single consumer near one million records a second.  Every record msprof puts
in a given ring has the same size, so the ring's data area is simply an
array of (8-byte header + record) cells: this reader maps the ring, views
everything between the consumer and producer positions as one numpy array,
copies it out, and advances the consumer position - one call per batch.
"""
from __future__ import annotations

import mmap

import numpy as np

_BUSY = 1 << 31     # BPF_RINGBUF_BUSY_BIT: reserved, not yet submitted
_DISCARD = 1 << 30  # BPF_RINGBUF_DISCARD_BIT
_HDR = 8


class RingReader:
    def __init__(self, map_fd: int, size: int, record: np.dtype):
        page = mmap.PAGESIZE
        self.size = size
        self.mask = size - 1
        payload = record.itemsize
        self.cell = (payload + _HDR + 7) & ~7
        pad = self.cell - _HDR - payload
        fields = [("len", "<u4"), ("pgoff", "<u4"), ("rec", record)]
        if pad:
            fields.append(("_pad", f"V{pad}"))
        self.cell_dtype = np.dtype(fields)
        # The consumer page is ours to write; the producer page and the data
        # pages (mapped twice in a row, so a batch that wraps stays contiguous)
        # are read-only.
        self._cons = mmap.mmap(map_fd, page, mmap.MAP_SHARED,
                               mmap.PROT_READ | mmap.PROT_WRITE, offset=0)
        self._prod = mmap.mmap(map_fd, page + 2 * size, mmap.MAP_SHARED,
                               mmap.PROT_READ, offset=page)
        self._data = memoryview(self._prod)[page:]
        # Positions are read and written as whole aligned 64-bit words: the
        # kernel reads consumer_pos concurrently, and a position written a
        # byte at a time (as struct.pack_into does) can be seen half-written,
        # which makes the ring look full and drops records.
        self._cons_pos = np.frombuffer(self._cons, np.uint64, count=1)
        self._prod_pos = np.frombuffer(self._prod, np.uint64, count=1)

    def _positions(self) -> tuple[int, int]:
        return int(self._cons_pos[0]), int(self._prod_pos[0])

    def read(self) -> np.ndarray:
        """All submitted records since the last call (a copy), in ring order."""
        cons, prod = self._positions()
        avail = prod - cons
        if avail <= 0:
            return np.empty(0, self.cell_dtype["rec"])
        n = avail // self.cell
        start = cons & self.mask
        cells = np.frombuffer(self._data, self.cell_dtype, count=n, offset=start)
        busy = (cells["len"] & _BUSY) != 0
        if busy.any():  # stop at the first record still being written
            n = int(np.argmax(busy))
            cells = cells[:n]
        keep = (cells["len"] & _DISCARD) == 0
        out = cells["rec"][keep].copy()
        self._cons_pos[0] = cons + n * self.cell
        return out

    def close(self) -> None:
        del self._cons_pos, self._prod_pos
        self._data.release()
        self._prod.close()
        self._cons.close()
