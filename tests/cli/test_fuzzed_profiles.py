"""A fuzz of meta.json and of every table (hypothesis, 350 examples): a
valid profile (the trace-mode reference, or the summary-mode one, whose
summary tables have rows), one mutation (a field or a value changed, a type, a column
or a file removed, garbage bytes, rows repeated), then every reading
command (``report`` as table and json, ``diff``, ``flame``, ``export``).
Each either works or refuses in one line; never a traceback, never a
negative time (see tests/fuzzing.py)."""
from __future__ import annotations

import shutil

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import msprof
import profiles
from fuzzing import meta_mutations, mutate_meta, mutate_table, problems, table_mutations

# Enough to meet every field and most tables' columns with each kind of
# mutation (the examples run in about 2 minutes on two busy cores).
META_EXAMPLES = 200
TABLE_EXAMPLES = 150

_SETTINGS = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.fixture(scope="module")
def bases(tmp_path_factory):
    """The valid profiles to mutate, by mode, the loaded trace-mode one (the
    other side of each diff) and a scratch folder."""
    work = tmp_path_factory.mktemp("fuzz")
    roots = {"trace": profiles.reference(work / "trace"),
             "summary": profiles.summary_reference(work / "summary")}
    return roots, msprof.load(roots["trace"]), work


def _check(bases, mode, mutate, mutation):
    roots, baseline, work = bases
    case = work / "case"
    shutil.rmtree(case, ignore_errors=True)
    shutil.copytree(roots[mode], case)
    mutate(case, mutation)
    assert problems(case, baseline, work) == []


modes = st.sampled_from(["trace", "trace", "summary"])


@settings(max_examples=META_EXAMPLES, **_SETTINGS)
@given(mode=modes, mutation=meta_mutations())
def test_fuzzed_meta_json(bases, mode, mutation):
    _check(bases, mode, mutate_meta, mutation)


@settings(max_examples=TABLE_EXAMPLES, **_SETTINGS)
@given(mode=modes, mutation=table_mutations())
def test_fuzzed_tables(bases, mode, mutation):
    _check(bases, mode, mutate_table, mutation)
