"""Runs N kernels of one operator, waits until the collector has written
them, then fills the disk that holds FILLER, leaving MARGIN bytes free (for
the last records, not for the profile's Parquet tables): the disk fills
as the collector closes the profile.  argv: N FILLER MARGIN."""
import os
import sys
import time

from msprof.runtime import hooks

n, filler, margin = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
hooks.device_init(0, 1, hooks.DEVICE_CPU)
hooks.op_register(1, 0, "MatMul-op1", "MatMul", "net/dense/MatMul-op1", 1000, 64)
hooks.step_begin(0)
for i in range(n):
    t = hooks.now_ns()
    hooks.kernel_end(1, 0, i, t, t)
hooks.step_end(0, 0)
time.sleep(1.5)        # decoded after 0.25 s, written at once
with open(filler, "wb", buffering=0) as f:
    for block in (1 << 20, 4096):
        try:
            while True:
                f.write(b"\0" * block)
        except OSError:
            pass
    os.ftruncate(f.fileno(), max(0, os.fstat(f.fileno()).st_size - margin))
