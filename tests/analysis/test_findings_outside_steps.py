"""Time between steps, memory across steps, the impact floor and advice
that fits the job: each detector on both sides of its threshold, on
synthetic profiles whose answers are known by construction."""
from __future__ import annotations

import pandas as pd
import pytest

import msprof
import profiles
from msprof.analysis import between_steps as bs
from msprof.analysis import findings as fnd
from msprof.analysis import hostbound as hb
from msprof.analysis import idle_causes as ic
from msprof.analysis import memory_steps as ms

STEP = 1000


def loop(root, gaps, ranks=(0,), blocked=(), cpu_waits=(), memory=(), graph_of=None,
         graph_bytes=None):
    """Each rank runs ``len(gaps) + 1`` steps of STEP ns, filled by one
    kernel each (launched well ahead: no host gap), ``gaps[i]`` ns (per
    rank: a dict) after step i before step i + 1 begins.  ``graph_of(i)``:
    the graph whose operator runs in step i (each graph one MatMul op whose
    ``bytes`` are ``graph_bytes(g)``).  Returns the directory and each
    rank's step starts."""
    kernels, steps, starts = [], [], {}
    for r in ranks:
        t = 10_000
        starts[r] = []
        g = gaps[r] if isinstance(gaps, dict) else gaps
        for i in range(len(g) + 1):
            starts[r].append(t)
            steps.append({"rank": r, "pid": 100 + r, "step": i, "start_ns": t, "dur_ns": STEP})
            op = 1 + (graph_of(i) if graph_of else 0)
            kernels.append({"rank": r, "pid": 100 + r, "tid": 300 + r, "op_id": op, "step": i,
                            "launch_ns": t - 500, "start_ns": t, "dur_ns": STEP})
            t += STEP + (g[i] if i < len(g) else 0)
    n_graphs = 1 + (max(graph_of(i) for i in range(len(steps))) if graph_of else 0)
    ops = [{"rank": r, "op_id": 1 + gid, "graph_id": gid, "name": f"MatMul-op{1 + gid}",
            "type": "MatMul", "scope": f"net/dense/MatMul-op{1 + gid}",
            "bytes": graph_bytes(gid) if graph_bytes else 1000}
           for r in ranks for gid in range(n_graphs)]
    root = profiles.write_profile(root, profiles.base_meta(tuple(ranks), backend="ebpf"),
                                  kernels=kernels, steps=steps, ops=ops, memory=list(memory),
                                  blocked=list(blocked), cpu_waits=list(cpu_waits))
    return root, starts


# -- time between steps ---------------------------------------------------------

def test_between_steps_says_where_the_host_thread_spent_it(tmp_path):
    """Gaps of 300 ns: the main thread (tid = pid) asleep [50, 250) after
    each step's end, waiting for a busy CPU [250, 270) (and [270, 290) on
    a CPU that was idle: its waking up, not a wait); another thread's sleep
    does not count.  So 200 asleep, 20 waiting, 80 on a CPU."""
    gaps = [300, 300, 300]
    ends = [10_000 + STEP + i * (STEP + 300) for i in range(3)]
    blocked = [{"rank": 0, "pid": 100, "tid": tid, "start_ns": e + 50, "dur_ns": 200}
               for e in ends for tid in (100, 300)]
    waits = [{"rank": 0, "pid": 100, "tid": 100, "start_ns": e + a, "dur_ns": 20, "idle_cpu": idle,
              "holder_pid": 7} for e in ends for a, idle in ((250, False), (270, True))]
    root, _ = loop(tmp_path / "p", gaps, blocked=blocked, cpu_waits=waits)
    p = msprof.load(root)
    b = p.between_steps()
    assert b["between_steps_ns"].tolist() == gaps
    assert b[["asleep_ns", "cpu_wait_ns", "on_cpu_ns", "device_ns"]].values.tolist() == \
        [[200, 20, 80, 0]] * 3
    sd = p.step_breakdown()
    assert sd["between_steps_ns"].tolist()[:3] == gaps and pd.isna(sd["between_steps_ns"].iloc[3])
    per = bs.per_rank(b, sd).iloc[0]
    assert per["iteration_ns"] == STEP + 300 and per["share"] == pytest.approx(300 / 1300)


