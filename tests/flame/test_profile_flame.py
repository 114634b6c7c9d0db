"""``Profile.flame``: the frame tree ``msprof flame`` draws, from Python."""
from __future__ import annotations

import pytest

from profiles import frame_at as _find
from profiles import ref, ref_dir  # noqa: F401  (fixtures)

from msprof.analysis import flame
from msprof.errors import MsprofError


def test_flame_tree_of_a_profile(ref):
    root = ref.flame()
    assert isinstance(root, flame.Frame) and root.name == "all ranks"
    assert root.value == ref.kernels["dur_ns"].sum() == 1550
    mm = _find(root, "steps 0-1", "net", "layer1", "dense", "MatMul", "MatMul-op1")
    assert mm.value == 1100 and mm.cls == flame.COMPUTE and not mm.children
    assert _find(root, "outside steps").value == 50
    assert ref.flame(rank=0).name == "rank 0" and ref.flame(rank=1).value == 300
    assert ref.flame(step=1).value == 100
    assert ref.flame(metric="comm").value == 100
    assert ref.flame(focus="dense").name == "dense"


def test_flame_mistakes(ref):
    with pytest.raises(MsprofError, match="unknown metric"):
        ref.flame(metric="nope")
    with pytest.raises(MsprofError, match="no rank 5"):
        ref.flame(rank=5)
