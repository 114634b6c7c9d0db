"""Multi-rank analyses on synthetic profiles whose answers are known by
construction (tests/profiles.py: data_parallel, pipeline, tiny)."""
from __future__ import annotations

import json

import pandas as pd
import pyarrow.parquet as pq
import pytest

import profiles
import msprof
from msprof.analysis import comm, imbalance
from msprof.analysis.units import fmt_ns
from msprof.cli.reporters.table import first_clause
from profiles import dp_clean, dp_contended, dp_slow, pp, ref, ref_dir  # noqa: F401  (fixtures)

SUM = ["compute_ns", "exposed_comm_ns", "bubble_ns", "host_gap_ns", "idle_ns"]
COLS = ["rank", "step_ns"] + SUM + ["overlapped_comm_ns", "comm_wait_ns", "comm_ns"]


def _per_rank(b):
    return b.groupby("rank")[COLS[1:]].mean().astype(int).reset_index().values.tolist()


def test_breakdown_parts_sum_to_the_step(dp_slow, pp, ref):
    for p in (dp_slow, pp, ref):
        b = p.step_breakdown()
        assert (b[SUM].sum(axis=1) == b["step_ns"]).all()
        assert (b["busy_ns"] == b[["compute_ns", "exposed_comm_ns", "bubble_ns"]].sum(axis=1)).all()
        assert (b["comm_ns"] == b[["overlapped_comm_ns", "exposed_comm_ns", "bubble_ns"]].sum(axis=1)).all()
        assert (b[SUM + ["overlapped_comm_ns", "comm_wait_ns"]] >= 0).all().all()


def test_dp_slow_breakdown(dp_slow):
    assert _per_rank(dp_slow.step_breakdown()) == [
        [0, 6000, 4000, 2000, 0, 0, 0, 1000, 1000, 3000],
        [1, 6000, 4000, 2000, 0, 0, 0, 1000, 1000, 3000],
        [2, 6000, 6000, 0, 0, 0, 0, 1000, 0, 1000],
        [3, 6000, 4000, 2000, 0, 0, 0, 1000, 1000, 3000],
    ]
    ov = dp_slow.overlap().set_index("rank")["overlap_ratio"]
    assert ov[2] == 1.0 and ov[0] == pytest.approx(1 / 3)


def test_dp_clean_is_fully_overlapped(dp_clean):
    b = dp_clean.step_breakdown()
    assert set(b["step_ns"]) == {4000} and set(b["compute_ns"]) == {4000}
    assert set(b["exposed_comm_ns"]) == {0} and set(b["overlapped_comm_ns"]) == {1000}


def test_collective_bandwidth_and_skew(dp_slow):
    c = dp_slow.collectives()
    assert len(c) == 3 and set(c["ranks"]) == {4} and set(c["last_rank"]) == {2}
    assert set(c["skew_ns"]) == {2000} and set(c["time_ns"]) == {1000}
    assert set(c["algbw"]) == {1000.0} and set(c["busbw"]) == {1500.0}  # 1e6 B / 1 us; x 2*3/4
    s = dp_slow.comm_stats()
    row = s.iloc[0]
    assert (row["kind"], row["bytes"], row["count"]) == ("allreduce", profiles.DP_BYTES, 3)
    # per rank and instance: three ranks wait 2000, rank 2 none
    assert row["wait_ns"] == 1500 and row["busbw"] == 1500 and row["skew_max_ns"] == 2000


@pytest.mark.parametrize("kind, n, factor", [
    ("allreduce", 8, 2 * 7 / 8), ("allgather", 4, 3 / 4), ("reduce_scatter", 2, 0.5),
    ("broadcast", 8, 1.0), ("send", 2, 1.0), ("recv", 2, 1.0)])
def test_bus_factor_is_nccl_tests(kind, n, factor):
    assert comm.bus_factor(pd.Series([kind]), pd.Series([n]))[0] == pytest.approx(factor)


