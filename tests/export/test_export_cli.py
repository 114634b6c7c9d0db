"""``msprof export`` and ``msprof flame`` from the console script."""
from __future__ import annotations

import json

import profiles


def test_export_every_format(msprof, tmp_path):
    d = profiles.reference(tmp_path / "ref")
    for to, out in (("parquet", "pq"), ("csv", "csv"), ("chrome", "t.json"), ("hta", "hta"),
                    ("folded", "f.folded")):
        r = msprof("export", d, "--to", to, "-o", tmp_path / out)
        assert r.returncode == 0, r.stderr
        assert r.stderr.startswith(f"wrote {tmp_path / out}")
    assert json.loads((tmp_path / "t.json").read_text())["traceEvents"]
    assert (tmp_path / "pq" / "kernels.parquet").is_file()
    assert (tmp_path / "hta" / "rank1.trace.json").is_file()
    assert sum(int(x.rsplit(" ", 1)[1]) for x in (tmp_path / "f.folded").read_text().splitlines()) == 1550


def test_export_mistakes_are_one_line(msprof, tmp_path):
    d = profiles.reference(tmp_path / "ref")
    (tmp_path / "taken.json").write_text("x")
    for args, msg in (
        (["--to", "chrome", "-o", tmp_path / "taken.json"], "exists (use --force"),
        (["--to", "chrome", "-m", "memory", "-o", tmp_path / "a.json"], "--metric applies"),
    ):
        r = msprof("export", d, *args)
        assert r.returncode == 2 and r.stderr.count("\n") == 1 and msg in r.stderr, r.stderr
    r = msprof("export", tmp_path / "nope", "--to", "csv")
    assert r.returncode == 2 and "no such profile directory" in r.stderr


def test_flame_in_a_pipe(msprof, tmp_path):
    d = profiles.data_parallel(tmp_path / "dp", slow_rank=2)
    r = msprof("flame", d, "--width", "80")
    assert r.returncode == 0, r.stderr
    assert "\x1b[" not in r.stdout
    lines = r.stdout.splitlines()
    assert lines[0].startswith("all ranks — device time")
    assert all(len(line) <= 80 for line in lines)
    assert "MatMul-op1" in r.stdout
    r = msprof("flame", d, "-s", "--metric", "comm", "--orientation", "flame", "--focus", "Gradients")
    assert r.returncode == 0, r.stderr
    assert "rank 3" in r.stdout
    for args, msg in ((["--focus", "conv9"], "no frame matches"), (["--rank", "9"], "no rank 9"),
                      (["--min-share", "2"], "--min-share"), (["-s", "-r", "0"], "--side-by-side")):
        r = msprof("flame", d, *args)
        assert r.returncode == 2 and msg in r.stderr and r.stderr.count("\n") == 1, r.stderr