@pytest.mark.parametrize("gap, found", [(112, True), (110, False)])
def test_input_bound_on_both_sides_of_its_threshold(tmp_path, gap, found):
    """A share of the iteration between steps of 112 / 1112 = 10.07 % is a
    finding, 110 / 1110 = 9.9 % is not (INPUT_BOUND_FRAC = 10 %)."""
    root, _ = loop(tmp_path / "p", [gap] * 4)
    fs = msprof.load(root).findings()
    hit = [f for f in fs if f["kind"] == "input_bound"]
    assert bool(hit) == found, fs
    if found:
        f = hit[0]
        assert f["severity"] == "warning" and f["ranks"] == [0] and f["impact_ns"] == gap
        assert f"-{gap} ns/iteration" in f["message"]


def test_input_bound_names_the_rank_the_others_wait_for():
    """Rank 0 spends 2000 ns between steps asleep, rank 1 100 on a CPU and
    then waits 1900 per step in its first collective: rank 0 is named,
    with the others' wait."""
    per = pd.DataFrame({"rank": [0, 1], "steps": 4, "step_ns": [1000.0, 2900.0],
                        "between_steps_ns": [2000.0, 100.0], "asleep_ns": [2000.0, 0.0],
                        "cpu_wait_ns": 0.0, "on_cpu_ns": [0.0, 100.0], "device_ns": 0.0})
    per["iteration_ns"] = per["step_ns"] + per["between_steps_ns"]
    per["share"] = per["between_steps_ns"] / per["iteration_ns"]
    devices = pd.DataFrame({"rank": [0, 1], "step_ns": [1000.0, 2900.0],
                            "comm_wait_ns": [0.0, 1900.0]})
    [f] = fnd.input_bound(per, devices)
    assert f["ranks"] == [0] and f["evidence"]["rank"] == 0 and f["impact_ns"] == 2000
    assert "2 us asleep" in f["message"]
    assert "the other ranks wait 1.9 us/step for it in their collectives" in f["message"]
    [f] = fnd.input_bound(per, devices, compiled=3)
    assert "a new graph was compiled before 3 of its steps" in f["message"]


def test_a_torch_loader_is_said_as_time_inside_its_operator_scopes():
    """PyTorch on a CPU: the DataLoader's ``__next__`` is an operator scope
    on the host thread, so its time (``device_ns``) overlaps the host's
    parts: said apart, not listed as one more part (which would add up to
    more than the time between steps)."""
    per = pd.DataFrame({"rank": [0], "steps": 4, "step_ns": [5000.0],
                        "between_steps_ns": [12000.0], "asleep_ns": [9900.0],
                        "cpu_wait_ns": 0.0, "on_cpu_ns": [2100.0], "device_ns": [11800.0]})
    per["iteration_ns"] = per["step_ns"] + per["between_steps_ns"]
    per["share"] = per["between_steps_ns"] / per["iteration_ns"]
    devices = pd.DataFrame({"rank": [0], "step_ns": [5000.0], "comm_wait_ns": [0.0]})
    [mine] = fnd.input_bound(per, devices)
    assert "11.8 us running kernels outside a step" in mine["message"]
    [f] = fnd.input_bound(per, devices, framework="torch")
    assert "running kernels" not in f["message"] and f["impact_ns"] == 12000
    assert ("9.9 us asleep (sleep, I/O, a lock: waiting for data), 2.1 us on a CPU" in f["message"]
            and "(11.8 us of it inside PyTorch operator scopes, a DataLoader's __next__ among "
                "them)" in f["message"])


@pytest.mark.parametrize("gap", [112, 5000])
def test_the_first_screen_sizes_time_between_steps_against_the_iteration(tmp_path, gap):
    """The gain column's share: an input-bound finding against its
    iteration (112 / 1112, 5000 / 6000), never against the step it is no
    part of (5000 / 1000 would read 500 %)."""
    root, _ = loop(tmp_path / "p", [gap] * 4)
    ov = msprof.load(root).report(sections=["overview"])["overview"]
    [f] = [f for f in ov["findings"] if f["kind"] == "input_bound"]
    assert f["share"] == pytest.approx(gap / (STEP + gap))


# -- the impact floor and advice that fits the job ------------------------------

