"""The profile directory is created by the run, locked, and never written
through a planted symlink (profiler/outdir.py, profiler/writer.py)."""
import fnmatch
import os
import re
import subprocess

import pyarrow as pa
import pytest

from conftest import REPO
from msprof.errors import MsprofError
from msprof.profiler.decode import SCHEMAS
from msprof.profiler.outdir import LOCK_FILE, OutputDir, default_name
from msprof.profiler.writer import ProfileWriter


def steps(n: int) -> pa.Table:
    return pa.table({"rank": [0] * n, "pid": [1] * n, "step": list(range(n)),
                     "start_ns": [1000 * i for i in range(n)], "dur_ns": [10] * n, "samples": [0] * n},
                    schema=SCHEMAS["steps"])


def test_a_new_directory_is_created_and_locked(tmp_path):
    out = OutputDir(str(tmp_path / "a" / "p"))
    assert (tmp_path / "a" / "p" / LOCK_FILE).is_file()
    with pytest.raises(MsprofError, match="being written by another msprof run"):
        (tmp_path / "a" / "p" / "meta.json").write_text("{}")
        OutputDir(str(tmp_path / "a" / "p"), force=True)
    out.release()
    OutputDir(str(tmp_path / "a" / "p"), force=True).release()   # unlocked once released


def test_an_existing_folder_that_is_not_a_profile_is_refused_even_with_force(tmp_path):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "kernels.parquet").write_text("my own data")
    for force in (False, True):
        with pytest.raises(MsprofError, match="already exists and is not a profile"):
            OutputDir(str(mine), force=force)
    assert (mine / "kernels.parquet").read_text() == "my own data"
    assert sorted(os.listdir(mine)) == ["kernels.parquet"]


def test_a_profile_is_replaced_only_with_force_and_its_links_are_not_followed(tmp_path):
    victim = tmp_path / "victim"
    victim.write_text("precious")
    old = tmp_path / "old"
    old.mkdir()
    (old / "meta.json").write_text("{}")
    (old / "kernels.parquet").symlink_to(victim)
    (old / "sub").mkdir()
    (old / "sub" / "x").symlink_to(victim)
    with pytest.raises(MsprofError, match="already holds a profile; choose another -o"):
        OutputDir(str(old))
    out = OutputDir(str(old), force=True)
    assert os.listdir(old) == [LOCK_FILE]
    assert victim.read_text() == "precious"
    out.release()


def test_a_symlink_as_the_output_is_refused(tmp_path):
    target = tmp_path / "elsewhere"
    target.mkdir()
    (target / "meta.json").write_text("{}")
    (tmp_path / "p").symlink_to(target)
    with pytest.raises(MsprofError, match="refusing to write into .*: a symlink"):
        OutputDir(str(tmp_path / "p"), force=True)
    assert os.listdir(target) == ["meta.json"]


def test_files_planted_in_the_directory_are_replaced_not_written_through(tmp_path):
    victim = tmp_path / "victim"
    victim.write_text("precious")
    out = OutputDir(str(tmp_path / "p"))
    w = ProfileWriter(out, {"start_ns": 0})
    w.add({"steps": steps(3)})
    (tmp_path / "p" / "kernels.parquet").symlink_to(victim)   # planted while it runs
    w.close()
    out.release()
    assert victim.read_text() == "precious"
    assert not (tmp_path / "p" / "kernels.parquet").is_symlink()
    assert w.meta["complete"] is True and w.stopped is None


def test_default_names_are_unpredictable_and_ignored_by_git():
    names = {default_name() for _ in range(50)}
    assert len(names) == 50
    for name in names:
        assert re.fullmatch(r"msprof-\d{8}-\d{6}-[0-9a-f]{6}", name)
        assert fnmatch.fnmatch(name, "msprof-*")
    r = subprocess.run(["git", "-C", str(REPO), "check-ignore", "-q", f"{name}/meta.json"])
    assert r.returncode == 0


def test_a_run_that_cannot_start_leaves_no_directory_behind(tmp_path):
    OutputDir(str(tmp_path / "p")).discard()
    assert not (tmp_path / "p").exists()
    kept = OutputDir(str(tmp_path / "q"))
    (tmp_path / "q" / "meta.json").write_text("{}")
    kept.discard()                              # something was written: kept
    assert (tmp_path / "q" / "meta.json").exists()
