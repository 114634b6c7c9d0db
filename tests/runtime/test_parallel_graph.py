"""Parallel graphs on one rank: comm ops on stream 1, bucket scheduling,
shard strategy errors, dataset sharding."""
import numpy as np
import pytest

from msprof.runtime import nn, set_seed
from msprof.runtime.dataset import ShardedBatches
from msprof.runtime.parallel import reset_auto_parallel_context, set_auto_parallel_context
from msprof.runtime.parallel.data_parallel import buckets
from msprof.runtime.parallel.shard import ShardStrategyError

from .nets import lenet_batch, lenet_train_cell


@pytest.fixture(autouse=True)
def plain_context():
    reset_auto_parallel_context()
    yield
    reset_auto_parallel_context()


def _dp_cell(overlap, bucket_bytes=16 << 10):
    set_auto_parallel_context(parallel_mode="data_parallel", overlap=overlap,
                              bucket_bytes=bucket_bytes)
    return lenet_train_cell()


def test_data_parallel_on_one_rank_trains_like_stand_alone():
    x, y = lenet_batch(8)
    _, plain = lenet_train_cell()
    ref = [float(plain(x, y).asnumpy()) for _ in range(3)]
    set_seed(0)
    _, dp = _dp_cell(overlap=True)
    got = [float(dp(x, y).asnumpy()) for _ in range(3)]
    np.testing.assert_allclose(got, ref, rtol=1e-6)


@pytest.mark.parametrize("overlap", [True, False])
def test_buckets_run_on_the_comm_stream_where_scheduled(probes, overlap):
    x, y = lenet_batch(8)
    _, dp = _dp_cell(overlap)
    dp(x, y)
    ops = dp.executable(x, y).graph.ops
    where = [i for i, op in enumerate(ops) if op.type == "AllReduce"]
    last_backward = max(i for i, op in enumerate(ops) if op.scope.startswith("Gradients/net"))
    if overlap:          # interleaved with backward, not all after it
        assert min(where) < last_backward
    else:
        assert min(where) > last_backward
    comm_kernels = {a[0] for a in probes.named("kernel_end") if a[1] == 1}
    assert comm_kernels == {ops[i].id for i in where}
    assert len(probes.named("comm_begin")) == len(probes.named("comm_end")) == len(where)
    seqs = [a[4] for a in probes.named("comm_end")]       # the world's seq counts on
    assert seqs == list(range(seqs[0], seqs[0] + len(where)))


def test_buckets_close_at_bucket_bytes_in_ready_order():
    class G:
        def __init__(self, n):
            self.nbytes = n
    grads = [G(100), G(50), None, G(300), G(10)]
    ready = [3, 2, -1, 1, 0]
    assert buckets(grads, ready, 200) == [[4, 3], [1, 0]]
    assert buckets(grads, ready, 1) == [[4], [3], [1], [0]]


def test_mismatched_shard_strategy_is_an_error_at_compile_naming_the_op():
    class Net(nn.Cell):
        def __init__(self):
            super().__init__()
            self.fc1 = nn.Dense(8, 4).shard(((1, 2), (1, 1)))

        def construct(self, x):
            return self.fc1(x)
    net = Net()                              # shard() itself does not raise
    with pytest.raises(ShardStrategyError, match=r"net/fc1/MatMul: strategy \(\(1, 2\), \(1, 1\)\)"):
        net(np.zeros((2, 8), np.float32))


def test_shard_strategy_mismatch_between_x_and_weight():
    from msprof.runtime.parallel.shard import classify
    with pytest.raises(ShardStrategyError, match="contracted dimension 2 ways in x but 1"):
        classify(((1, 2), (1, 1)), 2)
    assert classify(((1, 1), (2, 1)), 2) == "column"
    assert classify(((1, 2), (1, 2)), 2) == "row"


def test_shard_strategy_entries_must_be_one_or_the_rank_count():
    dense = nn.Dense(8, 4).shard(((1, 1), (3, 1)))
    with pytest.raises(ShardStrategyError, match="1 or the number of ranks"):
        dense(np.zeros((2, 8), np.float32))


def test_sharded_batches_split_each_global_batch():
    data = [(np.arange(8), np.arange(8) * 10)]
    parts = [list(ShardedBatches(data, 4, r))[0] for r in range(4)]
    assert np.concatenate([p[0] for p in parts]).tolist() == list(range(8))
    with pytest.raises(ValueError, match="does not split"):
        list(ShardedBatches(data, 3, 0))
