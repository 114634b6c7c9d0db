"""Opening profile directories: validation errors are one clear line."""
from __future__ import annotations

import json

import pandas as pd
import pyarrow.parquet as pq
import pytest

import msprof
import profiles
from msprof.analysis import Profile
from msprof.analysis.exporters.tables import export as export_tables
from msprof.analysis.schema import COLUMNS
from msprof.errors import MsprofError
from profiles import clean_profile, ref, ref_dir  # noqa: F401  (fixtures)


def test_load_returns_profile_with_meta_and_tables(ref_dir):
    p = msprof.load(ref_dir)
    assert isinstance(p, Profile)
    assert p.meta["format_version"] == 1
    assert p.meta["sources"] == [str(ref_dir)]
    assert p.ranks == [0, 1]
    assert len(p.kernels) == len(profiles.REFERENCE_KERNELS)
    assert list(p.kernels.columns[:10]) == ["rank", "pid", "tid", "op_id", "stream", "seq",
                                             "step", "launch_ns", "start_ns", "dur_ns"]
    assert p.kernels["rank"].dtype == "int32" and p.kernels["dur_ns"].dtype == "int64"
    assert len(p.ops) == 6 and len(p.steps) == 4 and len(p.memory) == 6
    assert len(p.comms) == 1 and len(p.devices) == 2


def test_tables_are_read_once(ref):
    assert ref.kernels is ref.kernels


def test_empty_tables_keep_their_columns(tmp_path):
    p = msprof.load(profiles.write_profile(tmp_path / "empty"))
    assert p.kernels.empty and "launch_ns" in p.kernels.columns
    assert p.op_stats().empty and p.device_breakdown().empty and p.findings() == []


def _err(path) -> str:
    with pytest.raises(MsprofError) as e:
        msprof.load(path)
    text = str(e.value)
    assert "\n" not in text
    return text


def test_missing_directory(tmp_path):
    assert _err(tmp_path / "nope") == f"no such profile directory: {tmp_path / 'nope'}"


def test_file_is_not_a_profile(tmp_path):
    f = tmp_path / "f.txt"
    f.write_text("x")
    assert "not a directory" in _err(f)


def test_no_meta(tmp_path):
    (tmp_path / "sub").mkdir()
    assert _err(tmp_path) == (f"not a profile directory: {tmp_path} (no meta.json), nor a "
                              "job directory (no job.json, no subdirectory with a meta.json)")


@pytest.mark.parametrize("text, expected", [
    ("{not json", "corrupt meta.json"),
    ("[1, 2]", "not a JSON object"),
    ('{"command": []}', "no format_version"),
    ('{"format_version": 2}', "unsupported profile format version 2"),
])
def test_bad_meta(ref_dir, text, expected):
    (ref_dir / "meta.json").write_text(text)
    assert expected in _err(ref_dir)


def test_missing_table(ref_dir):
    (ref_dir / "comms.parquet").unlink()
    assert _err(ref_dir) == f"corrupt profile {ref_dir}: no comms.parquet"


def test_corrupt_table(ref_dir):
    (ref_dir / "kernels.parquet").write_bytes(b"PAR1 not really parquet")
    assert _err(ref_dir).startswith(f"corrupt table {ref_dir / 'kernels.parquet'}: ")


def test_table_missing_a_contract_column(ref_dir):
    df = pd.read_parquet(ref_dir / "steps.parquet").drop(columns="dur_ns")
    df.to_parquet(ref_dir / "steps.parquet")
    assert _err(ref_dir).endswith("steps.parquet: no column dur_ns")


def test_optional_columns_are_filled(ref_dir):
    df = pd.read_parquet(ref_dir / "kernels.parquet").drop(columns=["launch_ns", "tid"])
    df.to_parquet(ref_dir / "kernels.parquet")
    k = msprof.load(ref_dir).kernels
    assert (k["launch_ns"] == -1).all() and k["launch_ns"].dtype == "int64"


def _split_by_rank(src, tmp_path):
    """The reference profile as two node directories, one rank each."""
    dirs = []
    for r in (0, 1):
        d = tmp_path / f"node{r}"
        d.mkdir(parents=True)
        meta = json.loads((src / "meta.json").read_text())
        meta["ranks"] = [x for x in meta["ranks"] if x["rank"] == r]
        meta["host"] = f"node{r}"
        meta["lost_events"] = r
        (d / "meta.json").write_text(json.dumps(meta))
        for name in profiles.SCHEMAS:
            df = pd.read_parquet(src / f"{name}.parquet")
            df[df["rank"] == r].to_parquet(d / f"{name}.parquet")
        dirs.append(d)
    return dirs