@pytest.mark.parametrize("impact, severity", [(29, "info"), (30, "warning")])
def test_a_warning_below_the_impact_floor_is_an_info(impact, severity):
    items = [fnd._finding("x", "warning", [0], [], impact, "x"),
             fnd._finding("lost_events", "error", [], [], 0, "lost")]
    out = fnd.below_floor(items, 1000.0)          # floor: 3 % of 1000 = 30
    assert [f["severity"] for f in out] == [severity, "error"]
    assert ("below_floor" in out[0]["evidence"]) == (severity == "info")


def _contended(ranks):
    """``ranks`` ranks whose compute threads wait 200 ns/step for a CPU,
    inside their 1000 ns of compute."""
    step_df = pd.DataFrame([{"rank": r, "step": s, "step_ns": 1000, "compute_ns": 1000,
                             "compute_cpu_wait_ns": 200, "comm_wait_ns": 0}
                            for r in ranks for s in range(3)])
    devices = pd.DataFrame({"rank": list(ranks), "step_ns": 1000.0, "cpu_wait_ns": 200.0})
    return step_df, devices


@pytest.mark.parametrize("ranks, mpi", [((0,), False), ((0, 1), True)])
def test_cpu_contention_advice_fits_the_job(ranks, mpi):
    [f] = fnd.cpu_contention(*_contended(ranks), world_size=len(ranks))
    assert ("mpiexec" in f["recommendation"]) == mpi
    assert ("rank" in f["recommendation"]) == mpi


def test_one_rank_contention_that_saves_nothing_is_no_warning():
    """One rank whose compute thread waits 200 ns/step for a CPU, none of it
    inside its kernels: the what-if saves 0 ns, below the floor: an info."""
    step_df, devices = _contended((0,))
    step_df["compute_cpu_wait_ns"] = 0
    [f] = fnd.cpu_contention(step_df, devices, world_size=1)
    assert f["severity"] == "warning" and f["impact_ns"] == 0
    [f] = fnd.below_floor([f], 1000.0)
    assert f["severity"] == "info"


def test_a_collectives_waits_are_not_its_kernel_time():
    """AllReduce-op3 holds 900 of 1000 ns of kernel time, 850 of it waiting
    for a peer: its own 50 leave MatMul-op1 (100) the dominant operator."""
    ops = pd.DataFrame({"name": ["AllReduce-op3", "MatMul-op1"], "type": ["AllReduce", "MatMul"],
                        "total_ns": [900, 100], "share": [0.9, 0.1],
                        "per_step_ns": [900.0, 100.0], "gflops": [float("nan")] * 2})
    assert fnd.dominant_op(ops)[0]["ops"] == ["AllReduce-op3"]
    [f] = fnd.dominant_op(ops, pd.Series({"AllReduce-op3": 850.0}))
    assert f["ops"] == ["MatMul-op1"] and f["evidence"]["share"] == pytest.approx(100 / 150)


# -- memory across steps -------------------------------------------------------

def _grows_between_steps(tmp_path, rises, per=1000):
    """5 steps; before step i + 1 a block of ``per`` bytes (no operator:
    a graph's input buffer) is allocated if ``rises[i]``, never freed."""
    root, starts = loop(tmp_path / "p", [200] * len(rises))
    used, memory = 10_000, [{"rank": 0, "ts_ns": 0, "size": 10_000, "addr": 1, "in_use": 10_000}]
    for i, up in enumerate(rises):
        if up:
            used += per
            memory.append({"rank": 0, "ts_ns": starts[0][i + 1] - 100, "size": per,
                           "addr": 100 + i, "op_id": -1, "in_use": used})
    profiles.write_table(root, "memory", memory)
    return root


@pytest.mark.parametrize("rises, growing", [((1, 1, 1, 0), True),     # 75 %
                                            ((1, 0, 1, 0), False),    # 50 %
                                            ((1, 1, 1), True),        # 3 steps after the first
                                            ((1, 1), False)])         # 2: too few
def test_memory_growth_on_both_sides_of_its_thresholds(tmp_path, rises, growing):
    root = _grows_between_steps(tmp_path, rises)
    p = msprof.load(root)
    g = ms.growth(p.memory_boundaries()).iloc[0]
    assert bool(g["growing"]) == growing
    assert g["bytes_per_step"] == pytest.approx(1000 * sum(rises) / len(rises))
    kinds = [f["kind"] for f in p.findings()]
    assert ("memory_growth" in kinds) == growing
    assert "memory_leak" not in kinds          # allocated between steps: no per-step leak


