"""The in-process backend: the runtime records its own probes into files.

Used without root or BCC.  The script is started with MSPROF_INPROCESS_DIR
pointing at a staging folder; each process appends records there
(msprof.runtime.recorder) and this backend tails the files, so the rest of
the collector is the same as with eBPF.
"""
from __future__ import annotations

import glob
import os
import shutil

import numpy as np

from msprof.probes import events as ev


class _Tail:
    """Complete records appended to one file since the last read."""

    def __init__(self, path: str, dtype: np.dtype):
        self.path, self.dtype, self.offset = path, dtype, 0

    def read(self) -> np.ndarray:
        try:
            size = os.path.getsize(self.path)
        except OSError:
            return np.empty(0, self.dtype)
        n = (size - self.offset) // self.dtype.itemsize
        if n <= 0:
            return np.empty(0, self.dtype)
        with open(self.path, "rb") as f:
            f.seek(self.offset)
            data = f.read(n * self.dtype.itemsize)
        self.offset += len(data)
        return np.frombuffer(data, self.dtype)


class InprocessBackend:
    name = "inprocess"

    def __init__(self, staging: str):
        self.staging = staging
        self.attached = ["inprocess:msrt:*"]
        self._tails: dict[str, _Tail] = {}

    def child_env(self) -> dict[str, str]:
        # Made now, not when the backend is chosen: the staging folder lives in
        # the profile directory, which must not exist before the run creates it.
        os.makedirs(self.staging, exist_ok=True)
        return {"MSPROF_INPROCESS_DIR": self.staging}

    def _read(self, prefix: str, dtype: np.dtype) -> np.ndarray:
        for path in glob.glob(os.path.join(self.staging, f"{prefix}-*.bin")):
            if path not in self._tails:
                self._tails[path] = _Tail(path, dtype)
        parts = [t.read() for t in self._tails.values() if t.dtype == dtype]
        parts = [p for p in parts if len(p)]
        return np.concatenate(parts) if parts else np.empty(0, dtype)

    def poll(self) -> tuple[np.ndarray, np.ndarray]:
        return self._read("meta", ev.META), self._read("events", ev.EVENT)

    def lost(self) -> dict[str, int]:
        return {}

    def close(self) -> None:
        shutil.rmtree(self.staging, ignore_errors=True)
