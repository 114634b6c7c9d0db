"""Folded stacks round-trip: the counts sum to the metric's total."""
from __future__ import annotations

from profiles import dp_slow, ref, ref_dir  # noqa: F401  (fixtures)

from msprof.analysis.exporters import folded


def _read(path):
    out = {}
    for line in path.read_text().splitlines():
        stack, count = line.rsplit(" ", 1)
        assert stack not in out
        out[stack] = int(count)
    return out


def test_device_time_round_trips(dp_slow, tmp_path):
    stacks = _read(folded.export(dp_slow, tmp_path / "f.folded"))
    assert sum(stacks.values()) == dp_slow.kernels["dur_ns"].sum()
    assert stacks["rank 2;steps 0-2;net;dense;MatMul;MatMul-op1"] == 3 * 4000
    for r in range(4):
        k = dp_slow.kernels
        assert sum(v for s, v in stacks.items() if s.startswith(f"rank {r};")) == \
            k.loc[k["rank"] == r, "dur_ns"].sum()


def test_other_metrics_round_trip(ref, tmp_path):
    mem = _read(folded.export(ref, tmp_path / "m.folded", metric="memory"))
    assert sum(mem.values()) == ref.memory.loc[ref.memory["size"] > 0, "size"].sum()
    comm = _read(folded.export(ref, tmp_path / "c.folded", metric="comm"))
    assert comm == {"rank 0;steps 0-1;net;AllReduce;AllReduce-op3": 100}