def test_matrix_spreads_collectives_over_pairs(dp_clean):
    m = dp_clean.comm_matrix()
    assert len(m) == 12  # 4 x 3 ordered pairs
    # each rank moves 1e6 x 1.5 bytes per allreduce, a third to each peer, 3 steps
    assert set(m["bytes"]) == {1_500_000} and set(m["time_ns"]) == {3000}


def test_slow_rank_and_imbalance(dp_slow):
    r = dp_slow.slow_ranks()
    top = r.iloc[0]
    assert (top["rank"], top["compute_ns"], top["excess_ns"], top["caused_wait_ns"]) == (
        2, 6000, 2000, 2000)
    i = dp_slow.imbalance()
    assert list(i["slowest_rank"]) == [2, 2, 2]
    assert i["imbalance"].iloc[0] == pytest.approx(6000 / 4500 - 1)


def test_slow_rank_is_the_top_finding(dp_slow):
    fs = dp_slow.findings()
    assert fs[0]["kind"] == "slow_rank" and fs[0]["ranks"] == [2]
    assert fs[0]["impact_ns"] == 2000 and fs[0]["recommendation"]
    assert "-33%" in fs[0]["message"]
    assert fs[0]["evidence"]["cores_apart"] is False     # no cpu_time table: not known


@pytest.mark.parametrize("late", [1999, 2001])
def test_a_slow_rank_costs_how_late_it_arrives_once_however_many_collectives_wait(tmp_path, late):
    """Rank 2 computes 2000 more than the others, and each step a second
    allreduce (of another bucket) waits for it beside the first, its
    arrival ``late`` after theirs: the others lose the longest of their
    waits for it, once (a sum would say 2000 + late), and the finding's
    what-if is that (its compute excess is 2000 either way)."""
    root = profiles.data_parallel(tmp_path / "p", slow_rank=2)
    comms = pq.read_table(root / "comms.parquet").to_pylist()
    second = [dict(c, seq=c["seq"] + 100, start_ns=c["start_ns"] + (late - 2000 if c["rank"] == 2
                                                                     else 0))
              for c in comms]
    profiles.write_table(root, "comms", comms + second)
    p = msprof.load(root)
    top = p.slow_ranks().iloc[0]
    assert (top["rank"], top["excess_ns"], top["caused_wait_ns"]) == (2, 2000, max(2000, late))
    [f] = [f for f in p.findings() if f["kind"] == "slow_rank"]
    assert f["impact_ns"] == max(2000, late)
    assert f"arrives {fmt_ns(max(2000, late))}/step after them at their collectives" in f["message"]
    # the first clause, what the first screen shows, carries the gain
    assert f"arrives {fmt_ns(max(2000, late))}/step" in first_clause(f["message"])


def test_a_slow_rank_on_cores_of_its_own_says_where_it_ran(tmp_path):
    """Rank 2's compute thread (tid 100, as every kernel's) ran on CPU 3,
    the others' on CPUs 0 and 1; another thread of rank 2 that runs no
    kernel (tid 300) on CPU 0 does not count."""
    root = profiles.data_parallel(tmp_path / "p", slow_rank=2)
    rows = [{"rank": r, "pid": 100 + r, "tid": 100, "cpu": r % 2, "ns": 9000} for r in (0, 1, 3)]
    rows += [{"rank": 2, "pid": 102, "tid": 100, "cpu": 3, "ns": 17_000},
             {"rank": 2, "pid": 102, "tid": 100, "cpu": 1, "ns": 3_000},
             {"rank": 2, "pid": 102, "tid": 300, "cpu": 0, "ns": 50_000}]
    profiles.write_table(root, "cpu_time", rows)
    p = msprof.load(root)
    c = p.compute_cpus()
    assert c[c["rank"] == 2][["cpu", "ns", "share"]].values.tolist() == [[3, 17_000, 0.85],
                                                                         [1, 3_000, 0.15]]
    # 0.85 of its time on a core of its own: not apart enough
    f = [f for f in p.findings() if f["kind"] == "slow_rank"][0]
    assert f["evidence"]["cores_apart"] is False and "ran on CPU" not in f["message"]
    rows[-2]["cpu"] = 2                          # all of it on CPUs 2 and 3 now
    profiles.write_table(root, "cpu_time", rows)
    f = [f for f in msprof.load(root).findings() if f["kind"] == "slow_rank"][0]
    assert f["evidence"]["cores_apart"] is True and f["ranks"] == [2]
    assert "its kernels ran on CPU 2, 3, the other ranks' on CPU 0, 1" in f["message"]
    assert "pin the ranks" in f["recommendation"]
    ranks = msprof.load(root).report(sections=["imbalance"])["imbalance"]["ranks"]
    assert dict(zip(ranks["rank"], ranks["cpus"])) == {0: "0", 1: "1", 2: "2 3", 3: "1"}


