"""Stages kernel records on two threads, hands none over, and is killed with
SIGKILL: the records must still reach the profile (argv: kernels on the main
thread, kernels on the other thread)."""
import os
import signal
import sys
import threading

from msprof.runtime import hooks

on_main, on_other = int(sys.argv[1]), int(sys.argv[2])
hooks.device_init(0, 1, hooks.DEVICE_CPU)
t = hooks.now_ns()
staged = threading.Event()


def other():
    for i in range(on_other):
        hooks.kernel_end(8, 1, i, t, t)
    staged.set()
    threading.Event().wait()          # blocks with its records staged


threading.Thread(target=other, daemon=True).start()
staged.wait()
for i in range(on_main):
    hooks.kernel_end(7, 0, i, t, t)
os.kill(os.getpid(), signal.SIGKILL)
