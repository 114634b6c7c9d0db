"""Unmodified PyTorch training under `msprof run`, through the shim and
eBPF: the same profile and analyses as the runtime's.

The reference is torch.profiler itself, run by the script over the same
steps in the same process: msprof's per-operator self times must agree
with its key_averages() within 10 % for the top operators."""
import json

import pytest

import msprof
from conftest import REPO, run_msprof

SCRIPT = REPO / "tests" / "torch" / "scripts" / "train.py"
NAME_LEN = 63   # probes/events.py: names travel cut to 63 bytes


def _run(tmp, *args, nprocs=1):
    out, stats = tmp / "profile", tmp / "stats"
    n = ["-n", nprocs] if nprocs > 1 else []
    r = run_msprof("run", "-o", out, *n, SCRIPT, "--stats", stats, *args, timeout=600)
    return r, out, stats


def _stats(stats, rank=0):
    return json.loads(open(f"{stats}.{rank}.json").read())


@pytest.fixture(scope="module")
def single(tmp_path_factory, torch_ready):
    r, out, stats = _run(tmp_path_factory.mktemp("torch1"), "--torch-profiler")
    assert r.returncode == 0, r.stderr
    return msprof.load(out), _stats(stats), out


def test_meta_names_the_framework(single):
    prof, _, out = single
    meta = json.loads((out / "meta.json").read_text())
    assert meta["framework"] == "torch"
    assert meta["frameworks_loaded"] == ["torch"]
    assert prof.meta["lost_events"] == 0


# Both profilers time every call, each from its own callback: where the
# VM preempts the process between the two callbacks of one call (8 ms
# slices were seen with the machine loaded), one profiler charges the
# preemption to the operator and the other to its parent.  Such calls are
# told apart call by call (the k-th call of an operator in each) and left
# out, a few at most; every other call counts.
PREEMPTED_US = 500
MAX_PREEMPTED = 0.02


def test_self_times_agree_with_torch_profiler(single):
    prof, stats, _ = single
    k = prof.kernels.merge(prof.ops[["rank", "op_id", "name"]], on=["rank", "op_id"])
    t0, t1 = stats["window_ns"]
    k = k[(k.start_ns >= t0) & (k.start_ns + k.total_ns <= t1)].sort_values("start_ns")
    theirs = {key[:NAME_LEN]: v for key, v in stats["key_averages"].items()}
    per_call = {key[:NAME_LEN]: v for key, v in stats["calls_self_us"].items()}
    top = sorted(theirs, key=lambda n: theirs[n]["self_us"], reverse=True)[:10]
    for name in top:
        mine = k.loc[k.name == name, "dur_ns"].to_numpy() / 1e3
        ref = per_call[name]
        assert len(mine) == len(ref) == theirs[name]["count"], name
        agree = [abs(a - b) <= PREEMPTED_US for a, b in zip(mine, ref)]
        assert agree.count(False) <= max(1, MAX_PREEMPTED * len(ref)), name
        total_mine = sum(a for a, ok in zip(mine, agree) if ok)
        total_ref = sum(b for b, ok in zip(ref, agree) if ok)
        assert 0.9 <= total_mine / total_ref <= 1.1, (name, total_mine, total_ref)


def test_steps_are_the_optimizer_steps(single):
    prof, stats, _ = single
    assert len(prof.steps) == stats["optimizer_steps"] == 40
    # Each step ends with the optimizer and begins after the DataLoader:
    # the loader's time lies between steps, not in them.
    k = prof.kernels.merge(prof.ops[["rank", "op_id", "name"]], on=["rank", "op_id"])
    loader = k[k.name.str.startswith("enumerate(DataLoader)")]
    steps = prof.steps.sort_values("start_ns")
    ends = steps.start_ns.to_numpy() + steps.dur_ns.to_numpy()
    for s, e in zip(loader.start_ns, loader.start_ns + loader.total_ns):
        inside = (steps.start_ns.to_numpy() < e) & (ends > s)
        assert not inside.any()


