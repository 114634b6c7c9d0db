"""Sleeps until interrupted; prints 'ready' first so a test knows when."""
import sys
import time

from msprof.runtime import hooks

hooks.device_init(0, 1, hooks.DEVICE_CPU)
try:
    print("ready", flush=True)
    time.sleep(60)
except KeyboardInterrupt:
    print("interrupted", flush=True)
    sys.exit(42)
