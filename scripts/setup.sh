#!/usr/bin/env bash
# Sets up a bare Debian machine (as root) to build, run and test msprof with
# its eBPF backend. Idempotent: every step checks before it acts.
#   - Debian packages: BCC (python3-bpfcc, bpfcc-tools), kernel headers,
#     <sys/sdt.h> (systemtap-sdt-dev); for the tests: chromium, tmux, and
#     nodejs + npm where no node is installed already
#   - /lib/modules/$(uname -r)/{build,source} linked to the installed headers
#     (found at run time: their version changes with Debian's updates)
#   - tracefs and debugfs mounted
#   - a virtualenv in .venv that sees BCC's Python package (and nothing else
#     of Debian's dist-packages), with msprof and its dependencies installed
#   - torch's CPU build and ninja in the venv, and msprof's PyTorch shim
#     built against it (frameworks/torch/build.py, cached)
#   - speedscope and playwright-core from the npm registry, pinned by
#     tests/browser/package-lock.json, in tests/browser/node_modules
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
VENV=${MSPROF_VENV:-$ROOT/.venv}
PYTHON=${PYTHON:-python3}

log() { printf '== %s\n' "$*" >&2; }

# chromium and node drive speedscope in the browser tests (tests/browser),
# tmux gives the terminal tests a real terminal.  Node.js may come from
# elsewhere (NodeSource): Debian's only where there is none.
apt_pkgs=(python3-bpfcc bpfcc-tools linux-headers-amd64 systemtap-sdt-dev g++ chromium tmux)
command -v node >/dev/null || apt_pkgs+=(nodejs)
command -v npm >/dev/null || apt_pkgs+=(npm)
need_pkgs=()
for pkg in "${apt_pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" \
        || need_pkgs+=("$pkg")
done
if [ ${#need_pkgs[@]} -gt 0 ]; then
    if [ "$(id -u)" -ne 0 ]; then
        echo "setup: installing ${need_pkgs[*]} needs root (try: sudo $0)" >&2
        exit 1
    fi
    log "installing Debian packages: ${need_pkgs[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_pkgs[@]}" >/dev/null
fi

# Kernel headers for the running kernel: BCC compiles against
# /lib/modules/$(uname -r)/build. The headers installed are Debian's, for its
# own kernel; BPF programs here use only tracepoint arguments and helpers, so
# any recent header set works (struct layouts are never read).
KV=$(uname -r)
if [ "$(id -u)" -eq 0 ] && { [ ! -e "/lib/modules/$KV/build/Makefile" ] || [ ! -e "/lib/modules/$KV/source/include/linux/kconfig.h" ]; }; then
    hdr=$(ls -d /usr/src/linux-headers-*-amd64 2>/dev/null | sort -V | tail -n 1)
    common=$(ls -d /usr/src/linux-headers-*-common 2>/dev/null | sort -V | tail -n 1)
    if [ -n "$hdr" ] && [ -n "$common" ]; then
        log "linking kernel headers $hdr for $KV"
        mkdir -p "/lib/modules/$KV"
        ln -sfn "$hdr" "/lib/modules/$KV/build"
        ln -sfn "$common" "/lib/modules/$KV/source"
    fi
fi

if [ "$(id -u)" -eq 0 ]; then
    mountpoint -q /sys/kernel/tracing || mount -t tracefs nodev /sys/kernel/tracing || true
    mountpoint -q /sys/kernel/debug || mount -t debugfs none /sys/kernel/debug || true
fi

if [ ! -x "$VENV/bin/python" ]; then
    log "creating virtualenv $VENV"
    "$PYTHON" -m venv "$VENV"
fi
# BCC's Python package is pure ctypes in Debian's dist-packages; the venv sees
# it through a .pth naming a folder that holds only a link to it.
SITE=$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
BCC_SRC=$(ls -d /usr/lib/python3/dist-packages/bcc 2>/dev/null || true)
if [ -n "$BCC_SRC" ]; then
    mkdir -p "$VENV/bcc-path"
    ln -sfn "$BCC_SRC" "$VENV/bcc-path/bcc"
    echo "$VENV/bcc-path" > "$SITE/msprof-bcc.pth"
fi

stamp="$VENV/.msprof-installed"
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ] || [ setup.py -nt "$stamp" ] \
   || [ runtime/_usdt.c -nt "$stamp" ] || ! "$VENV/bin/python" -c 'import msprof.runtime._usdt' 2>/dev/null; then
    log "installing msprof and its Python dependencies into $VENV"
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check -U pip setuptools wheel
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check -e ".[test,mpi]"
    touch "$stamp"
fi
# PyTorch for the adapter's tests and demo: the CPU build, pinned (a plain
# 'pip install torch' may pick a newer one with GBs of CUDA packages), and
# ninja for torch's cpp_extension; then the shim, built once into the cache
# (~35 s the first time) so that no test pays for it.
TORCH_PIN=${MSPROF_TORCH_PIN:-torch==2.13.0}
if ! "$VENV/bin/python" -c 'import torch, ninja' 2>/dev/null; then
    log "installing $TORCH_PIN (CPU build) and ninja into $VENV"
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check "$TORCH_PIN" ninja
fi
"$VENV/bin/python" "$ROOT/frameworks/torch/build.py" >/dev/null
# The browser tests' npm packages (speedscope's built app, playwright-core to
# drive Debian's chromium; no browser download).
BROWSER=$ROOT/tests/browser
npm_stamp=$BROWSER/node_modules/.msprof-installed
if [ ! -f "$npm_stamp" ] || [ "$BROWSER/package-lock.json" -nt "$npm_stamp" ] \
   || [ "$BROWSER/package.json" -nt "$npm_stamp" ]; then
    log "installing speedscope and playwright-core into tests/browser/node_modules"
    (cd "$BROWSER" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
    touch "$npm_stamp"
fi
log "ready: $VENV/bin/msprof"
