"""speedscope (the npm package, served here) imports ``msprof export --to
chrome`` and ``--to folded`` in headless Chromium and shows the profile's
frames with their weights.

The profile is export_scenarios.dp_us: two ranks, four steps of 1000 us;
per step Conv2D-op1 300 us, ReLU-op2 100 us, Conv2DGrad-op3 300 us (rank 1:
350 us) on the compute stream, AllReduce-op4 400 us on the communication
stream.  tests/browser/speedscope_check.mjs opens each export in speedscope
(``#profileURL=``, Sandwich view), reads every profile's Sandwich table
(Total, Self, Symbol Name, as displayed) and the file speedscope's Export
button writes (its parsed profiles, exact weights).  scripts/setup.sh
installs everything this needs; a missing piece fails the test.
"""
from __future__ import annotations

import functools
import http.server
import json
import os
import re
import shutil
import subprocess
import threading
from collections import defaultdict
from pathlib import Path

import pytest

from conftest import REPO, run_msprof
from export_scenarios import dp_us

BROWSER = REPO / "tests" / "browser"
SPEEDSCOPE = BROWSER / "node_modules" / "speedscope" / "dist" / "release"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
OPS = ("Conv2D-op1", "ReLU-op2", "Conv2DGrad-op3", "AllReduce-op4")
# us per step, per rank, on each stream
COMPUTE = {0: {"Conv2D-op1": 300, "ReLU-op2": 100, "Conv2DGrad-op3": 300},
           1: {"Conv2D-op1": 300, "ReLU-op2": 100, "Conv2DGrad-op3": 350}}
STEPS = 4