def test_ranks_on_other_machines_are_not_apart(tmp_path):
    root = profiles.data_parallel(tmp_path / "p", slow_rank=2)
    profiles.write_table(root, "cpu_time", [
        {"rank": r, "pid": 100 + r, "tid": 100, "cpu": 0, "ns": 9000} for r in range(4)])
    meta = json.loads((root / "meta.json").read_text())
    for r in meta["ranks"]:
        r["host"] = f"node{r['rank']}"          # each rank on its own machine, on its CPU 0
    (root / "meta.json").write_text(json.dumps(meta))
    f = [f for f in msprof.load(root).findings() if f["kind"] == "slow_rank"][0]
    assert f["evidence"]["cores_apart"] is False


def test_cpu_waits_inside_compute_threads_kernels(dp_contended):
    sb = dp_contended.step_breakdown().set_index(["rank", "step"])
    per_rank = sb.groupby(level="rank")[["cpu_wait_ns", "compute_cpu_wait_ns"]].agg(set)
    assert per_rank.to_dict("index") == {
        0: {"cpu_wait_ns": {200}, "compute_cpu_wait_ns": {0}},
        1: {"cpu_wait_ns": {0}, "compute_cpu_wait_ns": {0}},
        2: {"cpu_wait_ns": {2000}, "compute_cpu_wait_ns": {2000}},
        3: {"cpu_wait_ns": {0}, "compute_cpu_wait_ns": {0}}}
    assert (sb.loc[2, "compute_ns"] == 6000).all()


def test_each_kernel_is_charged_its_own_threads_waits_for_a_cpu(dp_contended):
    o = dp_contended.op_stats(per_rank=True).set_index(["rank", "name"])["cpu_wait_ns"]
    # per step (3 steps): rank 2's [500,1500) and [2500,3300) inside MatMul-op1
    # [0,4000), 200 of [5800,6300) inside BiasGrad-op4 [5000,6000) and inside
    # AllReduce-op3 [5000,6000); rank 0's [4500,4700) inside its AllReduce-op3
    # [3000,6000) (every kernel runs on thread 100 in this profile)
    assert o[o > 0].to_dict() == {(2, "MatMul-op1"): 5400, (2, "BiasGrad-op4"): 600,
                                  (2, "AllReduce-op3"): 600, (0, "AllReduce-op3"): 600}
    t = dp_contended.type_stats().set_index("type")["cpu_wait_ns"]
    assert t["MatMul"] == 5400 and t.sum() == 7200


def test_each_kernel_is_charged_its_own_threads_sleep(dp_contended):
    o = dp_contended.op_stats(per_rank=True).set_index(["rank", "name"])["blocked_ns"]
    # rank 0's compute thread asleep 500 per step inside MatMul-op1; rank 1's
    # host thread runs no kernel
    assert o[o > 0].to_dict() == {(0, "MatMul-op1"): 1500}


def test_a_rank_slow_only_by_waiting_for_a_cpu_is_contention_not_a_slow_rank(dp_contended):
    r = dp_contended.slow_ranks().set_index("rank")
    assert (r["compute_ns"] == 4000).all() and (r["excess_ns"] == 0).all()
    assert r.loc[2, "cpu_wait_ns"] == 2000
    fs = dp_contended.findings()
    assert "slow_rank" not in {f["kind"] for f in fs}
    assert fs[0]["kind"] == "cpu_contention" and fs[0]["ranks"] == [2]
    assert fs[0]["impact_ns"] == 2000 and "-33%" in fs[0]["message"]
    assert fs[0]["evidence"]["cpu_wait_ns"] == {0: 200.0, 1: 0.0, 2: 2000.0, 3: 0.0}
    assert fs[0]["evidence"]["held_by"] == {"own threads": 1000, "rank 0": 800,
                                            "msprof collector": 500}
    assert "waited behind: own threads 43%, rank 0 35%, msprof collector 22%" in fs[0]["message"]


