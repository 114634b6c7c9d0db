#!/usr/bin/env bash
# Sets the machine up (scripts/setup.sh) and runs the whole test suite.
# MSPROF_REQUIRE_EBPF=1: on this kind of machine (root, BCC) the eBPF tests
# must run; a missing requirement fails them instead of skipping them.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export MSPROF_REQUIRE_EBPF=${MSPROF_REQUIRE_EBPF:-1}
exec .venv/bin/python -m pytest -q -rs --durations=15 "$@"
