"""Fires N kernel_end probes as fast as it can, or at about RATE per second
(argv: N [RATE]); prints how many times the thread was given a CPU (an
upper bound on its waits for one, each of which the tracer records)."""
import sys
import threading

from msprof.runtime import hooks

n = int(sys.argv[1])
rate = float(sys.argv[2]) if len(sys.argv) > 2 else 0.0
hooks.device_init(0, 1, hooks.DEVICE_CPU)
hooks.step_begin(0)
end, now = hooks.kernel_end, hooks.now_ns
t = t0 = now()
chunk = 1000
for at in range(0, n, chunk):
    if rate:
        due = t0 + at * 1e9 / rate
        while now() < due:
            pass
    for i in range(at, min(at + chunk, n)):
        end(7, 0, i, t, t)
hooks.step_end(0, 0)
stat = f"/proc/self/task/{threading.get_native_id()}/schedstat"
print(open(stat).read().split()[2], flush=True)
