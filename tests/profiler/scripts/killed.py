import os
import signal

from msprof.runtime import hooks

hooks.device_init(0, 1, hooks.DEVICE_CPU)
os.kill(os.getpid(), signal.SIGKILL)
