"""Under sudo (SUDO_UID/SUDO_GID) or with --user, the script runs as that
user (uid, gid, supplementary groups, HOME/USER/LOGNAME), only the collector
keeps root, and the profile belongs to the user.  The user is created here
(useradd), with a supplementary group of its own."""
from __future__ import annotations

import grp
import json
import os
import pwd
import shutil
import subprocess
import tempfile
import uuid
from pathlib import Path

import pytest

from conftest import MSPROF, run_msprof

pytestmark = pytest.mark.skipif(os.geteuid() != 0 or shutil.which("useradd") is None,
                                reason="needs root and useradd")

# The script must be one the new user can run: the virtualenv's Python may live
# under /root, which only root can enter, so a shell script it is.
WHO = """#!/bin/sh
echo "$(id -u) $(id -g) $(id -G) $HOME $USER $LOGNAME" > "$1"
"""


@pytest.fixture
def user():
    name = f"msp{uuid.uuid4().hex[:8]}"
    extra = f"{name}x"
    subprocess.run(["groupadd", extra], check=True)
    subprocess.run(["useradd", "-M", "-d", f"/home/{name}", "-s", "/bin/sh", "-G", extra, name],
                   check=True)
    try:
        yield pwd.getpwnam(name), extra
    finally:
        subprocess.run(["userdel", name], capture_output=True)
        subprocess.run(["groupdel", extra], capture_output=True)


@pytest.fixture
def place():
    """A folder the new user can reach (pytest's tmp_path is under a root-only folder)."""
    path = Path(tempfile.mkdtemp(prefix="msprof-users-"))
    path.chmod(0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _setup(tmp_path, entry):
    work = tmp_path / "work"
    work.mkdir()
    os.chown(work, entry.pw_uid, entry.pw_gid)   # the user's own directory, as under sudo
    script = tmp_path / "who.sh"
    script.write_text(WHO)
    script.chmod(0o755)
    return work, script


def _check(work, out, entry, extra):
    fields = (work / "who.txt").read_text().split()
    assert int(fields[0]) == entry.pw_uid and int(fields[1]) == entry.pw_gid
    groups = {int(g) for g in fields[2:-3]}
    assert groups == {entry.pw_gid, grp.getgrnam(extra).gr_gid}
    assert fields[-3:] == [entry.pw_dir, entry.pw_name, entry.pw_name]
    owners = {(p.stat(follow_symlinks=False).st_uid, p.stat(follow_symlinks=False).st_gid)
              for p in [out, *out.rglob("*")]}
    assert owners == {(entry.pw_uid, entry.pw_gid)}
    meta = json.loads((out / "meta.json").read_text())
    assert meta["complete"] and meta["exit_status"] == 0


@pytest.mark.ebpf
def test_under_sudo_the_script_runs_as_the_invoking_user_who_owns_the_profile(ebpf_ready, user, place):
    entry, extra = user
    work, script = _setup(place, entry)
    r = run_msprof("run", "-o", "prof", "--backend", "ebpf", script, work / "who.txt", cwd=work,
                   env={"SUDO_UID": str(entry.pw_uid), "SUDO_GID": str(entry.pw_gid),
                        "SUDO_USER": entry.pw_name})
    assert r.returncode == 0, r.stderr
    _check(work, work / "prof", entry, extra)
    # the user can delete it themselves
    rm = subprocess.run(["runuser", "-u", entry.pw_name, "--", "rm", "-r", str(work / "prof")],
                        capture_output=True, text=True)
    assert rm.returncode == 0, rm.stderr
    assert not (work / "prof").exists()


def test_user_option_names_the_user(user, place):
    entry, extra = user
    work, script = _setup(place, entry)
    r = run_msprof("run", "-o", work / "prof", "--backend", "inprocess", "--user", entry.pw_name,
                   script, work / "who.txt")
    assert r.returncode == 0, r.stderr
    _check(work, work / "prof", entry, extra)


def test_without_sudo_the_script_runs_as_root(tmp_path):
    out = tmp_path / "who.txt"
    script = tmp_path / "who.sh"
    script.write_text(WHO)
    script.chmod(0o755)
    env = {k: v for k, v in os.environ.items() if not k.startswith("SUDO_")}
    r = subprocess.run([MSPROF, "run", "-o", str(tmp_path / "p"),
                        "--backend", "inprocess", str(script), str(out)],
                       capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0, r.stderr
    assert out.read_text().split()[:2] == ["0", "0"]
    assert (tmp_path / "p").stat().st_uid == 0


def test_a_profile_the_user_could_not_have_written_is_refused(user, place):
    tmp_path = place
    entry, _ = user
    locked = tmp_path / "root-only"
    locked.mkdir(mode=0o755)
    script = tmp_path / "who.sh"
    script.write_text(WHO)
    script.chmod(0o755)
    r = run_msprof("run", "-o", locked / "prof", "--user", entry.pw_name, script, tmp_path / "x")
    assert r.returncode == 2
    assert r.stderr.strip() == (f"msprof: error: {entry.pw_name} cannot write to {locked}, where the "
                                f"profile would go; choose -o in a directory {entry.pw_name} can write")
    assert not (locked / "prof").exists()


def test_unknown_user_is_one_line(tmp_path):
    r = run_msprof("run", "-o", tmp_path / "p", "--user", "no-such-user-here", "x.py")
    assert r.returncode == 2
    assert r.stderr.strip() == "msprof: error: --user no-such-user-here: no such user"


def test_who_the_script_runs_as():
    from msprof.errors import MsprofError
    from msprof.profiler.privileges import target_user
    nobody = pwd.getpwnam("nobody")
    assert target_user(None, {}) is None                          # plain root
    assert target_user(None, {"SUDO_UID": "0", "SUDO_GID": "0"}) is None   # sudo from root
    u = target_user(None, {"SUDO_UID": str(nobody.pw_uid), "SUDO_GID": str(nobody.pw_gid)})
    assert (u.name, u.uid, u.gid, u.home) == ("nobody", nobody.pw_uid, nobody.pw_gid, nobody.pw_dir)
    assert nobody.pw_gid in u.groups
    assert u.environment() == {"HOME": nobody.pw_dir, "USER": "nobody", "LOGNAME": "nobody"}
    assert target_user("nobody", {"SUDO_UID": "12345"}).uid == nobody.pw_uid   # --user wins
    assert target_user(str(nobody.pw_uid), {}).name == "nobody"
    assert target_user("root", {}) is None
    with pytest.raises(MsprofError, match="SUDO_UID/SUDO_GID are not numbers"):
        target_user(None, {"SUDO_UID": "x", "SUDO_GID": "1"})


def test_user_with_hosts_is_one_line(tmp_path):
    r = run_msprof("run", "--hosts", "a,b", "--user", "nobody", "-o", tmp_path / "j", "x.py")
    assert r.returncode == 2
    assert r.stderr.strip() == ("msprof: error: --user applies to one machine; with --hosts/--hostfile "
                                "the ranks run as the user the remote shell logs in as")