def test_a_contended_rank_slower_on_a_cpu_too_is_left_to_the_contention_finding(tmp_path):
    """Rank 2 computes 8000 per step, 2300 of it waiting for a CPU (its
    last wait, [5800, 6300), now inside its compute): 5700 on a CPU against
    the others' 4000.  A core shared with other processes also runs
    kernels slower: the contention finding says so, no slow rank."""
    p = msprof.load(profiles.contended(tmp_path / "p", slow_extra=4000))
    r = p.slow_ranks().set_index("rank")
    assert r.loc[2, "compute_ns"] == 5700 and r.loc[2, "excess_ns"] == 1700
    fs = p.findings()
    assert "slow_rank" not in {f["kind"] for f in fs}
    c = [f for f in fs if f["kind"] == "cpu_contention"][0]
    assert c["ranks"] == [2] and c["evidence"]["on_cpu_excess_ns"] == 1700
    # without the competition: its 2300 of waits and 1700 of slower kernels
    assert c["impact_ns"] == 4000
    assert "rank 2's kernels also took +42% longer on a CPU than the other ranks'" in c["message"]


def test_a_slow_rank_among_ranks_that_all_wait_for_a_cpu_is_still_a_slow_rank(tmp_path):
    """Every rank's compute thread waits 1800 per step for a CPU inside its
    compute ([500, 1500) and [2500, 3300)); rank 2 computes 8000, the others
    4000: on a CPU 6200 against 2200.  Sharing the cores does not explain
    it (every rank shares them alike): a slow rank, beside the contention."""
    root = profiles.data_parallel(tmp_path / "p", slow_rank=2, slow_extra=4000)
    profiles.write_table(root, "cpu_waits", [
        {"rank": r, "pid": 100 + r, "tid": 100, "start_ns": profiles.dp_step_start(st, 4000) + a,
         "dur_ns": b - a, "holder_pid": 99}
        for st in range(3) for r in range(4) for a, b in ((500, 1500), (2500, 3300))])
    fs = msprof.load(root).findings()
    kinds = {f["kind"]: f for f in fs}
    assert kinds["cpu_contention"]["ranks"] == [0, 1, 2, 3]
    assert kinds["cpu_contention"]["evidence"]["slower_on_cpu_rank"] is None
    assert kinds["slow_rank"]["ranks"] == [2] and kinds["slow_rank"]["impact_ns"] == 4000


def test_who_held_the_cores(dp_contended):
    h = dp_contended.cpu_holders()
    assert h[["rank", "holder", "holder_pid", "waits", "wait_ns"]].values.tolist() == [
        [0, "pid 777", 777, 3, 600],
        [2, "own threads", 102, 3, 3000], [2, "rank 0", 100, 3, 2400],
        [2, "msprof collector", 98, 3, 1500]]
    assert h["per_step_ns"].tolist() == [200, 1000, 800, 500]


def test_clean_dp_raises_no_alarm(dp_clean):
    assert all(f["severity"] == "info" for f in dp_clean.findings())


def test_exposed_comm_what_if(tmp_path):
    p = msprof.load(profiles.data_parallel(tmp_path / "x", xfer=3000))
    # allreduce [3000, 6000): 1000 hidden under BiasGrad, 2000 exposed, no wait
    fs = p.findings()
    assert fs[0]["kind"] == "exposed_comm" and fs[0]["ops"] == ["AllReduce-op3"]
    assert fs[0]["impact_ns"] == 2000 and "perfect overlap of AllReduce-op3: -2 us/step (-33%)" in fs[0]["message"]
    ops = p.comm_ops()
    assert ops.iloc[0][["exposed_ns", "wait_ns", "transfer_ns"]].tolist() == [2000, 0, 2000]


