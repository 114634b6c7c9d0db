"""The BPF programs stay far from the verifier's limit of 1M processed
instructions, in both modes: the staged-record loop runs 64 turns, and a
branchy turn multiplies the states the verifier walks (the summary
program once took 980k of the 1M before its histogram bucket stopped
carrying bit_length's 64 paths into the rest of the turn)."""
import os
import re
import subprocess
import sys

import pytest

BUDGET = 250_000      # a quarter of the kernel's limit

LOADER = r"""
import sys
from bcc import BPF, DEBUG_BPF
from msprof.profiler.ebpf import program_text
from msprof.profiler.library import runtime_probe_library
b = BPF(text=program_text(runtime_probe_library(), mode=sys.argv[1]).encode(), debug=DEBUG_BPF)
b.load_func(b"usdt_record_batch", BPF.KPROBE)    # the tracepoints load with the module
b.cleanup()
"""


@pytest.mark.ebpf
@pytest.mark.parametrize("mode", ["trace", "summary"])
def test_every_program_stays_within_a_quarter_of_the_verifier_limit(ebpf_ready, mode, tmp_path):
    log = tmp_path / "verifier.log"
    with open(log, "w") as err:    # libbcc prints the verifier's log on stderr
        r = subprocess.run([sys.executable, "-c", LOADER, mode], stdout=subprocess.DEVNULL,
                           stderr=err, timeout=300, env={**os.environ, "PYTHONWARNINGS": "ignore"})
    text = log.read_text(errors="replace")
    assert r.returncode == 0, text[-2000:]
    processed = [int(n) for n in re.findall(r"^processed (\d+) insns", text, re.M)]
    assert len(processed) >= 7          # six tracepoints and record_batch
    assert max(processed) <= BUDGET, sorted(processed)
