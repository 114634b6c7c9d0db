"""Fires N kernel_end probes as fast as it can (argv: N)."""
import sys

from msprof.runtime import hooks

n = int(sys.argv[1])
hooks.device_init(0, 1, hooks.DEVICE_CPU)
hooks.step_begin(0)
end = hooks.kernel_end
t = hooks.now_ns()
for i in range(n):
    end(7, 0, i, t, t)
hooks.step_end(0)