def test_comm_bound_strategy_hint(tmp_path):
    p = msprof.load(profiles.data_parallel(tmp_path / "x", xfer=6000))
    kinds = [f["kind"] for f in p.findings()]
    assert "exposed_comm" in kinds and "strategy" in kinds
    hint = next(f for f in p.findings() if f["kind"] == "strategy")
    assert "communication-bound" in hint["message"]


def test_pipeline_breakdown_and_bubble(pp):
    assert _per_rank(pp.step_breakdown()) == [
        [0, 9200, 6000, 100, 3100, 0, 0, 2100, 0, 5300],
        [1, 7200, 6000, 200, 1000, 0, 0, 1100, 0, 2300],
    ]
    st = pp.pipeline().set_index("stage")
    assert st.loc[0, ["bubble_ns", "drain_ns", "fill_ns", "steady_ns"]].tolist() == [3100, 3100, 0, 0]
    assert st.loc[1, ["bubble_ns", "fill_ns"]].tolist() == [1000, 1000]
    assert st.loc[0, "micro_batches"] == 2 and st.loc[0, "ideal_ratio"] == pytest.approx(1 / 3)
    assert st["schedule_ratio"].tolist() == pytest.approx([3100 / 9200, 1000 / 7200])
    causes = pp.bubble_causes()
    assert causes.iloc[0][["rank", "phase", "waited_for", "per_step_ns"]].tolist() == [0, "drain", 1, 3100]
    f = pp.findings()[0]
    assert f["kind"] == "pipeline_bubble" and f["impact_ns"] == 3100
    assert f["evidence"]["schedule_ratio"] == pytest.approx(3100 / 9200)
    assert "micro-batches" in f["recommendation"]


def test_pipeline_messages(pp):
    m = pp.messages()
    assert len(m) == 8 and set(m["time_ns"]) == {100} and set(m["gbps"]) == {10.0}
    mx = pp.comm_matrix().set_index(["src", "dst"])
    assert mx.loc[(0, 1), "bytes"] == 4000 and mx.loc[(0, 1), "gbps"] == 10.0


def test_critical_path_dp(dp_slow):
    p = dp_slow.critical_path()
    assert p[["rank", "kind", "name", "dur_ns"]].values.tolist() == [
        [2, "compute", "MatMul-op1", 4000], [2, "compute", "MatMulGrad-op2", 1000],
        [0, "comm", "AllReduce-op3", 1000]]
    assert p["dur_ns"].sum() == 6000
    assert (p["start_ns"].iloc[1:].to_numpy() == p["end_ns"].iloc[:-1].to_numpy()).all()


def test_critical_path_pipeline(pp):
    p = pp.critical_path(step=0)
    assert p[["rank", "kind", "dur_ns"]].values.tolist() == [
        [0, "compute", 1000], [0, "compute", 1000], [1, "comm", 100], [1, "compute", 1000],
        [1, "compute", 2000], [1, "compute", 2000], [0, "comm", 100], [0, "compute", 2000]]
    assert p["start_ns"].iloc[0] == 20_000 and p["end_ns"].iloc[-1] == 29_200


def test_slow_link(tmp_path):
    """Three pipeline-like pairs; messages 1 -> 2 take 10x longer."""
    comms = []
    for i, (src, dst, t) in enumerate([(0, 1, 100), (1, 2, 1000), (2, 3, 100)] * 2):
        comms += [{"rank": src, "kind": "send", "bytes": 1000, "peer": dst, "seq": i,
                   "start_ns": 1000 * i, "dur_ns": t},
                  {"rank": dst, "kind": "recv", "bytes": 1000, "peer": src, "seq": i,
                   "start_ns": 1000 * i, "dur_ns": t}]
    p = msprof.load(profiles.write_profile(tmp_path / "l", profiles.base_meta((0, 1, 2, 3)),
                                           comms=comms))
    links = p.links()
    assert links.iloc[0][["src", "dst", "gbps", "slow"]].tolist() == [1, 2, 1.0, True]
    assert links["slow"].sum() == 1


