"""Fires N kernel_end probes, PER_MS at a time with a 1 ms pause (argv: N PER_MS)."""
import sys
import time

from msprof.runtime import hooks

n, per_ms = int(sys.argv[1]), int(sys.argv[2])
hooks.device_init(0, 1, hooks.DEVICE_CPU)
end = hooks.kernel_end
t = hooks.now_ns()
i = 0
while i < n:
    for _ in range(min(per_ms, n - i)):
        end(7, 0, i, t, t)
        i += 1
    time.sleep(0.001)
