#!/usr/bin/env bash
# Sets the machine up (scripts/setup.sh), profiles the LeNet demo training
# with msprof and prints its report.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
out=${MSPROF_DEMO_OUT:-msprof-demo-$(date +%Y%m%d-%H%M%S)}
.venv/bin/msprof run -o "$out" examples/lenet_digits.py "$@"
.venv/bin/msprof report "$out"