def test_memory_peak_live_and_leak(tmp_path):
    p = msprof.load(profiles.data_parallel(tmp_path / "m", leak_rank=1))
    pk = p.memory_peaks().set_index("rank")
    assert pk.loc[0, "peak"] == 11_000 and pk.loc[1, "peak"] == 11_000 + 3 * 256
    live = p.live_at_peak(rank=1)
    assert live[["name", "blocks", "bytes"]].values.tolist() == [
        ["(outside ops)", 1, 10_000], ["MatMul-op1", 1, 1000], ["BiasGrad-op4", 3, 768]]
    nf = p.leaks()
    top = nf.iloc[0]
    assert (top["rank"], top["name"], top["per_step"], top["leak"]) == (1, "BiasGrad-op4", 256, True)
    assert not nf["leak"].iloc[1:].any()  # parameters: never freed, but no leak
    f = p.findings()[0]
    assert f["kind"] == "memory_leak" and f["ranks"] == [1] and f["ops"] == ["BiasGrad-op4"]
    assert "256 bytes/step" in f["message"]
    tl = p.memory_timeline(rank=1, points=10)
    assert tl["in_use"].max() == 11_768 and len(tl) <= 11


def test_host_bound_tiny_kernels(tmp_path):
    p = msprof.load(profiles.tiny(tmp_path / "t"))
    b = p.step_breakdown()
    assert b[["compute_ns", "host_gap_ns", "idle_ns", "queued_ns"]].values.tolist() == [[500, 1360, 140, 100]]
    h = p.host_summary().iloc[0]
    assert (h["launch_cost_ns"], h["kernels"], h["tiny"], h["queue_p50_ns"]) == (200, 10, 10, 10)
    ls = p.launch_stats().iloc[0]
    assert (ls["name"], ls["tiny_share"], ls["queue_p99_ns"]) == ("Add-op1", 1.0, 10)
    assert p.host_gaps().iloc[0][["name", "gaps", "host_ns"]].tolist() == ["Add-op1", 10, 1360]
    f = p.findings()[0]
    assert f["kind"] == "host_bound" and "shorter than the 200 ns" in f["message"]
    assert f["impact_ns"] == 1360



def test_a_torch_profile_is_host_bound_in_its_own_words(tmp_path):
    """The same timeline from PyTorch on a CPU: no device waited, Python
    ran between operators; the what-if and the numbers are the same."""
    root = profiles.tiny(tmp_path / "t")
    meta = json.loads((root / "meta.json").read_text())
    (root / "meta.json").write_text(json.dumps({**meta, "framework": "torch"}))
    p = msprof.load(root)
    f = p.findings()[0]
    assert f["kind"] == "host_bound" and f["impact_ns"] == 1360
    assert "Python between operators took 68% of each step" in f["message"]
    assert "shorter than the 200 ns from one operator's start to the next's" in f["message"]
    assert "device" not in f["message"] and "torch.compile" in f["recommendation"]
    v = p.report(sections=["hostbound"])["hostbound"]["verdict"]
    assert v.startswith("Python between operators took 68% of step time") and "device" not in v


def test_tiny_run_is_charged_what_the_stream_waited_for_it(tmp_path):
    from msprof.analysis import hostbound
    p = msprof.load(profiles.tiny_behind_queued_work(tmp_path / "t"))
    t = hostbound.tiny_time(p.kernels, p.ops)
    assert t[["step", "scope", "type", "kernels", "held_ns", "starved_ns"]].values.tolist() == [
        [0, "net/tiny", "Fill", 10, 590 + 2000, 2000]]

def test_report_sections_are_json(dp_slow):
    import json

    from msprof.analysis.report import SECTIONS, to_json
    doc = to_json(dp_slow.report())
    assert set(SECTIONS) <= set(doc)
    json.dumps(doc, allow_nan=False)
    assert doc["comm"]["collectives"][0]["busbw"] == 1500
    assert doc["critical_path"]["step"] == 1
    only = dp_slow.report(sections=["comm", "findings"])
    assert set(only) == {"meta", "rank", "comm", "findings"}


