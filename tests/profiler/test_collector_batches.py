"""The collector decodes drained records in batches: a trickle of small
drains becomes one decode (its fixed cost paid once), and nothing waits
longer than DECODE_AGE_S or past the end of the run."""
import numpy as np

from msprof.probes import events as ev
from msprof.profiler import session


class Tables:
    """A writer that keeps what it is given."""

    def __init__(self):
        self.added = []

    def add(self, tables):
        self.added.append(tables)

    def rows(self, name):
        return sum(t[name].num_rows for t in self.added if name in t)


def steps(n, first=0):
    recs = np.zeros(n, ev.EVENT)
    recs["type"], recs["pid"] = ev.STEP, 7
    recs["a3"] = np.arange(first, first + n)
    return recs


def test_a_trickle_is_decoded_once(monkeypatch):
    writer = Tables()
    c = session._Collector(writer, session.RunStats())
    for i in range(50):
        c.take(np.zeros(0, ev.META), steps(3, 3 * i))
    assert writer.added == [] and c.stats.events == 150
    c.flush()
    assert len(writer.added) == 1 and writer.rows("steps") == 150
    assert writer.added[0]["steps"].column("step").to_pylist() == list(range(150))


def test_a_full_batch_or_an_old_record_is_decoded_at_once(monkeypatch):
    writer = Tables()
    c = session._Collector(writer, session.RunStats())
    c.take(np.zeros(0, ev.META), steps(session.DECODE_RECORDS))
    assert writer.rows("steps") == session.DECODE_RECORDS
    now = [1000.0]
    monkeypatch.setattr(session.time, "monotonic", lambda: now[0])
    c.take(np.zeros(0, ev.META), steps(2))
    assert writer.rows("steps") == session.DECODE_RECORDS
    now[0] += session.DECODE_AGE_S
    c.take(np.zeros(0, ev.META), steps(1))
    assert writer.rows("steps") == session.DECODE_RECORDS + 3
