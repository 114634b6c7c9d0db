"""A fuzz of meta.json and of every table (hypothesis, 350 examples): a
valid profile, one mutation (a field or a value changed, a type, a column
or a file removed, garbage bytes, rows repeated), then every reading
command (``report`` as table and json, ``diff``, ``flame``, ``export``).
Each either works or refuses in one line; never a traceback, never a
negative time (see tests/fuzzing.py)."""
from __future__ import annotations

import shutil

import pytest
from hypothesis import HealthCheck, given, settings

import msprof
import profiles
from fuzzing import meta_mutations, mutate_meta, mutate_table, problems, table_mutations

# Enough to meet every field and most tables' columns with each kind of
# mutation (the examples run in about 2 minutes on two busy cores).
META_EXAMPLES = 200
TABLE_EXAMPLES = 150

_SETTINGS = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    """The reference profile, its loaded Profile (the other side of each
    diff) and a scratch folder."""
    work = tmp_path_factory.mktemp("fuzz")
    root = profiles.reference(work / "base")
    return root, msprof.load(root), work


def _check(base, mutate, mutation):
    root, profile, work = base
    case = work / "case"
    shutil.rmtree(case, ignore_errors=True)
    shutil.copytree(root, case)
    mutate(case, mutation)
    assert problems(case, profile, work) == []


@settings(max_examples=META_EXAMPLES, **_SETTINGS)
@given(mutation=meta_mutations())
def test_fuzzed_meta_json(base, mutation):
    _check(base, mutate_meta, mutation)


@settings(max_examples=TABLE_EXAMPLES, **_SETTINGS)
@given(mutation=table_mutations())
def test_fuzzed_tables(base, mutation):
    _check(base, mutate_table, mutation)
