"""Parity: N ranks train to the same losses as one rank on the same global
batches, in every parallel mode (fp32: only the summation order differs)."""
import numpy as np
import pytest

from parallel_runs import SCRIPTS, json_lines, mpirun

SCRIPT = SCRIPTS / "train_modes.py"
STEPS = 4


@pytest.fixture(scope="module")
def reference():
    return {model: json_lines(mpirun(1, SCRIPT, "alone", "--model", model,
                                     "--steps", STEPS))[0]["losses"]
            for model in ("lenet", "mlp")}


@pytest.mark.parametrize("n", [2, 4])
@pytest.mark.parametrize("mode,model,extra", [
    ("dp", "lenet", ()),
    ("dp", "lenet", ("--no-overlap",)),
    ("pipeline", "mlp", ()),
    ("shard", "mlp", ()),
])
def test_n_ranks_match_one_rank(reference, n, mode, model, extra):
    out = json_lines(mpirun(n, SCRIPT, mode, "--model", model, "--steps", STEPS, *extra))
    assert len(out) == 1 and out[0]["ranks"] == n
    np.testing.assert_allclose(out[0]["losses"], reference[model], rtol=2e-5, atol=1e-6)


def test_one_rank_modes_match_stand_alone(reference):
    for mode in ("dp", "pipeline", "shard"):
        model = "lenet" if mode == "dp" else "mlp"
        out = json_lines(mpirun(1, SCRIPT, mode, "--model", model, "--steps", STEPS))
        np.testing.assert_allclose(out[0]["losses"], reference[model], rtol=2e-5, atol=1e-6)
