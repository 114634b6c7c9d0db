"""Collectives as graph ops: results on every rank, probes, seq and bytes."""
import pytest

from parallel_runs import SCRIPTS, json_lines, mpirun

KINDS = {"allreduce": 0, "allgather": 1, "reduce_scatter": 2, "broadcast": 3, "send": 4,
         "recv": 5}


@pytest.mark.parametrize("n", [1, 2, 4])
def test_collectives_compute_the_right_thing_on_every_rank(n):
    out = json_lines(mpirun(n, SCRIPTS / "collectives.py"))
    assert sorted(o["rank"] for o in out) == list(range(n))
    for o in out:
        assert o["bad"] == [], o
        assert o["streams"] == [1]          # every comm kernel ran on the comm stream


def test_group_collectives_share_seq_and_bytes_across_ranks():
    out = json_lines(mpirun(4, SCRIPTS / "collectives.py"))
    group = [[c for c in o["comms"] if c[3] == -1] for o in out]
    assert all(g == group[0] for g in group)                  # kind, bytes, group, seq
    assert [c[4] for c in group[0]] == list(range(len(group[0])))
    # a 4x6 float32 tensor: 96 bytes; allreduce of a two-tensor bucket: 192
    assert group[0][0][:2] == [KINDS["allreduce"], 192]
    assert group[0][2][:2] == [KINDS["allgather"], 4 * 96]


def test_messages_carry_the_same_seq_at_sender_and_receiver():
    out = {o["rank"]: o for o in json_lines(mpirun(4, SCRIPTS / "collectives.py"))}
    for r, o in out.items():
        for kind, nbytes, group, peer, seq in o["comms"]:
            if kind == KINDS["send"]:
                recvs = [c for c in out[peer]["comms"] if c[0] == KINDS["recv"] and c[3] == r]
                assert [c[1] for c in recvs if c[4] == seq] == [nbytes]
