"""A rank dying mid-run ends the job with a non-zero status, without hanging."""
import time

from parallel_runs import SCRIPTS, mpirun


def test_rank_crash_ends_the_job_non_zero():
    t = time.monotonic()
    p = mpirun(2, SCRIPTS / "train_modes.py", "dp", "--steps", 8, timeout=60,
               env={"MSRT_CRASH_RANK": "1", "MSRT_CRASH_STEP": "3"})
    assert p.returncode != 0
    assert "rank 1: crashing at step 3" in p.stderr
    assert time.monotonic() - t < 30


def test_python_error_on_one_rank_aborts_the_others():
    # Without the runtime's abort the failing rank would wait in MPI_Finalize
    # and the other in its next allreduce, forever.
    p = mpirun(2, SCRIPTS / "train_modes.py", "dp", "--steps", 6, "--fail-rank", 1, timeout=60)
    assert p.returncode != 0
    assert "fails at step 2" in p.stderr