def test_memory_growth_between_steps_names_what_is_held(tmp_path):
    root = _grows_between_steps(tmp_path, (1, 1, 1, 1))
    p = msprof.load(root)
    assert p.memory_boundaries()["in_use_end"].tolist() == [10_000, 11_000, 12_000, 13_000, 14_000]
    [f] = [f for f in p.findings() if f["kind"] == "memory_growth"]
    assert f["severity"] == "error" and f["ranks"] == [0]
    ev = f["evidence"]
    assert ev["bytes_per_step"] == 1000 and ev["since_step"] == 1 and ev["rising"] == 1.0
    assert ev["held"] == {"(outside ops)": 4000}   # the four allocated after the first step
    assert not ev["graph_cache"]
    assert "(outside ops): 3.91 KiB in 4 block(s), 3.91 KiB of it allocated between steps" \
        in f["message"]


@pytest.mark.parametrize("same, why", [(False, "input shapes change"),
                                       (True, "the same graph compiled again")])
def test_a_new_graph_per_step_is_named(tmp_path, same, why):
    """Each step runs a graph of its own (compiled before it, with its
    input buffer kept): of new shapes (other bytes), or the same one built
    anew."""
    root, starts = loop(tmp_path / "p", [200] * 4, graph_of=lambda i: i,
                        graph_bytes=(lambda g: 1000) if same else (lambda g: 1000 + g))
    memory, used = [], 0
    for i in range(5):
        used += 500
        memory.append({"rank": 0, "ts_ns": starts[0][i] - 100, "size": 500, "addr": 10 + i,
                       "in_use": used})
    profiles.write_table(root, "memory", memory)
    p = msprof.load(root)
    ng = ms.new_graphs(p.kernels, p.ops, p.steps)
    assert ng["index"].tolist() == [0, 1, 2, 3, 4] and ng["new_graphs"].tolist() == [1] * 5
    assert ng["same_shapes"].tolist() == [False] + [same] * 4
    [f] = [f for f in p.findings() if f["kind"] == "memory_growth"]
    assert f["evidence"]["graph_cache"] and f["evidence"]["rebuilt"] == same
    assert "a new graph per step" in f["message"] and why in f["message"]


def test_a_leak_inside_steps_is_left_to_the_leak_finding(tmp_path):
    p = msprof.load(profiles.data_parallel(tmp_path / "p", steps=5, leak_rank=1))
    kinds = [f["kind"] for f in p.findings()]
    assert "memory_leak" in kinds and "memory_growth" not in kinds
    g = ms.growth(p.memory_boundaries()).set_index("rank")
    assert g.loc[1, "growing"] and g.loc[1, "bytes_per_step"] == 256
    assert not g.loc[0, "growing"]


# -- a slow rank, not contention, when its peers held the cores waiting for it --

@pytest.mark.parametrize("holder, slow", [(100, True), (777, False)])
def test_more_work_is_a_slow_rank_even_when_its_peers_spin(tmp_path, holder, slow):
    """Rank 2 computes 8000 ns per step, the others 4000; its compute thread
    waits 2400 of it for a CPU ([500, 1700) and [2500, 3700)).  Held by
    rank 0 (pid 100), which waits for rank 2 in the allreduce, spinning:
    that follows from rank 2's work, so rank 2 is a slow rank (1600 ns on a
    CPU more than the others), and what it costs is how late it arrives at
    the allreduce, its waits in (4000: without its extra work nobody spins
    and it waits for nothing).  Held by another process (pid 777): CPU
    contention, which takes the rank's longer kernels in with it."""
    root = profiles.data_parallel(tmp_path / "p", slow_rank=2, slow_extra=4000)
    profiles.write_table(root, "cpu_waits", [
        {"rank": 2, "pid": 102, "tid": 100, "start_ns": profiles.dp_step_start(st, 4000) + a,
         "dur_ns": b - a, "holder_pid": holder}
        for st in range(3) for a, b in ((500, 1700), (2500, 3700))])
    fs = msprof.load(root).findings()
    kinds = {f["kind"]: f for f in fs}
    assert ("slow_rank" in kinds) == slow, fs
    assert ("cpu_contention" in kinds) == (not slow), fs
    if slow:
        assert kinds["slow_rank"]["ranks"] == [2] and kinds["slow_rank"]["impact_ns"] == 4000
        assert kinds["slow_rank"]["evidence"]["compute_ns"] - kinds["slow_rank"]["evidence"][
            "others_ns"] == 1600
    else:
        assert kinds["cpu_contention"]["evidence"]["slower_on_cpu_rank"] == 2
        assert "pid 777 100%" in kinds["cpu_contention"]["message"]


