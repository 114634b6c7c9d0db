"""msprof: an eBPF-instrumented profiler for deep-learning training.

``msprof.load(path)`` opens a profile directory written by ``msprof run``.
"""
from pkgutil import extend_path

# Lets the subpackages (installed from the repository's top-level folders) be
# found even when a checkout's msprof/ folder shadows the installed one.
__path__ = extend_path(__path__, __name__)

__version__ = "0.1.0"


def load(path):
    """Load a profile directory; returns a :class:`msprof.analysis.Profile`."""
    from msprof.analysis.profile import load as _load

    return _load(path)
