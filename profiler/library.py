"""Where the runtime's probe library lives, found without importing the runtime."""
from __future__ import annotations

import glob
import importlib.util
import os

from msprof.errors import MsprofError


def runtime_probe_library() -> str:
    """Path of the runtime's native module that holds the msrt USDT probes."""
    spec = importlib.util.find_spec("msprof.runtime")
    for folder in (spec.submodule_search_locations or []) if spec else []:
        found = sorted(glob.glob(os.path.join(folder, "_usdt*.so")))
        if found:
            return os.path.realpath(found[0])
    raise MsprofError("the runtime's probe module (msprof.runtime._usdt) is not built; "
                      "reinstall msprof")
