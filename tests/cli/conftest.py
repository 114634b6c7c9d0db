"""Fixtures: the synthetic profiles of tests/profiles.py, written afresh."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import profiles  # noqa: E402

import msprof  # noqa: E402


@pytest.fixture
def ref_dir(tmp_path):
    return profiles.reference(tmp_path / "ref")


@pytest.fixture
def ref(ref_dir):
    return msprof.load(ref_dir)


@pytest.fixture
def clean(tmp_path):
    return msprof.load(profiles.clean(tmp_path / "clean"))
