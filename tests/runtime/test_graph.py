"""Graph capture: scopes, deterministic op ids, shapes, FLOPs and bytes."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from msprof.runtime import functional as F
from msprof.runtime import nn
from msprof.runtime.graph import GraphBuilder
from .nets import LeNet5, lenet_batch, lenet_train_cell

TESTS = Path(__file__).resolve().parent.parent

LENET_FORWARD = [
    ("Conv2D", "net/conv1"), ("ReLU", "net/relu"), ("MaxPool", "net/max_pool2d"),
    ("Conv2D", "net/conv2"), ("ReLU", "net/relu"), ("MaxPool", "net/max_pool2d"),
    ("Reshape", "net/flatten"),
    ("MatMul", "net/fc1"), ("BiasAdd", "net/fc1"), ("ReLU", "net/relu"),
    ("MatMul", "net/fc2"), ("BiasAdd", "net/fc2"), ("ReLU", "net/relu"),
    ("MatMul", "net/fc3"), ("BiasAdd", "net/fc3"),
    ("SoftmaxCrossEntropyWithLogits", "loss"),
]


def train_graph(batch=8):
    _, train = lenet_train_cell()
    x, y = lenet_batch(batch)
    return train.executable(x, y).graph


def test_lenet_training_step_is_one_graph():
    g = train_graph()
    assert len(g.ops) == 43
    assert [(op.type, op.scope) for op in g.ops[:16]] == LENET_FORWARD
    backward = [op for op in g.ops if op.scope.startswith("Gradients/")]
    updates = [op for op in g.ops if op.scope == "optimizer"]
    assert len(backward) == 19 and len(updates) == 8
    assert {op.type for op in updates} == {"ApplyMomentum"}
    # The order is forward, backward, then updates.
    kinds = ["f"] * 16 + ["b"] * 19 + ["u"] * 8
    assert ["b" if op.scope.startswith("Gradients") else "u" if op.scope == "optimizer"
            else "f" for op in g.ops] == kinds
    # The first convolution needs no input gradient: no Conv2DBackpropInput there.
    conv1 = [op.type for op in backward if op.scope == "Gradients/net/conv1"]
    assert conv1 == ["Conv2DBackpropFilter"]


def test_names_and_paths_mindspore_style():
    g = train_graph()
    first = g.ops[0]
    assert first.name == f"Conv2D-op{first.id}"
    assert first.path == f"net/conv1/Conv2D-op{first.id}"
    dw = next(op for op in g.ops if op.type == "Conv2DBackpropFilter")
    assert dw.path == f"Gradients/net/conv2/Conv2DBackpropFilter-op{dw.id}"
    assert g.ops[-1].path == f"optimizer/ApplyMomentum-op{g.ops[-1].id}"


def test_op_ids_consecutive_in_capture_order():
    a, b = train_graph(), train_graph()
    ids_a, ids_b = [op.id for op in a.ops], [op.id for op in b.ops]
    assert ids_a == list(range(ids_a[0], ids_a[0] + 43))
    assert ids_b[0] == ids_a[-1] + 1            # one process-wide counter
    assert b.id == a.id + 1
    assert [op.path.rsplit("-op", 1)[0] for op in a.ops] == \
        [op.path.rsplit("-op", 1)[0] for op in b.ops]


def test_op_ids_identical_across_processes():
    """Same script, same graphs: the same ids and scopes in every run (rank)."""
    code = (f"import sys, json; sys.path.insert(0, {str(TESTS)!r})\n"
            "from msprof.runtime import set_context; set_context(device_target='Null')\n"
            "from runtime.test_graph import train_graph\n"
            "print(json.dumps([[op.id, op.path, op.flops, op.bytes] for op in train_graph().ops]))")
    runs = [subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                           check=True).stdout for _ in range(2)]
    assert json.loads(runs[0]) == json.loads(runs[1])
    assert json.loads(runs[0])[0][:2] == [1, "net/conv1/Conv2D-op1"]


def test_shapes_and_dtypes():
    g = train_graph(batch=4)
    loss_op = g.ops[15]
    assert [v.shape for v in loss_op.outputs] == [(), (4, 10)]
    assert loss_op.inputs[1].dtype == np.int32
    assert all(v.dtype == np.float32 for op in g.ops for v in op.outputs)
    assert g.ops[0].outputs[0].shape == (4, 6, 28, 28)
    assert g.ops[6].outputs[0].shape == (4, 400)


def test_dense_flops_and_bytes():
    dense = nn.Dense(20, 30)
    with GraphBuilder("dense", root=dense) as b:
        dense(b.input((8, 20)))
    matmul, bias = b.ops
    assert matmul.flops == 2 * 8 * 20 * 30
    assert matmul.bytes == 4 * (8 * 20 + 30 * 20 + 8 * 30)
    assert bias.flops == 8 * 30
    assert bias.bytes == 4 * (8 * 30 + 30 + 8 * 30)
    assert (matmul.path, bias.path) == (f"net/MatMul-op{matmul.id}", f"net/BiasAdd-op{bias.id}")


def test_conv_flops_and_bytes():
    conv = nn.Conv2d(3, 8, 5, stride=1, pad_mode="same")
    with GraphBuilder("conv", root=conv) as b:
        conv(b.input((2, 3, 16, 16)))
    (op,) = b.ops
    assert op.outputs[0].shape == (2, 8, 16, 16)
    assert op.flops == 2 * (2 * 8 * 16 * 16) * (3 * 5 * 5)
    assert op.bytes == 4 * (2 * 3 * 16 * 16 + 8 * 3 * 5 * 5 + 2 * 8 * 16 * 16)


def test_inplace_updates_count_read_and_write():
    p = nn.Dense(4, 3)
    opt = nn.Momentum(p.trainable_params(), 0.1)
    with GraphBuilder("opt") as b:
        g = b.input((3, 4))
        F.apply_momentum(p.weight, opt.moments[0], opt.learning_rate, g, 0.9)
    (op,) = b.ops
    assert op.outputs == []
    assert op.bytes == 4 * (12 * 5 + 1)     # read var, accum, lr, grad; write var, accum


def test_shape_errors_at_capture():
    with GraphBuilder("bad") as b:
        x = b.input((2, 3))
        with pytest.raises(ValueError, match="MatMul"):
            F.matmul(x, b.input((4, 5)))


def test_ops_outside_a_capture_are_an_error():
    with pytest.raises(RuntimeError, match="construct"):
        F.relu(np.zeros(3))


def test_parameter_names():
    net = LeNet5()
    names = [n for n, _ in net.parameters_and_names()]
    assert names == ["conv1.weight", "conv2.weight", "fc1.weight", "fc1.bias",
                     "fc2.weight", "fc2.bias", "fc3.weight", "fc3.bias"]


def test_sequential_scopes_and_other_layers():
    net = nn.SequentialCell(nn.Conv2d(1, 4, 3, pad_mode="same", has_bias=True), nn.ReLU(),
                            nn.AvgPool2d(2), nn.Flatten(), nn.Dense(4 * 4 * 4, 3))
    with GraphBuilder("seq", root=net) as b:
        net(b.input((2, 1, 8, 8)))
    assert [(op.type, op.scope) for op in b.ops] == [
        ("Conv2D", "net/0"), ("BiasAdd", "net/0"), ("ReLU", "net/1"), ("AvgPool", "net/2"),
        ("Reshape", "net/3"), ("MatMul", "net/4"), ("BiasAdd", "net/4")]
    assert b.ops[0].outputs[0].shape == (2, 4, 8, 8)
