"""Summary mode's folding of kernel and pool records (profiler/summary.py):
against a plain pandas aggregation of the same records, however the
records are split into drained batches."""
import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from msprof.probes import events as ev
from msprof.profiler import summary
from msprof.profiler.decode import RankMap


def test_buckets_are_bit_lengths():
    d = np.array([0, 1, 2, 3, 4, 1023, 1024, 2**46 - 1, 2**46, 2**52, -5])
    assert summary.bucket(d).tolist() == [0, 1, 2, 2, 3, 10, 11, 46, 47, 47, 0]
    for x in range(1, 5000):
        assert summary.bucket(np.array([x]))[0] == x.bit_length()


def _records(kernels, allocs):
    """EVENT records: kernels (pid, stream, op_id, begin, dur), then pool
    events (pid, op_id, size, is_free, in_use)."""
    recs = np.zeros(len(kernels) + len(allocs), ev.EVENT)
    for i, (pid, stream, op, begin, dur) in enumerate(kernels):
        recs[i] = (begin + dur, pid, pid, ev.KERNEL, stream, i, op, begin - 5, begin, 0)
    for j, (pid, op, size, free, in_use) in enumerate(allocs, start=len(kernels)):
        recs[j] = (j, pid, pid, ev.MEM_FREE if free else ev.MEM_ALLOC, 0, 0, 4096 * j, size, op,
                   in_use)
    return recs


kernel = st.tuples(st.sampled_from([10, 11]), st.integers(0, 1), st.integers(-1, 4),
                   st.integers(0, 10**12), st.integers(0, 10**9))
pool = st.tuples(st.sampled_from([10, 11]), st.integers(-1, 4), st.integers(1, 10**8),
                 st.booleans(), st.integers(0, 10**10))


@settings(max_examples=60, deadline=None)
@given(st.lists(kernel, max_size=80), st.lists(pool, max_size=80), st.lists(st.integers(0, 160),
                                                                            max_size=4))
def test_folding_in_batches_equals_one_aggregation(kernels, allocs, cuts):
    recs = _records(kernels, allocs)
    rng = np.random.default_rng(len(kernels))
    recs = recs[rng.permutation(len(recs))]          # batches mix kinds and keys
    s = summary.Summarizer()
    rest = [s.take(part) for part in np.split(recs, sorted(c % (len(recs) + 1) for c in cuts))]
    assert sum(map(len, rest)) == 0                  # every record was folded
    ranks = RankMap()
    ranks.add(10, 0)
    tables = s.tables(ranks)

    k = pd.DataFrame(kernels, columns=["pid", "stream", "op_id", "begin", "dur"])
    if len(k):
        got = tables["kernel_summary"].to_pandas().set_index(["pid", "stream", "op_id"]).sort_index()
        want = k.groupby(["pid", "stream", "op_id"])["dur"].agg(["size", "sum", "min", "max"])
        assert got["calls"].tolist() == want["size"].tolist()
        assert got["total_ns"].tolist() == want["sum"].tolist()
        assert got["min_ns"].tolist() == want["min"].tolist()
        assert got["max_ns"].tolist() == want["max"].tolist()
        hist = np.stack(got["hist"].to_numpy())
        assert hist.shape[1] == ev.HIST_BUCKETS
        assert hist.sum(axis=1).tolist() == want["size"].tolist()
        for (key, row), h in zip(want.iterrows(), hist):
            durs = k.set_index(["pid", "stream", "op_id"]).loc[[key], "dur"].to_numpy()
            assert np.array_equal(h, np.bincount(summary.bucket(durs), minlength=ev.HIST_BUCKETS))
        assert got["rank"].tolist() == [0 if p == 10 else -1 for p, _, _ in got.index]
    else:
        assert "kernel_summary" not in tables

    m = pd.DataFrame(allocs, columns=["pid", "op_id", "size", "free", "in_use"])
    if len(m):
        got = tables["memory_summary"].to_pandas().set_index(["pid", "op_id"]).sort_index()
        a, f = m[~m["free"]], m[m["free"]]
        keys = got.index
        assert got["allocs"].tolist() == a.groupby(["pid", "op_id"]).size().reindex(keys, fill_value=0).tolist()
        assert got["alloc_bytes"].tolist() == a.groupby(["pid", "op_id"])["size"].sum().reindex(keys, fill_value=0).tolist()
        assert got["frees"].tolist() == f.groupby(["pid", "op_id"]).size().reindex(keys, fill_value=0).tolist()
        assert got["freed_bytes"].tolist() == f.groupby(["pid", "op_id"])["size"].sum().reindex(keys, fill_value=0).tolist()
        assert got["peak_in_use"].tolist() == a.groupby(["pid", "op_id"])["in_use"].max().reindex(keys, fill_value=0).tolist()
        assert set(keys) == set(zip(m["pid"], m["op_id"]))


def test_other_records_pass_through_untouched():
    recs = _records([(10, 0, 3, 100, 50)], [(10, 3, 64, False, 64)])
    step = np.zeros(1, ev.EVENT)
    step[0]["type"], step[0]["pid"] = ev.STEP, 10
    mixed = np.concatenate([recs[:1], step, recs[1:]])
    rest = summary.Summarizer().take(mixed)
    assert rest.tolist() == step.tolist()


def test_bpf_rows_and_folded_rows_merge():
    """The eBPF backend's map rows join what the collector folded itself."""
    s = summary.Summarizer()
    s.take(_records([(10, 0, 3, 100, 50), (10, 0, 3, 900, 70)], []))
    bpf = summary.fold_kernels(_records([(10, 0, 3, 5000, 20), (10, 0, 4, 0, 1)], []))
    s.add(bpf, np.zeros(0, ev.MEMORY_STATS))
    ranks = RankMap()
    ranks.add(10, 2)
    got = s.tables(ranks)["kernel_summary"].to_pandas().set_index("op_id")
    assert got.loc[3, ["calls", "total_ns", "min_ns", "max_ns"]].tolist() == [3, 140, 20, 70]
    assert got.loc[4, "calls"] == 1 and (got["rank"] == 2).all()


def test_framework_operators_fold_by_their_self_time():
    """A CPU_OP (the PyTorch shim's) folds by its self time (a1), not its
    begin-to-end span, beside the runtime's kernels: as the BPF fold."""
    recs = np.zeros(3, ev.EVENT)
    # ts, pid, tid, type, sub, seq, a0 (op), a1 (self), a2 (begin), a3 (step)
    recs[0] = (1000, 10, 10, ev.CPU_OP, 0, 0, 7, 300, 100, 0)      # span 900, self 300
    recs[1] = (2000, 10, 10, ev.CPU_OP, 0, 1, 7, 500, 1500, 0)     # span 500, self 500
    recs[2] = (3000, 10, 10, ev.KERNEL, 0, 0, 8, 2000, 2400, 0)    # kernel: 600
    s = summary.Summarizer()
    assert len(s.take(recs)) == 0
    ranks = RankMap()
    ranks.add(10, 0)
    got = s.tables(ranks)["kernel_summary"].to_pandas().set_index("op_id")
    assert got.loc[7, ["calls", "total_ns", "min_ns", "max_ns"]].tolist() == [2, 800, 300, 500]
    assert got.loc[8, "total_ns"] == 600