def test_directories_merge_by_rank(ref, ref_dir, tmp_path):
    merged = msprof.load(_split_by_rank(ref_dir, tmp_path))
    assert merged.ranks == [0, 1]
    assert merged.meta["host"] == "node0,node1"
    assert merged.meta["lost_events"] == 1
    assert len(merged.meta["sources"]) == 2
    pd.testing.assert_frame_equal(merged.op_stats(), ref.op_stats())
    pd.testing.assert_frame_equal(merged.step_breakdown(), ref.step_breakdown())


def _job(ref_dir, tmp_path, nodes=("node0", "node1")) -> "Path":
    """A multi-machine job directory: job.json and one directory per node."""
    job = tmp_path / "job"
    _split_by_rank(ref_dir, job)
    (job / "job.json").write_text(json.dumps({"command": ["train.py"], "nodes": list(nodes),
                                              "exit_status": 0}))
    return job


def test_job_directory_loads_its_nodes_merged_by_rank(ref, ref_dir, tmp_path):
    job = _job(ref_dir, tmp_path)
    merged = msprof.load(job)
    assert merged.ranks == [0, 1]
    assert merged.meta["sources"] == [str(job / "node0"), str(job / "node1")]
    assert merged.meta["host"] == "node0,node1"
    # the job's command (not a node's hydra proxy) and its exit status
    assert merged.meta["command"] == ["train.py"] and merged.meta["exit_status"] == 0
    assert merged.meta["job"]["nodes"] == ["node0", "node1"]
    pd.testing.assert_frame_equal(merged.op_stats(), ref.op_stats())
    pd.testing.assert_frame_equal(merged.step_breakdown(), ref.step_breakdown())
    assert msprof.load([job]).meta["sources"] == merged.meta["sources"]


def test_job_directory_reads_only_the_nodes_job_json_lists(ref_dir, tmp_path):
    job = _job(ref_dir, tmp_path, nodes=["node1"])
    assert msprof.load(job).ranks == [1]


def test_node_directories_copied_into_one_folder_load_without_job_json(ref, ref_dir, tmp_path):
    job = _job(ref_dir, tmp_path)
    (job / "job.json").unlink()
    (job / "notes").mkdir()                      # not a node: no meta.json
    merged = msprof.load(job)
    assert merged.meta["sources"] == [str(job / "node0"), str(job / "node1")]
    pd.testing.assert_frame_equal(merged.op_stats(), ref.op_stats())


@pytest.mark.parametrize("text, expected", [
    ("{not json", "corrupt job.json in {job}: "),
    ('{"nodes": "node0"}', "corrupt job.json in {job}: no list of nodes"),
    ('{"nodes": [], "exit_status": 3}', "job directory {job} holds no node profile (exit status 3)"),
    ('{"nodes": ["node0", "nodeX"]}', "no such profile directory: {job}/nodeX"),
])
def test_bad_job_directory(ref_dir, tmp_path, text, expected):
    job = _job(ref_dir, tmp_path)
    (job / "job.json").write_text(text)
    assert _err(job).startswith(expected.format(job=job))


def test_overlapping_ranks_refuse_to_merge(ref_dir, tmp_path):
    other = profiles.clean(tmp_path / "other")
    assert "rank 0 is in both" in _err([ref_dir, other])


def test_unknown_rank(ref):
    with pytest.raises(MsprofError, match=r"no rank 5 in this profile \(ranks: 0, 1\)"):
        ref.op_stats(rank=5)


def test_a_profile_without_the_optional_cpu_waits_table_loads_and_exports(ref_dir, tmp_path):
    (ref_dir / "cpu_waits.parquet").unlink()
    (ref_dir / "blocked.parquet").unlink()
    p = msprof.load(ref_dir)
    assert p.cpu_waits.empty and list(p.cpu_waits.columns) == [
        "rank", "pid", "tid", "start_ns", "dur_ns", "cpu", "idle_cpu", "holder_pid"]
    assert (p.step_breakdown()["cpu_wait_ns"] == 0).all()
    written = export_tables(p, tmp_path / "out")
    assert pq.read_table(tmp_path / "out" / "cpu_waits.parquet").num_rows == 0
    assert len(written) == len(COLUMNS)