# -- host-bound operators and device idle as seen --------------------------------

def _causes(kernel_p50, host, queued, cpu_wait=0.0, asleep=0.0, tail=0.0, own=0.0):
    return pd.DataFrame([{"rank": 0, "steps": 5, "kernels": 100.0, "kernel_p50_ns": kernel_p50,
                          "tail_ns": tail, "host_ns": host, "queued_ns": queued,
                          "queued_cpu_wait_ns": cpu_wait, "queued_own_wait_ns": own,
                          "queued_asleep_ns": asleep,
                          "dispatch_ns": queued - cpu_wait - asleep,
                          "per_op_ns": (host + queued) / 100}])


STEP_1MS = pd.DataFrame({"rank": [0], "step_ns": [1_000_000.0]})


@pytest.mark.parametrize("causes, found", [
    (_causes(1000, 50_000, 60_000), True),                 # 1100 per op > 1000, 11 % of the step
    (_causes(1200, 50_000, 60_000), False),                # 1100 per op < its 1200 kernel
    (_causes(500, 40_000, 59_000), False),                 # 9.9 % of the step
    (_causes(500, 40_000, 90_000, cpu_wait=31_000), False),  # the CPU waits are the machine's
])
def test_host_bound_operators_on_both_sides_of_its_thresholds(causes, found):
    fs = fnd.host_per_op(causes, STEP_1MS)
    assert bool(fs) == found
    if found:
        [f] = fs
        assert f["kind"] == "host_bound" and f["impact_ns"] == 110_000
        assert f["evidence"]["per_op_ns"] == 1100 and "1.1 us beyond its kernel" in f["message"]
        assert "11% of the step" in f["message"]


def test_waits_behind_the_ranks_own_host_thread_are_its_cost_per_operator():
    """The executor waited 31 us for a CPU: behind another process, the
    machine's (99 us per step left: 9.9 %); behind the rank's own host
    thread launching, a cost of issuing operators (130 us: 13 %)."""
    assert fnd.host_per_op(_causes(500, 40_000, 90_000, cpu_wait=31_000), STEP_1MS) == []
    [f] = fnd.host_per_op(_causes(500, 40_000, 90_000, cpu_wait=31_000, own=31_000), STEP_1MS)
    assert f["impact_ns"] == 130_000 and "the rank's own threads held" in f["message"]


def test_device_idle_says_what_was_seen_not_a_list_of_guesses():
    devices = pd.DataFrame({"rank": [0], "step_ns": [1000.0], "idle_ns": [400.0],
                            "queued_ns": [300.0], "idle_frac": [0.4]})
    c = _causes(10, 0, 300, cpu_wait=200, asleep=50, tail=100)
    [f] = fnd.idle(devices, causes=c)
    assert ("200 ns a launched kernel waiting while the executor's thread waited for a CPU; "
            "100 ns after the step's last kernel") in f["message"]
    [f] = fnd.idle(devices, causes=_causes(10, 0, 300, cpu_wait=200, own=150))
    assert "(150 ns of it behind the rank's own threads: the host launching)" in f["message"]
    assert "dependencies" not in f["message"] and "a CPU of its own" in f["recommendation"]


@pytest.mark.parametrize("share, kept", [(0.80, 150.0), (0.79, 0.0)])
def test_waits_count_as_the_hosts_only_where_its_own_threads_held_the_cores(share, kept):
    holders = pd.DataFrame({"rank": [0, 0], "holder": ["own threads", "pid 7"],
                            "share": [share, 1 - share]})
    c = ic.mostly_own(_causes(10, 0, 300, cpu_wait=200, own=150), holders)
    assert c["queued_own_wait_ns"].tolist() == [kept]


