"""A profile is readable while it is written and after its writer died
(profiler/writer.py, analysis/chunks.py); closed, it is the documented
Parquet tables.  No root needed: the writer is driven directly."""
import json
import os
import time

import pyarrow as pa
import pyarrow.parquet as pq

import msprof
from msprof.profiler.decode import SCHEMAS
from msprof.profiler.outdir import OutputDir
from msprof.profiler.writer import ProfileWriter


def steps(first: int, n: int) -> pa.Table:
    return pa.table({"rank": [0] * n, "pid": [1] * n, "step": list(range(first, first + n)),
                     "start_ns": [10_000 + 1000 * i for i in range(first, first + n)],
                     "dur_ns": [500] * n, "samples": [64] * n}, schema=SCHEMAS["steps"])


def wait_written(w: ProfileWriter, table: str, rows: int) -> None:
    deadline = time.monotonic() + 10
    while w.rows[table] < rows:
        assert time.monotonic() < deadline, "writer thread stalled"
        time.sleep(0.005)


def open_writer(path):
    out = OutputDir(str(path))
    return out, ProfileWriter(out, {"start_ns": 10_000, "ranks": []})


def test_each_batch_is_readable_as_soon_as_it_is_written(tmp_path):
    out, w = open_writer(tmp_path / "p")
    w.add({"steps": steps(0, 5)})
    w.add({"steps": steps(5, 5)})
    w.checkpoint(ranks=[{"rank": 0, "pid": 1, "world_size": 1, "host": "h"}], events=10)
    wait_written(w, "steps", 10)
    time.sleep(0.1)                             # the checkpoint follows the rows
    prof = msprof.load(tmp_path / "p")
    assert prof.steps["step"].tolist() == list(range(10))
    assert prof.ranks == [0] and len(prof.kernels) == 0
    assert prof.meta["complete"] is False
    assert prof.meta["recorded_until_ns"] == 10_000 + 9000 + 500
    doc = prof.report(sections=["steps"])
    assert doc["partial"] == ("partial: its collector ended before closing it; "
                              "holds data up to 0.0 s after the start")
    w.close()
    out.release()


def test_a_batch_cut_short_is_dropped_and_the_others_kept(tmp_path):
    out, w = open_writer(tmp_path / "p")
    w.add({"steps": steps(0, 100)})
    wait_written(w, "steps", 100)
    w.add({"steps": steps(100, 100)})
    wait_written(w, "steps", 200)
    path = tmp_path / "p" / "steps.arrows"
    size = path.stat().st_size
    os.truncate(path, size - 40)                # as if killed inside the second write
    prof = msprof.load(tmp_path / "p")
    assert prof.steps["step"].tolist() == list(range(100))
    out.release()


def test_a_stream_never_written_reads_as_an_empty_table(tmp_path):
    out, w = open_writer(tmp_path / "p")
    for name in SCHEMAS:
        os.truncate(tmp_path / "p" / f"{name}.arrows", 0)
    prof = msprof.load(tmp_path / "p")
    assert len(prof.steps) == 0 and list(prof.steps.columns)[:3] == ["rank", "pid", "step"]
    out.release()


def test_close_writes_the_documented_parquet_tables_and_removes_the_chunks(tmp_path):
    out, w = open_writer(tmp_path / "p")
    for i in range(30):
        w.add({"steps": steps(100 * i, 100)})
    w.close(exit_status=0)
    out.release()
    names = sorted(os.listdir(tmp_path / "p"))
    assert names == sorted([".msprof.lock", "meta.json", *(f"{n}.parquet" for n in SCHEMAS)])
    t = pq.read_table(tmp_path / "p" / "steps.parquet")
    assert t.schema == SCHEMAS["steps"]
    assert t.column("step").to_pylist() == list(range(3000))
    assert pq.read_table(tmp_path / "p" / "kernels.parquet").num_rows == 0
    meta = json.loads((tmp_path / "p" / "meta.json").read_text())
    assert meta["complete"] is True and meta["tables"]["steps"] == 3000
    assert "stopped" not in meta


def test_the_partial_note_says_why_and_up_to_when_where_it_can():
    from msprof.analysis.chunks import partial_note

    assert partial_note({"start_ns": 10**9, "recorded_until_ns": 46 * 10**9 + 10**9 // 4,
                         "stopped": "cannot write the profile to p while collecting: the disk is full"}) == (
        "partial: cannot write the profile to p while collecting: the disk is full; "
        "holds data up to 45.2 s after the start")
    assert partial_note({"start_ns": 10**9}) == "partial: its collector ended before closing it"
    assert partial_note({"recorded_until_ns": 5}) == "partial: its collector ended before closing it"
