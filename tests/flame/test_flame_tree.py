"""Frame stacks and trees from synthetic profiles with known answers."""
from __future__ import annotations

import pytest

import profiles
from profiles import dp_slow, ref, ref_dir  # noqa: F401  (fixtures)

from msprof.analysis import flame
from msprof.errors import MsprofError


def _value(rows, *frames):
    return int(rows[rows["stack"].map(lambda s: s[: len(frames)] == frames)]["value"].sum())


def test_device_stacks_sum_to_kernel_time(ref):
    rows = flame.stacks(ref)
    assert rows["value"].sum() == ref.kernels["dur_ns"].sum() == 1550
    # step -> cells -> type -> op
    assert _value(rows, "steps 0-1", "net", "layer1", "dense", "MatMul", "MatMul-op1") == 1100
    assert _value(rows, "outside steps") == 50
    # AllReduce-op3's scope is just "net": it is under net, not under an extra cell
    assert _value(rows, "steps 0-1", "net", "AllReduce", "AllReduce-op3") == 100
    assert set(rows.loc[rows["stack"].map(lambda s: s[-1] == "AllReduce-op3"), "cls"]) == {
        flame.COMM}


def test_per_step_and_one_step(ref):
    rows = flame.stacks(ref, per_step=True, rank=0)
    # by the kernels' step column
    assert _value(rows, "step 0") == 1100 and _value(rows, "step 1") == 100
    one = flame.stacks(ref, step=1)
    assert {s[0] for s in one["stack"]} == {"step 1"}
    assert one["value"].sum() == 100
    with pytest.raises(MsprofError, match="no step 7"):
        flame.stacks(ref, step=7)
    with pytest.raises(MsprofError, match="no rank 5"):
        flame.stacks(ref, rank=5)


def test_launch_comm_and_memory_metrics(ref):
    k = ref.kernels
    known = k[k["launch_ns"] > 0]
    assert flame.stacks(ref, "launch")["value"].sum() == (known["start_ns"] - known["launch_ns"]).sum()
    assert flame.stacks(ref, "comm")["value"].sum() == 100
    mem = flame.stacks(ref, "memory")
    assert mem["value"].sum() == ref.memory.loc[ref.memory["size"] > 0, "size"].sum()


def test_tree_values_and_classes(dp_slow):
    t = flame.tree(flame.stacks(dp_slow, rank=2), "rank 2")
    assert t.value == 3 * (6000 + 1000)
    for _, f in t.walk():
        if f.children:
            assert f.value == sum(c.value for c in f.children)
            assert [c.value for c in f.children] == sorted((c.value for c in f.children), reverse=True)
    grads = t.children[0].child("Gradients")
    assert grads.child("AllReduce").cls == flame.COMM
    assert t.children[0].child("net").cls == flame.COMPUTE


def test_side_by_side_keeps_ranks_apart(dp_slow):
    trees = flame.trees(dp_slow, side_by_side=True)
    assert [t for t, _ in trees] == ["rank 0", "rank 1", "rank 2", "rank 3"]
    assert sum(t.value for _, t in trees) == dp_slow.kernels["dur_ns"].sum()


def test_focus_merges_every_match(dp_slow):
    t = flame.focus(flame.tree(flame.stacks(dp_slow)), "dense")
    # net/dense (forward) and Gradients/net/dense (backward), all ranks merged
    names = {c.name for c in t.children}
    assert names == {"MatMul", "MatMulGrad", "BiasGrad"}
    k = dp_slow.kernels
    assert t.value == k.loc[k["stream"] == 0, "dur_ns"].sum()
    with pytest.raises(MsprofError, match="no frame matches"):
        flame.focus(t, "conv9")


def test_fold_thin_keeps_totals(ref):
    t = flame.tree(flame.stacks(ref))
    folded = flame.fold_thin(t, 0.2)
    assert folded.value == t.value
    for _, f in folded.walk():
        if f.children:
            assert sum(c.value for c in f.children) == f.value
    names = [f.name for _, f in folded.walk()]
    assert any(n.startswith("+") and n.endswith("more") for n in names)
    assert "outside steps" not in names  # 50 of 1550 is below 20 %


def test_unknown_metric(ref):
    with pytest.raises(MsprofError, match="unknown metric"):
        flame.stacks(ref, "watts")