@pytest.mark.parametrize("long_ops, counted", [(9, 20), (11, 9)])
def test_a_group_whose_median_kernel_is_tiny_counts_all_its_operators(tmp_path, long_ops,
                                                                      counted):
    """One step: 20 Reshape operators in net/chain, launched every 300 ns
    (launch cost 300), each kernel 50 ns but ``long_ops`` of them 350 ns
    (longer than a launch).  While the group's median kernel is shorter
    than the launch cost (9 long: 50 ns), fusing the chain fuses every
    link: all 20 count, one run held from its first start to its last
    end; once it is not (11 long: 350 ns), only the operators whose own
    median is (the 9 short ones)."""
    long = set(range(1, 20, 2)) | {0} if long_ops == 11 else set(range(1, 2 * long_ops, 2))
    assert len(long) == long_ops
    kernels, end = [], 0
    for i in range(20):
        launch = 100 + 300 * i
        start = max(launch + 10, end)
        dur = 350 if i in long else 50
        kernels.append({"rank": 0, "pid": 100, "op_id": 1 + i, "step": 0, "launch_ns": launch,
                        "start_ns": start, "dur_ns": dur})
        end = start + dur
    ops = [{"rank": 0, "op_id": 1 + i, "name": f"Reshape-op{1 + i}", "type": "Reshape",
            "scope": f"net/chain/Reshape-op{1 + i}"} for i in range(20)]
    steps = [{"rank": 0, "pid": 100, "step": 0, "start_ns": 0, "dur_ns": 10_000}]
    p = msprof.load(profiles.write_profile(tmp_path / "p", profiles.base_meta((0,)),
                                           kernels=kernels, ops=ops, steps=steps))
    assert p.host_summary()["launch_cost_ns"].tolist() == [300]
    [t] = hb.tiny_time(p.kernels, p.ops).itertuples()
    assert (t.scope, t.type, t.kernels) == ("net/chain", "Reshape", counted)
    if counted == 20:     # one run: its span, and the 10 ns before it the stream starved
        assert (t.held_ns, t.starved_ns) == (end - kernels[0]["start_ns"] + 10, 10)


def test_fusing_tiny_operators_gives_back_their_gradient_too(tmp_path):
    """One step: 20 Reshape kernels of 50 ns in net/chain, launched every
    200 ns (launch cost 200), then 20 more in Gradients/net/chain: fusing
    the chain fuses its gradient, so the what-if is both groups' held time."""
    kernels = [{"rank": 0, "pid": 100, "op_id": 1 + i, "step": 0, "launch_ns": 100 + 200 * i,
                "start_ns": 110 + 200 * i, "dur_ns": 50} for i in range(40)]
    ops = [{"rank": 0, "op_id": 1 + i, "name": f"Reshape-op{1 + i}", "type": "Reshape",
            "scope": f"{'Gradients/' if i >= 20 else ''}net/chain/Reshape-op{1 + i}"}
           for i in range(40)]
    steps = [{"rank": 0, "pid": 100, "step": 0, "start_ns": 0, "dur_ns": 10_000}]
    p = msprof.load(profiles.write_profile(tmp_path / "p", profiles.base_meta((0,)),
                                           kernels=kernels, ops=ops, steps=steps))
    [f] = [f for f in p.findings() if f["kind"] == "tiny_ops"]
    held = {s: g["held_ns"].sum() for s, g in hb.tiny_time(p.kernels, p.ops).groupby("scope")}
    assert set(held) == {"net/chain", "Gradients/net/chain"}
    assert f["evidence"]["scope"] in held
    assert f["impact_ns"] == int(round(sum(held.values())))
    assert ("more in their forward (20 kernels in net/chain)" in f["message"]
            if f["evidence"]["scope"].startswith("Gradients/") else
            "more in their gradient (20 kernels in Gradients/net/chain)" in f["message"])


@pytest.mark.parametrize("extra, slow", [(260, False), (340, True)])
def test_a_contended_rank_with_much_more_work_is_a_slow_rank(tmp_path, extra, slow):
    """:func:`profiles.contended` with rank 2's compute 8000 + ``extra``, 2300
    of it waiting for a CPU: on a CPU 1700 + ``extra`` more than the
    others' 4000.  +49 % is the shared core's doing (the contention finding
    takes it in); +51 % is more than a shared core explains
    (SHARED_CORE_MAX): a slow rank."""
    p = msprof.load(profiles.contended(tmp_path / "p", slow_extra=4000 + extra))
    assert p.slow_ranks().set_index("rank").loc[2, "excess_ns"] == 1700 + extra
    kinds = {f["kind"]: f for f in p.findings()}
    assert ("slow_rank" in kinds) == slow
    assert kinds["cpu_contention"]["evidence"]["slower_on_cpu_rank"] == (None if slow else 2)
