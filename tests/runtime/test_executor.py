"""The executor's probe sequence: launches on the host, execution on the
stream thread, steps bracketing everything, ops registered once."""
from __future__ import annotations

import threading

import numpy as np
import pytest

from msprof.runtime import context, functional as F, nn
from msprof.runtime.device import get_device
from msprof.runtime.stream import COMPUTE, StreamError
from .nets import lenet_batch, lenet_train_cell


def run_lenet(probes, steps=2):
    _, train = lenet_train_cell()
    x, y = lenet_batch(8)
    losses = [float(train(x, y)) for _ in range(steps)]
    return train.executable(x, y), losses


def test_device_init_once(probes):
    run_lenet(probes)
    get_device()
    assert probes.named("device_init") == [(0, 1, 0)]


def test_op_register_once_per_op(probes):
    exe, _ = run_lenet(probes)
    regs = probes.named("op_register")
    assert regs == [(op.id, exe.graph.id, op.name, op.type, op.path, op.flops, op.bytes)
                    for op in exe.graph.ops]
    assert regs[0][4] == f"net/conv1/Conv2D-op{regs[0][0]}"


def test_kernel_ends_per_step_match_the_op_list_in_order(probes):
    exe, _ = run_lenet(probes, steps=3)
    op_ids = [op.id for op in exe.graph.ops]
    step, per_step = None, {}
    for name, args, _ in probes:
        if name == "step_begin":
            step = args[0]
            per_step[step] = []
        elif name == "kernel_end":
            per_step[step].append(args[0])
        elif name == "step_end":
            assert args[0] == step
            step = None
    assert list(per_step) == [0, 1, 2]
    assert all(ends == op_ids for ends in per_step.values())


@pytest.mark.parametrize("target", ["CPU", "Inline"])
def test_staged_records_are_handed_over_before_each_step_ends(probes, target):
    # Traced, kernel_end and the pool events are staged per thread; every
    # thread that staged one flushes before the step is over.
    context.set_context(device_target=target)
    run_lenet(probes, steps=3)
    pending, steps_checked = set(), 0
    for name, _, thread in probes:
        if name in ("kernel_end", "mem_alloc", "mem_free"):
            pending.add(thread)
        elif name == "flush_staged":
            pending.discard(thread)
        elif name == "step_end":
            assert not pending
            steps_checked += 1
    assert steps_checked == 3


def test_per_op_sequence_and_timestamps(probes):
    exe, _ = run_lenet(probes, steps=2)
    host = threading.get_ident()
    launches = [(a, t) for n, a, t in probes if n == "kernel_launch"]
    begins = [(a, t) for n, a, t in probes if n == "kernel_begin"]
    ends = [(a, t) for n, a, t in probes if n == "kernel_end"]
    assert len(launches) == len(begins) == len(ends) == 2 * len(exe)
    seqs = [a[2] for a, _ in launches]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))      # per-stream counter
    for (la, lt), (ba, bt), (ea, et) in zip(launches, begins, ends):
        assert la == ba == ea[:3]                                  # op id, stream, seq
        assert la[1] == COMPUTE
        assert lt == host and bt == et != host                     # launch host, run stream
        op_id, stream, seq, t_launch, t_begin = ea
        assert 0 < t_launch <= t_begin
    # the probes of one op come in order: launch, then begin, then end
    order = {}
    for i, (name, args, _) in enumerate(probes):
        if name.startswith("kernel_"):
            order.setdefault(args[2], []).append(name)
    assert all(v == ["kernel_launch", "kernel_begin", "kernel_end"] for v in order.values())


def test_step_brackets_every_kernel_and_memory_event(probes):
    run_lenet(probes, steps=2)
    inside = False
    for name, args, _ in probes:
        if name == "step_begin":
            inside = True
        elif name == "step_end":
            inside = False
        elif name.startswith("kernel_") or (name in ("mem_alloc", "mem_free") and args[2] != -1):
            assert inside, name