def test_module_scopes_name_forward_and_backward_ops(single):
    prof, _, _ = single
    ops = prof.ops
    linear = ops[ops.name == "aten::addmm"]
    assert set(linear.scope) == {"MLP/encoder/0/aten::addmm", "MLP/encoder/2/aten::addmm",
                                 "MLP/head/aten::addmm"}
    # Every op that ran inside the model's forward has the model's scope.
    k = prof.kernels.merge(ops[["rank", "op_id", "name", "scope"]], on=["rank", "op_id"])
    fwd = k[k.name == "aten::linear"]
    assert len(fwd) and fwd.scope.str.startswith("MLP/").all()
    grads = ops[ops.name == "AddmmBackward0"]
    assert set(grads.scope) == {"Gradients/MLP/encoder/0/AddmmBackward0",
                                "Gradients/MLP/encoder/2/AddmmBackward0",
                                "Gradients/MLP/head/AddmmBackward0"}
    # The gradient's own kernels (mm) sit under the module's gradient scope;
    # the engine's evaluate_function around a node is the backward pass's.
    mm = ops[ops.name == "aten::mm"]
    assert {"Gradients/MLP/encoder/2/aten::mm", "Gradients/MLP/head/aten::mm"} <= set(mm.scope)
    engine = ops[ops.name.str.startswith("autograd::engine::evaluate_function: Addmm")]
    assert len(engine) and engine.scope.str.startswith("Gradients/").all()


