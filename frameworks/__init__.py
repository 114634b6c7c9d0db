"""Framework adapters: probe sources beside msprof's own runtime.

An adapter fires the runtime's kinds of records (probes/events.py) from a
framework's own hooks, so the profile format and the analyses stay the same
whatever trained the model.  Adapters never import the profiler.
"""
