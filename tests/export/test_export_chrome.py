"""The chrome export against the trace-event format: every event's phase,
pid/tid and ts/dur types, and the tracks Perfetto shows."""
from __future__ import annotations

import json
from collections import Counter

from profiles import dp_contended, dp_slow, ref, ref_dir  # noqa: F401  (fixtures)

from msprof.analysis.exporters import chrome

PHASES = {"X", "B", "E", "i", "I", "C", "M", "b", "e", "n", "s", "t", "f"}


def _num(x):
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def validate(doc):
    """Asserts the Chrome trace-event format's rules on every event."""
    assert isinstance(doc, dict) and isinstance(doc["traceEvents"], list)
    for ev in doc["traceEvents"]:
        assert ev["ph"] in PHASES, ev
        assert isinstance(ev["pid"], int) and isinstance(ev["tid"], int), ev
        assert isinstance(ev["name"], str), ev
        if ev["ph"] == "M":
            assert ev["name"] in {"process_name", "process_sort_index", "thread_name",
                                  "thread_sort_index", "trace_start"}
            continue
        assert _num(ev["ts"]) and ev["ts"] >= 0, ev
        if ev["ph"] == "X":
            assert _num(ev["dur"]) and ev["dur"] >= 0, ev
        if ev["ph"] == "C":
            assert ev["args"] and all(_num(v) for v in ev["args"].values()), ev
        if "args" in ev:
            assert isinstance(ev["args"], dict)


def test_reference_trace(ref, tmp_path):
    out = chrome.export(ref, tmp_path / "t.json")
    doc = json.loads(out.read_text())
    validate(doc)
    evs = doc["traceEvents"]
    names = {(e["pid"], e["tid"]): e["args"]["name"] for e in evs if e["name"] == "thread_name"}
    procs = {e["pid"]: e["args"]["name"] for e in evs if e["name"] == "process_name"}
    assert procs == {1: "rank 0 (node0)", 2: "rank 1 (node0)"}
    assert names[(1, chrome.STREAM_TID0)] == "compute stream"
    assert names[(1, chrome.STREAM_TID0 + 1)] == "communication stream"
    assert names[(1, chrome.STEPS_TID)] == "steps"
    kernels = [e for e in evs if e["ph"] == "X" and e["tid"] >= chrome.STREAM_TID0]
    assert len(kernels) == len(ref.kernels)
    # exact nanoseconds survive as microsecond decimals
    assert sum(round(e["dur"] * 1000) for e in kernels) == ref.kernels["dur_ns"].sum()
    mm = next(e for e in kernels if e["name"] == "MatMul-op1")
    assert mm["args"]["scope"] == "net/layer1/dense/MatMul-op1"
    assert mm["args"]["type"] == "MatMul" and mm["args"]["flops"] == 2_750_000
    assert mm["ts"] == 1.1 and mm["dur"] == 0.2 and mm["args"]["launch_delay_ns"] == 50
    ar = next(e for e in kernels if e["name"] == "AllReduce-op3")
    assert ar["tid"] == chrome.STREAM_TID0 + 1 and ar["cat"] == "communication"
    steps = [e for e in evs if e.get("cat") == "step"]
    assert Counter(e["name"] for e in steps) == {"step 0": 2, "step 1": 2}
    counters = [e for e in evs if e["ph"] == "C"]
    assert len(counters) == len(ref.memory)
    assert max(e["args"]["bytes"] for e in counters if e["pid"] == 1) == 4000
    colls = [e for e in evs if e["tid"] == chrome.COLLECTIVES_TID and e["ph"] == "X"]
    assert colls == [{"ph": "X", "cat": "communication", "name": "allreduce", "pid": 1,
                      "tid": chrome.COLLECTIVES_TID, "ts": 1.6, "dur": 0.1,
                      "args": {"bytes": 4096, "peer": -1, "seq": 0, "group": 0, "step": 0}}]


def test_batches_and_escaping(dp_slow, tmp_path, monkeypatch):
    monkeypatch.setattr(chrome, "BATCH_ROWS", 3)
    ops = dp_slow.ops
    ops.loc[0, "name"] = 'Mat"Mul\\op'
    out = chrome.export(dp_slow, tmp_path / "t.json")
    doc = json.loads(out.read_text())
    validate(doc)
    kernels = [e for e in doc["traceEvents"] if e["ph"] == "X" and e["tid"] >= chrome.STREAM_TID0]
    assert len(kernels) == len(dp_slow.kernels)
    assert 'Mat"Mul\\op' in {e["name"] for e in kernels}


def test_us_formatting_is_exact():
    assert chrome.us([0, 1, 999, 1000, 1234567, -1500]).to_pylist() == [
        "0.000", "0.001", "0.999", "1.000", "1234.567", "-1.500"]


def test_waits_for_a_busy_cpu_are_async_slices(dp_contended, tmp_path):
    doc = json.loads(chrome.export(dp_contended, tmp_path / "t.json").read_text())
    validate(doc)
    waits = [e for e in doc["traceEvents"] if e.get("cat") == "cpu_wait"]
    begins = [e for e in waits if e["ph"] == "b"]
    ends = {e["id"]: e for e in waits if e["ph"] == "e"}
    # per step: rank 2's four waits on a busy CPU (three of its compute
    # thread, one of its host thread) and rank 0's one; the idle one is left out
    assert Counter(e["pid"] for e in begins) == {3: 12, 1: 3} and len(ends) == 15
    first = min((e for e in begins if e["pid"] == 3), key=lambda e: e["ts"])
    assert first["args"] == {"thread": 300, "cpu": 1, "held_by_pid": 101}
    assert round((ends[first["id"]]["ts"] - first["ts"]) * 1000) == 2900
