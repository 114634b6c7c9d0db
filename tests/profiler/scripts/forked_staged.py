"""Stages kernel records, forks, and lets both processes exit without
handing anything over: the child must report only its own records, not a
copy of its parent's."""
import os

from msprof.runtime import hooks

hooks.device_init(0, 2, hooks.DEVICE_CPU)
t = hooks.now_ns()
for i in range(5):
    hooks.kernel_end(7, 0, i, t, t)
pid = os.fork()
if pid == 0:
    hooks.device_init(1, 2, hooks.DEVICE_CPU)
    for i in range(3):
        hooks.kernel_end(9, 0, i, t, t)
    os._exit(0)
os.waitpid(pid, 0)