def test_report_flame_and_exports_read_a_torch_profile(single, tmp_path):
    _, _, out = single
    r = run_msprof("report", out, "--format", "json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert any(o["name"] == "aten::mm" for o in doc["ops"])
    r = run_msprof("report", out)
    assert r.returncode == 0 and "aten::addmm" in r.stdout, r.stderr
    r = run_msprof("flame", out, "--width", 100)
    assert r.returncode == 0 and "MLP" in r.stdout, r.stderr
    for to in ("chrome", "folded", "parquet", "hta"):
        r = run_msprof("export", out, "--to", to, "-o", tmp_path / to)
        assert r.returncode == 0, (to, r.stderr)


def test_memory_growth_is_what_the_script_keeps(tmp_path, torch_ready):
    keep = 1 << 20
    r, out, stats = _run(tmp_path, "--keep-bytes", keep, "--steps", 30)
    assert r.returncode == 0, r.stderr
    prof = msprof.load(out)
    assert _stats(stats)["kept_bytes"] == 30 * keep
    mem = prof.memory.sort_values("ts_ns")
    steps = prof.steps.sort_values("step")
    ends = (steps.start_ns + steps.dur_ns).to_numpy()
    # Bytes in use at each step's end, from the allocator's own count.
    in_use = [mem[mem.ts_ns <= e].in_use.iloc[-1] for e in ends]
    growth = (in_use[-1] - in_use[5]) / (len(ends) - 1 - 5)
    assert abs(growth - keep) <= 0.1 * keep, growth
    doc = json.loads(run_msprof("report", out, "--format", "json").stdout)
    leak = [f for f in doc["findings"] if f["kind"] == "memory_leak"]
    assert leak, doc["findings"]
    assert abs(leak[0]["evidence"]["bytes_per_step"] - keep) <= 0.1 * keep, leak[0]


def test_a_killed_torch_process_leaves_a_readable_profile(tmp_path, torch_ready):
    r, out, _ = _run(tmp_path, "--kill-at-step", 15, "--steps", 40)
    assert r.returncode == 128 + 9, r.stderr
    prof = msprof.load(out)
    assert len(prof.steps) >= 14
    assert run_msprof("report", out).returncode == 0


def test_a_script_with_no_framework_gets_one_line(tmp_path, ebpf_ready):
    script = tmp_path / "plain.py"
    script.write_text("import sys\nsum(range(1000))\nsys.exit(3)\n")
    r = run_msprof("run", "-o", tmp_path / "p", script)
    assert r.returncode == 3
    assert "no instrumented framework found in the profiled processes" in r.stderr
    assert "PyTorch" in r.stderr and "nothing stands out" not in r.stdout + r.stderr


def test_without_root_the_inprocess_backend_records_the_same(tmp_path, torch_ready):
    """The shim writes the in-process backend's files itself: one schema,
    the same steps, operators and scopes as through eBPF."""
    runs = {}
    for backend in ("ebpf", "inprocess"):
        out = tmp_path / backend
        r = run_msprof("run", "-o", out, "--backend", backend, SCRIPT, "--steps", 12)
        assert r.returncode == 0, r.stderr
        runs[backend] = msprof.load(out)
    counts = {}
    for backend, prof in runs.items():
        assert len(prof.steps) == 12
        k = prof.kernels.merge(prof.ops[["rank", "op_id", "name", "scope"]], on=["rank", "op_id"])
        counts[backend] = k.groupby(["name", "scope"]).size()
    model = [key for key in counts["ebpf"].index if key[1].startswith(("MLP", "Gradients"))]
    assert model
    for key in model:
        assert counts["inprocess"].get(key) == counts["ebpf"][key], key


def test_summary_mode_folds_torch_operators_with_either_backend(tmp_path, torch_ready):
    """Summary mode: the operators fold into kernel_summary by their self
    time (in the kernel with eBPF, in the collector without root), the
    same calls per operator either way, and no kernel rows."""
    calls = {}
    for backend in ("ebpf", "inprocess"):
        out = tmp_path / backend
        r = run_msprof("run", "-o", out, "--backend", backend, "--mode", "summary", SCRIPT,
                       "--steps", 12)
        assert r.returncode == 0, r.stderr
        prof = msprof.load(out)
        assert prof.kernels.empty
        s = prof.kernel_summary.merge(prof.ops[["rank", "op_id", "scope"]], on=["rank", "op_id"])
        model = s[s["scope"].str.startswith(("MLP", "Gradients"))]
        assert len(model) and (model["total_ns"] > 0).all()
        calls[backend] = model.groupby("scope")["calls"].sum()
    assert calls["inprocess"].equals(calls["ebpf"]), (calls["inprocess"], calls["ebpf"])


def test_profiler_steps_are_steps_where_no_optimizer_steps(tmp_path, torch_ready):
    """An inference loop profiled with torch.profiler's schedule (it calls
    prof.step() per batch, no optimizer): each ProfilerStep#N is a step,
    its operators inside it, and torch.profiler's own window still works."""
    out, stats = tmp_path / "profile", tmp_path / "stats.json"
    batches = 12
    r = run_msprof("run", "-o", out, REPO / "tests" / "torch" / "scripts" / "infer_scheduled.py",
                   "--batches", batches, "--stats", stats)
    assert r.returncode == 0, r.stderr
    prof = msprof.load(out)
    assert sorted(prof.steps["step"]) == list(range(batches))
    k = prof.kernels.merge(prof.ops[["rank", "op_id", "name", "scope"]], on=["rank", "op_id"])
    linear = k[k["name"] == "aten::linear"]
    assert linear.groupby("step").size().to_dict() == {i: 2 for i in range(batches)}
    assert not k["name"].str.startswith("ProfilerStep").any()
    seen = json.loads(stats.read_text())["torch_profiler_ops"]
    assert seen.get("aten::linear") == 3 * 2     # its 3 active steps, 2 layers each


@pytest.mark.parametrize("backend", ["ebpf", "inprocess"])
def test_custom_functions_and_torch_compile_run_as_without_msprof(tmp_path, torch_ready, backend):
    """A custom autograd.Function and a torch.compile'd model: PyTorch reads
    the profiler state at each of their calls, where the shim keeps its
    memory reporter (once read as a profiler state past its end:
    std::bad_alloc from the script, or a crash when asked which profiler
    runs).  The loop trains as it does alone, every optimizer step is a
    step, the compiled graph and the function are operators, and the CPU
    allocator's blocks are still recorded."""
    script = REPO / "tests" / "torch" / "scripts" / "compiled.py"
    alone = tmp_path / "alone.json"
    import subprocess
    import sys
    r = subprocess.run([sys.executable, script, "--stats", alone], capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stderr
    out, stats = tmp_path / "profile", tmp_path / "stats.json"
    r = run_msprof("run", "--backend", backend, "-o", out, script, "--stats", stats, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    mine, theirs = json.loads(stats.read_text()), json.loads(alone.read_text())
    assert mine["loss"] == pytest.approx(theirs["loss"], rel=1e-5)
    # no torch.profiler is running, as far as PyTorch (and a library asking it) can tell
    assert (mine["profiler_enabled"], mine["profiler_type"]) == (
        theirs["profiler_enabled"], theirs["profiler_type"]) == (False, "ActiveProfilerType.NONE")
    prof = msprof.load(out)
    assert len(prof.steps) == mine["optimizer_steps"]
    names = set(prof.ops["name"])
    assert {"Square", "CompiledFunction"} <= names, sorted(names)
    assert (prof.memory["size"] > 0).any()


def test_diff_matches_torch_operators_by_module(single, tmp_path):
    """Two PyTorch profiles (a narrower model beside the fixture's):
    operators are matched by module scope and type, none shows as new."""
    _, _, out = single
    r, narrow, _ = _run(tmp_path, "--hidden", 128, "--steps", 20)
    assert r.returncode == 0, r.stderr
    r = run_msprof("diff", out, narrow, "--format", "json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    ops = doc["ops"]
    mm = [o for o in ops if str(o.get("scope", "")).endswith("MLP/encoder/2/aten::addmm")]
    assert mm and all(o["change"] == "" for o in mm), mm
    assert not [o for o in ops if o["change"] and "MLP/" in str(o["scope"])]