def _missing() -> list[str]:
    out = []
    if shutil.which("node") is None:
        out.append("node (Debian's nodejs)")
    if not os.access(CHROMIUM, os.X_OK):
        out.append(f"{CHROMIUM} (Debian's chromium)")
    if not (SPEEDSCOPE / "index.html").is_file():
        out.append(f"{SPEEDSCOPE.relative_to(REPO)}/index.html (npm: speedscope)")
    if not (BROWSER / "node_modules" / "playwright-core" / "package.json").is_file():
        out.append("tests/browser/node_modules/playwright-core (npm: playwright-core)")
    return out


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def shown(tmp_path_factory):
    """What speedscope shows for each export: {"chrome": ..., "folded": ...}."""
    missing = _missing()
    if missing:
        pytest.fail("missing: " + "; ".join(missing) + " -- scripts/setup.sh installs them")
    root = tmp_path_factory.mktemp("speedscope")
    prof = dp_us(root / "prof", steps=STEPS)
    site = root / "site"
    site.mkdir()
    (site / "speedscope").symlink_to(SPEEDSCOPE, target_is_directory=True)
    for to, name in (("chrome", "dp.trace.json"), ("folded", "dp.folded")):
        r = run_msprof("export", prof, "--to", to, "-o", site / name)
        assert r.returncode == 0, r.stderr
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(_Quiet, directory=str(site)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        r = subprocess.run(
            ["node", str(BROWSER / "speedscope_check.mjs"), f"{base}/speedscope/index.html",
             f"{base}/dp.trace.json", f"{base}/dp.folded"],
            capture_output=True, text=True, timeout=120, env={**os.environ, "CHROMIUM": CHROMIUM})
    finally:
        server.shutdown()
        server.server_close()
    assert r.returncode == 0, r.stderr
    chrome, folded = json.loads(r.stdout)["results"]
    for res in (chrome, folded):
        assert res["errors"] == [], res["errors"]
        for p in res["profiles"]:
            assert p["complete"], f"Sandwich rows not all rendered: {p['name']}"
    return {"chrome": chrome, "folded": folded, "folded_text": (site / "dp.folded").read_text()}


def _shown(cell: str) -> tuple[str, float]:
    """'2,400,000 (27%)' -> ('2,400,000', 27.0); '<0.01%' -> 0."""
    m = re.fullmatch(r"(.+) \((<?)([\d.]+)%\)", cell)
    assert m, cell
    return m[1], 0.0 if m[2] else float(m[3])


def _us(text: str) -> float:
    """speedscope's time format ('300.00µs', '1.20ms', '4.00s') in us."""
    m = re.fullmatch(r"([\d.,]+)(ns|µs|ms|s)", text)
    assert m, text
    return float(m[1].replace(",", "")) * {"ns": 1e-3, "µs": 1, "ms": 1e3, "s": 1e6}[m[2]]


def _frame(name: str) -> tuple[str, dict]:
    """A trace event's frame as speedscope names it, 'name {args}': the
    event's name and its args."""
    m = re.fullmatch(r"(.*?) (\{.*\})", name)
    assert m, name
    return m[1], json.loads(m[2])


def _stack_weights(profile: dict, frames: list[dict]) -> dict[tuple, float]:
    """Weight per distinct stack of an evented profile of speedscope's file
    format (open/close events)."""
    out: dict[tuple, float] = defaultdict(float)
    stack: list[str] = []
    last = profile["startValue"]
    for ev in profile["events"]:
        if stack and ev["at"] > last:
            out[tuple(stack)] += ev["at"] - last
        last = ev["at"]
        if ev["type"] == "O":
            stack.append(frames[ev["frame"]]["name"])
        else:
            assert stack.pop() == frames[ev["frame"]]["name"]
    assert not stack
    return dict(out)


def test_folded_export_in_speedscope(shown):
    res = shown["folded"]
    assert res["title"] == "dp.folded"
    (prof,) = res["profiles"]
    rows = {r["name"]: r for r in prof["rows"]}
    expected = {"rank 0", "rank 1", f"steps 0-{STEPS - 1}", "Gradients", "net", "conv1",
                "AllReduce", "Conv2D", "ReLU", "Conv2DGrad", *OPS}
    assert set(rows) == expected
    grand = 2 * STEPS * (300 + 100 + 400) + STEPS * (300 + 350)   # us, both ranks
    leaf = {"Conv2D-op1": 2 * STEPS * 300, "ReLU-op2": 2 * STEPS * 100,
            "Conv2DGrad-op3": STEPS * (300 + 350), "AllReduce-op4": 2 * STEPS * 400}
    total = {**leaf, "rank 0": STEPS * 1100, "rank 1": STEPS * 1150, f"steps 0-{STEPS - 1}": grand,
             "Gradients": leaf["Conv2DGrad-op3"] + leaf["AllReduce-op4"],
             "net": grand - leaf["AllReduce-op4"], "conv1": grand - leaf["AllReduce-op4"],
             "AllReduce": leaf["AllReduce-op4"], "Conv2D": leaf["Conv2D-op1"],
             "ReLU": leaf["ReLU-op2"], "Conv2DGrad": leaf["Conv2DGrad-op3"]}
    for name, row in rows.items():
        t, t_pct = _shown(row["total"])
        s, s_pct = _shown(row["self"])
        # folded counts are ns, shown as plain numbers: exact
        assert int(t.replace(",", "")) == total[name] * 1000, (name, row)
        assert int(s.replace(",", "")) == leaf.get(name, 0) * 1000, (name, row)
        assert t_pct == pytest.approx(100 * total[name] / grand, abs=0.5), (name, row)
        assert s_pct == pytest.approx(100 * leaf.get(name, 0) / grand, abs=0.5), (name, row)
    # speedscope's parse of the file holds exactly its stacks and counts
    (parsed,) = res["exported"]["profiles"]
    stacks = _stack_weights(parsed, res["exported"]["shared"]["frames"])
    lines = {tuple(s.split(";")): int(n) for s, n in
             (line.rsplit(" ", 1) for line in shown["folded_text"].splitlines())}
    assert stacks == lines


def test_chrome_export_in_speedscope(shown):
    res = shown["chrome"]
    assert res["title"] == "dp.trace.json"
    threads = {1: "steps", 2: "collectives", 10: "compute stream", 11: "communication stream"}
    names = [f"rank {r} (node0) (pid {r + 1}), {t} (tid {tid})"
             for r in (0, 1) for tid, t in threads.items()]
    profiles = {p["name"]: p for p in res["profiles"]}
    assert set(profiles) == set(names)
    parsed = {p["name"]: p for p in res["exported"]["profiles"]}
    assert set(parsed) == set(names)
    frames = res["exported"]["shared"]["frames"]

    def expect(rank, tid):
        if tid == 10:
            return {op: STEPS * us for op, us in COMPUTE[rank].items()}
        if tid == 11:
            return {"AllReduce-op4": STEPS * 400}
        if tid == 2:
            return {"allreduce": STEPS * 400}
        return {f"step {s}": 1000 for s in range(STEPS)}

    for r in (0, 1):
        for tid in threads:
            name = f"rank {r} (node0) (pid {r + 1}), {threads[tid]} (tid {tid})"
            want = expect(r, tid)
            p = profiles[name]
            # the profile list's weight, and the Sandwich rows: speedscope
            # names a trace event's frame "name {args}", so an op shows once
            # per step (its args carry the step)
            assert _us(p["weight"]) == pytest.approx(sum(want.values())), name
            by_op: dict[str, float] = defaultdict(float)
            step_args = defaultdict(list)
            for row in p["rows"]:
                op, args = _frame(row["name"])
                by_op[op] += _us(_shown(row["self"])[0])
                assert _shown(row["total"]) == _shown(row["self"]), row  # flat: no nesting
                if tid >= 10:
                    assert args["op"] == op and args["scope"].endswith("/" + op), row
                    step_args[op].append(args["step"])
            assert dict(by_op) == pytest.approx(want), name
            assert all(sorted(s) == list(range(STEPS)) for s in step_args.values()), step_args
            # speedscope's parse: exact microseconds per op
            exact: dict[str, float] = defaultdict(float)
            for stack, w in _stack_weights(parsed[name], frames).items():
                exact[_frame(stack[-1])[0]] += w
            assert dict(exact) == pytest.approx(want, abs=1e-6), name
