"""Root running a script as another user (sudo, --user): that user's Python
loads the shim, so root keeps it where they can read it and no one but
root can change it (frameworks/torch/build.py SHARED_CACHE), not in root's
own cache inside /root."""
import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

import pytest

from msprof.frameworks.torch import build
from msprof.profiler import frameworks
from conftest import REPO

pytestmark = pytest.mark.skipif(os.geteuid() != 0 or shutil.which("useradd") is None,
                                reason="needs root and useradd")
SCRIPT = REPO / "tests" / "torch" / "scripts" / "train.py"


@pytest.fixture
def user():
    name = f"msp{uuid.uuid4().hex[:8]}"
    subprocess.run(["useradd", "-M", "-d", f"/home/{name}", "-s", "/bin/sh", name], check=True)
    try:
        yield name
    finally:
        subprocess.run(["userdel", name], capture_output=True)


@pytest.fixture
def shared(monkeypatch):
    """A shared cache root: root's, in a sticky /tmp, readable by all."""
    path = Path(tempfile.mkdtemp(prefix="msprof-shared-"))
    path.chmod(0o755)
    monkeypatch.setenv("MSPROF_SHARED_CACHE", str(path / "cache"))
    try:
        yield path / "cache"
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _as(user, *cmd):
    return subprocess.run(["runuser", "-u", user, "--", *cmd], capture_output=True, text=True)


def test_a_script_run_as_another_user_can_load_the_shim(torch_ready, user, shared):
    lib = frameworks.prepare([sys.executable, str(SCRIPT)], "ebpf", other_user=True).libraries
    path = Path(lib["torch"])
    assert shared in path.parents
    assert _as(user, "test", "-r", str(path)).returncode == 0
    # root's own build, for root's own runs, is a different file
    assert Path(build.shim_library(sys.executable)) != path
    # and no one but root may change what is loaded
    for p in [path, *path.parents][:4]:
        st = os.lstat(p)
        assert st.st_uid == 0 and not st.st_mode & 0o022, p
    assert _as(user, "touch", str(path.parent / "x")).returncode != 0


def test_a_shared_cache_another_user_could_change_is_refused(torch_ready, user, shared, monkeypatch):
    theirs = shared.parent / "theirs"
    theirs.mkdir(mode=0o755)
    shutil.chown(theirs, user)
    monkeypatch.setenv("MSPROF_SHARED_CACHE", str(theirs))
    with pytest.raises(build.ShimUnavailable, match="is not root's alone"):
        build.shim_library(sys.executable, shared=True)