def test_the_report_shows_cpu_waits_only_where_they_were_seen(dp_contended, ref):
    seen = dp_contended.report(sections=["devices", "ops"])
    assert "cpu_wait_ns" in seen["devices"] and "cpu_wait_ns" in seen["ops"]
    # where each rank computed: only with the cpu_time table
    assert "cpus" not in seen["devices"] and "cpus" not in dp_contended.report(
        sections=["imbalance"])["imbalance"]["ranks"]
    unseen = ref.report(sections=["devices", "steps", "ops", "types"])   # in-process backend
    assert all("cpu_wait_ns" not in unseen[s] for s in ("devices", "steps", "ops", "types"))


def _late_twice(exposed: int, steps: int = 3):
    """Two ranks, two allreduces a step in a row: rank 0 waits 800 for rank
    1 at the first, 2000 at the second, and ``exposed`` of the step's waits
    was not hidden under rank 0's compute (``comm_wait_ns``)."""
    comms, rows = [], []
    for st in range(steps):
        t0 = st * 100_000
        for seq, (arrive0, arrive1) in enumerate(((1000, 1800), (3000, 5000))):
            for r, at in ((0, arrive0), (1, arrive1)):
                comms.append({"rank": r, "pid": 100 + r, "kind": "allreduce", "bytes": 64, "group": 0, "peer": -1,
                              "seq": 2 * st + seq, "step": st, "start_ns": t0 + at,
                              "dur_ns": arrive1 + 100 - at})
        rows += [{"rank": 0, "step": st, "start_ns": t0, "compute_ns": 4000,
                  "comm_wait_ns": exposed},
                 {"rank": 1, "step": st, "start_ns": t0, "compute_ns": 7000, "comm_wait_ns": 0}]
    return pd.DataFrame(rows), pd.DataFrame(comms)


@pytest.mark.parametrize("exposed, lost", [(1999, 2000), (2001, 2001), (2700, 2700)])
def test_a_rank_late_at_collectives_in_a_row_costs_the_larger_of_its_longest_and_exposed_waits(
        exposed, lost):
    """The longest single wait (2000) is what the late rank costs where the
    waiter's compute hid the rest (1999: the longest stands); where more of
    the waits were exposed than the longest alone (a rank late at two
    collectives in a row, 800 + 2000 with 700 of the first under compute),
    the exposed waits are the loss."""
    step_df, comms = _late_twice(exposed)
    r = imbalance.ranks(step_df, comms).set_index("rank")
    assert r.loc[1, "caused_wait_ns"] == lost
    assert r.loc[0, "caused_wait_ns"] == 0


def test_a_waiters_exposed_wait_is_shared_among_the_ranks_it_waited_for():
    """Rank 0 waits 1000 for rank 1 at one collective and 3000 for rank 2 at
    the next, 8000 of its waits exposed: rank 1 is charged a quarter (2000)
    and rank 2 three quarters (6000), each over the two other ranks."""
    comms, rows = [], []
    for st in range(3):
        t0 = st * 100_000
        for seq, arrivals in enumerate(({0: 1000, 1: 2000, 2: 1000},
                                        {0: 3000, 1: 3000, 2: 6000})):
            last = max(arrivals.values())
            for r, at in arrivals.items():
                comms.append({"rank": r, "pid": 100 + r, "kind": "allreduce", "bytes": 64, "group": 0, "peer": -1,
                              "seq": 2 * st + seq, "step": st, "start_ns": t0 + at,
                              "dur_ns": last + 100 - at})
        rows += [{"rank": r, "step": st, "start_ns": t0, "compute_ns": 4000,
                  "comm_wait_ns": 8000 if r == 0 else 0} for r in range(3)]
    r = imbalance.ranks(pd.DataFrame(rows), pd.DataFrame(comms)).set_index("rank")
    # rank 2 also waits 1000 for rank 1 at the first (longest: 1000, exposed 0)
    assert r.loc[1, "caused_wait_ns"] == (2000 + 1000) / 2
    # rank 1 waits 3000 for rank 2 at the second
    assert r.loc[2, "caused_wait_ns"] == (6000 + 3000) / 2
