"""meta.json as a JSON Schema (docs/FORMAT.md), and the check that applies it.

Every key FORMAT.md lists is typed and bounded here; keys it does not list
are let through (a later writer may add some).  A meta.json that breaks the
schema is refused with one line naming the file and the field, so that no
analysis or renderer ever meets a string where it counts, or a count that
wraps when summed.
"""
from __future__ import annotations

import sys
from pathlib import Path

from msprof.analysis.schema import MAX_VALUE
from msprof.errors import MsprofError


def _import_jsonschema():
    """jsonschema, without its "iri" format check when this process has not
    imported jsonschema yet.  That check comes from ``rfc3987_syntax``
    where it is installed (Jupyter's ``jsonschema[format-nongpl]`` brings
    it), which builds its grammar at import: 0.8 s of the 1.65 s that
    ``msprof --help`` took here, on every command.  The schema below checks
    no string format; the block is lifted at once, so anyone importing
    ``rfc3987_syntax`` later gets it."""
    if "jsonschema" in sys.modules or "rfc3987_syntax" in sys.modules:
        import jsonschema
        return jsonschema
    sys.modules["rfc3987_syntax"] = None     # import fails: jsonschema goes without it
    try:
        import jsonschema
    finally:
        del sys.modules["rfc3987_syntax"]
    return jsonschema


jsonschema = _import_jsonschema()

# JSON Schema's "integer" admits 1.0 and Python's bool is an int: neither is
# a count or an id here.
_TYPES = jsonschema.Draft202012Validator.TYPE_CHECKER.redefine(
    "integer", lambda _checker, v: isinstance(v, int) and not isinstance(v, bool))
_Validator = jsonschema.validators.extend(jsonschema.Draft202012Validator, type_checker=_TYPES)

_COUNT = {"type": "integer", "minimum": 0, "maximum": MAX_VALUE}
_TIME = _COUNT                                   # CLOCK_MONOTONIC ns: never negative
_ID = {"type": "integer", "minimum": -2**31, "maximum": 2**31 - 1}   # pids, ranks: int32
_RANK = {"type": "integer", "minimum": -1, "maximum": 2**31 - 1}     # -1: never declared
_STATUS = {"type": ["integer", "null"], "minimum": -2**31, "maximum": 2**31 - 1}
_STRINGS = {"type": "array", "items": {"type": "string"}}
_RANK_ROW = {
    "type": "object", "required": ["rank"],
    "properties": {"rank": _RANK, "pid": _ID, "host": {"type": ["string", "null"]},
                   "world_size": {"type": "integer", "minimum": -1, "maximum": 2**31 - 1},
                   "exit_status": _STATUS},
}

META_SCHEMA = {
    "type": "object",
    "required": ["format_version"],
    "properties": {
        "format_version": {"type": "integer"},
        "command": _STRINGS,
        "argv": _STRINGS,
        "backend": {"type": "string"},
        "mode": {"enum": ["trace", "summary"]},
        "host": {"type": "string"},
        "ranks": {"type": "array", "items": _RANK_ROW},
        "pids": {"type": "array", "items": _ID},
        "world_size": {"type": "integer", "minimum": -1, "maximum": 2**31 - 1},
        "clock": {"type": "string"},
        "probes": _STRINGS,
        "lost_events": _COUNT,
        "lost_by_cause": {"type": "object", "additionalProperties": _COUNT},
        "events": _COUNT,
        "folded_events": _COUNT,
        "start_ns": _TIME,
        "end_ns": _TIME,
        "exit_status": _STATUS,
        "failed_ranks": {"type": "array", "items": _RANK_ROW},
        "exits": {"type": "array", "items": {
            "type": "object", "properties": {"pid": _ID, "exit_status": _STATUS}}},
        "fallback_reason": {"type": ["string", "null"]},
        "tables": {"type": "object", "additionalProperties": _COUNT},
        "complete": {"type": "boolean"},
        "nprocs": {"type": ["integer", "null"], "minimum": 0, "maximum": 2**31 - 1},
        "collector_pid": _ID,
    },
}

_VALIDATOR = _Validator(META_SCHEMA)


def _field(path) -> str:
    """``ranks[0].rank`` from the error's path."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def _short(value) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def check_meta(meta: object, path: Path) -> dict:
    """``meta`` (meta.json as parsed) when it fits :data:`META_SCHEMA` and
    its window is not reversed; otherwise one :class:`MsprofError` line."""
    error = jsonschema.exceptions.best_match(_VALIDATOR.iter_errors(meta))
    if error is not None:
        if error.validator == "type" and not error.absolute_path:
            raise MsprofError(f"corrupt {path}: not a JSON object")
        if error.validator == "required":
            raise MsprofError(f"corrupt {path}: {error.message}")
        expected = {
            "type": lambda: f"must be {_kind(error.validator_value)}",
            "minimum": lambda: f"must be at least {error.validator_value}",
            "maximum": lambda: f"must be at most {error.validator_value}",
            "enum": lambda: f"must be one of {', '.join(map(str, error.validator_value))}",
        }.get(error.validator, lambda: error.message.splitlines()[0])()
        raise MsprofError(f"corrupt {path}: field {_field(error.absolute_path)} {expected}, "
                          f"not {_short(error.instance)}")
    ranks = [r["rank"] for r in meta.get("ranks") or []]
    twice = sorted({r for r in ranks if ranks.count(r) > 1})
    if twice:
        raise MsprofError(f"corrupt {path}: field ranks lists rank {twice[0]} twice")
    if "start_ns" in meta and "end_ns" in meta and meta["end_ns"] < meta["start_ns"]:
        raise MsprofError(f"corrupt {path}: field end_ns ({meta['end_ns']}) is before "
                          f"start_ns ({meta['start_ns']})")
    return meta


def _kind(types) -> str:
    names = {"integer": "an integer", "string": "a string", "array": "a list",
             "object": "an object", "boolean": "true or false", "null": "null",
             "number": "a number"}
    types = [types] if isinstance(types, str) else types
    return " or ".join(names.get(t, t) for t in types)