def test_kernel_end_times_are_consistent(probes, monkeypatch):
    from msprof.runtime import hooks
    from msprof.runtime._usdt import now_ns
    monkeypatch.setattr(hooks, "now_ns", now_ns)
    _, train = lenet_train_cell()
    x, y = lenet_batch(8)
    before = now_ns()
    train(x, y)
    after = now_ns()
    for op_id, stream, seq, t_launch, t_begin in probes.named("kernel_end"):
        assert before <= t_launch <= t_begin <= after


def test_inference_runs_are_not_steps(probes):
    from .nets import LeNet5
    net = LeNet5()
    out = net(np.zeros((3, 1, 32, 32), np.float32))
    assert out.shape == (3, 10)
    assert probes.named("step_begin") == [] and len(probes.named("kernel_end")) == 15


def test_training_decreases_the_loss(probes):
    _, losses = run_lenet(probes, steps=8)
    assert losses[-1] < 0.5 * losses[0]


@pytest.mark.parametrize("target", ["Inline", "Null"])
def test_other_devices_fire_the_same_probes(probes, target):
    context.set_context(device_target=target)
    exe, losses = run_lenet(probes, steps=2)
    ends = probes.named("kernel_end")
    assert [a[0] for a in ends] == [op.id for op in exe.graph.ops] * 2
    host = threading.get_ident()
    assert {t for n, _, t in probes if n == "kernel_end"} == {host}
    if target == "Null":
        assert losses == [0.0, 0.0]                 # nothing computed
    else:
        assert losses[1] < losses[0]


def test_same_seed_same_losses():
    from msprof.runtime import set_seed
    runs = []
    for _ in range(2):
        set_seed(7)
        _, train = lenet_train_cell()
        x, y = lenet_batch(8)
        runs.append([float(train(x, y)) for _ in range(3)])
    assert runs[0] == runs[1]


class Boom(nn.Cell):
    def construct(self, x):
        return F.relu(F.matmul(x, np.ones((3, 3), np.float32)))


def test_a_failing_kernel_raises_at_synchronize(monkeypatch):
    from msprof.runtime.ops_math import MatMul

    def broken(op, ins, outs, ws):
        def fail():
            raise FloatingPointError("boom")
        return fail

    monkeypatch.setattr(MatMul, "bind", staticmethod(broken))
    cell = Boom()
    with pytest.raises(StreamError, match="boom"):
        cell(np.ones((2, 3), np.float32))
    # the stream survives and runs the next graph
    monkeypatch.undo()
    assert Boom()(np.ones((2, 3), np.float32)).shape == (2, 3)


def test_wrong_input_shape_is_a_clear_error():
    cell = Boom()
    exe = cell.executable(np.ones((2, 3), np.float32))
    with pytest.raises(ValueError, match="compiled for"):
        exe.run([np.ones((4, 3), np.float32)])


def test_step_end_carries_the_samples_of_the_step(probes):
    run_lenet(probes, steps=2)                      # a batch of 8
    assert probes.named("step_end") == [(0, 8), (1, 8)]


def test_step_samples_count_each_batch_once_per_job(monkeypatch):
    """Data-parallel ranks each count their own shard; under operator-level
    model parallelism every rank computes on the whole batch, so rank 0
    alone counts it."""
    from msprof.runtime.parallel import context as ctx

    monkeypatch.setitem(ctx._values, "parallel_mode", ctx.ParallelMode.DATA_PARALLEL)
    assert ctx.step_samples(16) == 16
    monkeypatch.setitem(ctx._values, "parallel_mode", ctx.ParallelMode.SEMI_AUTO_PARALLEL)
    monkeypatch.setattr("msprof.runtime.comm.get_rank", lambda: 1)
    assert ctx.step_samples(16) == 0
    monkeypatch.setattr("msprof.runtime.comm.get_rank", lambda: 0)
    assert ctx.step_samples(16) == 16
