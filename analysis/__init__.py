"""Analysis of profile directories: pandas only (no bcc, no root, no runtime).

``load(path)`` returns a :class:`Profile` whose methods are the analyses;
each analysis is also a pure function over DataFrames in its own module:

* :mod:`.profile`   -- the facade: a profile's tables and its analyses as methods
* :mod:`.load`      -- opening, validating and merging profile directories
* :mod:`.opstats`   -- per-operator, per-type and per-scope statistics
* :mod:`.breakdown` -- per-device step breakdown (busy, host gaps, idle)
* :mod:`.findings`  -- ranked bottlenecks
* :mod:`.report`    -- the data behind ``msprof report``
"""
from msprof.analysis.profile import Profile, load

__all__ = ["Profile", "load"]
