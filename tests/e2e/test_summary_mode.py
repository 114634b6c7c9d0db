"""Summary mode end to end: the LeNet demo profiled with kernels and pool
events folded in the kernel (eBPF) or by the collector (in-process), set
against a trace-mode run of the same script.

What a run does is the same from run to run (its schedule, its pool plan),
so the counts must agree exactly: every kernel and every pool event the
trace saw is in the summary, per operator.  The kernels run on the
modelled device (MSRT_DEVICE_GFLOPS), so their durations are known: each
big operator's mean lasts its FLOPs' time within 10 %.
"""
import json

import numpy as np
import pytest

import msprof
from conftest import REPO, run_msprof
from msprof.profiler.summary import bucket

EXAMPLE = REPO / "examples" / "lenet_digits.py"
GFLOPS = 2.0
STEPS = 30


@pytest.fixture(scope="module")
def runs(tmp_path_factory, ebpf_ready):
    out = {}
    for name, backend, mode in (("trace", "ebpf", "trace"), ("summary", "ebpf", "summary"),
                                ("inprocess", "inprocess", "summary")):
        path = tmp_path_factory.mktemp("summary") / name
        r = run_msprof("run", "-o", path, "--backend", backend, "--mode", mode, EXAMPLE,
                       "--epochs", 1, "--steps", STEPS, env={"MSRT_DEVICE_GFLOPS": str(GFLOPS)})
        assert r.returncode == 0, r.stderr
        out[name] = msprof.load(path)
        out[name].stderr = r.stderr
    return out


def _kernel_counts(prof):
    return prof.kernels.groupby("op_id").size().sort_index()


def _summary(prof):
    return prof.kernel_summary.groupby("op_id")[["calls", "total_ns"]].sum().sort_index()


@pytest.mark.ebpf
def test_a_summary_holds_every_kernel_the_trace_saw(runs):
    trace, summ = runs["trace"], runs["summary"]
    assert summ.meta["mode"] == "summary" and summ.meta["backend"] == "ebpf"
    assert summ.meta["lost_events"] == 0
    assert len(summ.kernels) == 0 and len(summ.memory) == 0       # folded, not recorded
    got = _summary(summ)
    assert got["calls"].to_dict() == _kernel_counts(trace).to_dict()
    k = summ.kernel_summary
    hist = np.stack(k["hist"].to_numpy())
    assert (hist.sum(axis=1) == k["calls"].to_numpy()).all()
    # the shortest and the longest kernel fall in the first and last bucket used
    used = hist > 0
    first = used.argmax(axis=1)
    last = hist.shape[1] - 1 - used[:, ::-1].argmax(axis=1)
    assert (bucket(k["min_ns"].to_numpy()) == first).all()
    assert (bucket(k["max_ns"].to_numpy()) == last).all()
    assert (k["min_ns"] * k["calls"] <= k["total_ns"]).all()
    assert (k["total_ns"] <= k["max_ns"] * k["calls"]).all()


@pytest.mark.ebpf
def test_a_summary_holds_every_pool_event_the_trace_saw(runs):
    trace, summ = runs["trace"], runs["summary"]
    m = trace.memory
    alloc, free = m[m["size"] > 0], m[m["size"] < 0]
    want = {
        "allocs": alloc.groupby("op_id").size(),
        "alloc_bytes": alloc.groupby("op_id")["size"].sum(),
        "frees": free.groupby("op_id").size(),
        "freed_bytes": -free.groupby("op_id")["size"].sum(),
        "peak_in_use": alloc.groupby("op_id")["in_use"].max(),
    }
    got = summ.memory_summary.set_index("op_id").sort_index()
    for col, series in want.items():
        assert got[col].to_dict() == series.reindex(got.index, fill_value=0).to_dict(), col
    assert got["peak_in_use"].max() == m["in_use"].max()


@pytest.mark.ebpf
def test_kernel_times_in_a_summary_are_the_modelled_devices(runs):
    summ = runs["summary"]
    s = summ.kernel_summary.groupby("op_id").agg(
        calls=("calls", "sum"), total_ns=("total_ns", "sum"), max_ns=("max_ns", "max"))
    flops = summ.ops.drop_duplicates("op_id").set_index("op_id")["flops"]
    model = flops.reindex(s.index).fillna(0) / GFLOPS        # ns
    big = model[model >= 1e6].index
    assert len(big) >= 5
    # the mean of all but the longest kernel: one preempted kernel is not the device
    mean = (s.loc[big, "total_ns"] - s.loc[big, "max_ns"]) / (s.loc[big, "calls"] - 1)
    ratio = mean / model[big]
    assert ((ratio - 1).abs() <= 0.10).all(), ratio.to_dict()


@pytest.mark.ebpf
def test_both_backends_summarise_alike(runs):
    a, b = runs["summary"], runs["inprocess"]
    assert b.meta["backend"] == "inprocess" and b.meta["mode"] == "summary"
    assert _summary(a)["calls"].to_dict() == _summary(b)["calls"].to_dict()
    cols = ["allocs", "alloc_bytes", "frees", "freed_bytes", "peak_in_use"]
    ma = a.memory_summary.set_index("op_id").sort_index()[cols]
    mb = b.memory_summary.set_index("op_id").sort_index()[cols]
    assert ma.equals(mb)


@pytest.mark.ebpf
def test_a_summary_run_records_a_fraction_of_the_trace(runs):
    trace, summ = runs["trace"], runs["summary"]
    folded = summ.meta["folded_events"]
    assert folded == len(trace.kernels) + len(trace.memory)
    # what still travels one by one: steps, ops and the scheduler's records
    # (on the modelled device every kernel sleeps, so those are many here)
    assert summ.meta["events"] * 3 < trace.meta["events"]
    assert abs(summ.meta["events"] + folded - trace.meta["events"]) <= 0.15 * trace.meta["events"]
    assert f"+{folded:,} folded into the summary" in summ.stderr
    # steps still travel one by one
    assert summ.steps["step"].tolist() == list(range(STEPS))
    meta = json.loads((REPO / summ.meta["sources"][0] / "meta.json").read_text())
    assert meta["tables"]["kernel_summary"] == len(summ.kernel_summary)
