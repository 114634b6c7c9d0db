"""Who the profiled script runs as.

Only the collector needs root (to load BPF programs).  Under sudo
(``SUDO_UID``/``SUDO_GID`` set), or with ``--user NAME``, the script runs
as that user, with their group, their supplementary groups (as
``initgroups`` gives them) and their HOME, USER and LOGNAME, and the
profile directory is handed to them once it is written, so they can read,
move and delete it.  While the collector writes, the directory stays
root's: a directory the user owned could have its files swapped for links
under the collector's feet.
"""
from __future__ import annotations

import os
import pwd
import stat
from dataclasses import dataclass

from msprof.errors import MsprofError


@dataclass(frozen=True)
class TargetUser:
    name: str
    uid: int
    gid: int
    groups: tuple[int, ...]
    home: str

    def popen_args(self) -> dict:
        """What subprocess.Popen needs to start a process as this user."""
        return {"user": self.uid, "group": self.gid, "extra_groups": list(self.groups)}

    def environment(self) -> dict[str, str]:
        return {"HOME": self.home, "USER": self.name, "LOGNAME": self.name}


def _from_passwd(entry: pwd.struct_passwd, gid: int | None = None) -> TargetUser:
    gid = entry.pw_gid if gid is None else gid
    return TargetUser(entry.pw_name, entry.pw_uid, gid,
                      tuple(os.getgrouplist(entry.pw_name, gid)), entry.pw_dir)


def _lookup(name: str) -> pwd.struct_passwd:
    try:
        return pwd.getpwnam(name)
    except KeyError:
        pass
    if name.isdigit():
        try:
            return pwd.getpwuid(int(name))
        except KeyError:
            pass
    raise MsprofError(f"--user {name}: no such user")


def target_user(user: str | None = None, environ=os.environ) -> TargetUser | None:
    """The user the script should run as, or None to run it as we are.

    ``user`` (``--user``) names one; otherwise, as root under sudo, the
    invoking user (SUDO_UID, SUDO_GID)."""
    root = os.geteuid() == 0
    if user is not None:
        entry = _lookup(user)
        if entry.pw_uid == os.geteuid():
            return None
        if not root:
            raise MsprofError(f"--user {user} needs root (run msprof with sudo)")
        return _from_passwd(entry)
    uid, gid = environ.get("SUDO_UID"), environ.get("SUDO_GID")
    if not root or not uid:
        return None
    try:
        uid_n, gid_n = int(uid), int(gid) if gid else None
    except ValueError:
        raise MsprofError(f"SUDO_UID/SUDO_GID are not numbers ({uid!r}, {gid!r})") from None
    if uid_n == 0:
        return None
    try:
        entry = pwd.getpwuid(uid_n)
    except KeyError:
        raise MsprofError(f"SUDO_UID {uid_n} is no user of this machine; "
                          "name one with --user") from None
    return _from_passwd(entry, gid_n)


def _can_write(user: TargetUser, path: str) -> bool:
    """Whether ``user`` may create entries in directory ``path`` (mode bits)."""
    st = os.stat(path)
    if st.st_uid == user.uid:
        bits = stat.S_IWUSR | stat.S_IXUSR
    elif st.st_gid == user.gid or st.st_gid in user.groups:
        bits = stat.S_IWGRP | stat.S_IXGRP
    else:
        bits = stat.S_IWOTH | stat.S_IXOTH
    return st.st_mode & bits == bits


def check_output_place(user: TargetUser, out: str) -> None:
    """The profile will belong to ``user``: it must go where they could have
    written it themselves, not into a place only root can write."""
    parent = os.path.dirname(os.path.abspath(out))
    while not os.path.exists(parent):
        parent = os.path.dirname(parent)
    if not _can_write(user, parent):
        raise MsprofError(f"{user.name} cannot write to {parent}, where the profile would go; "
                          f"choose -o in a directory {user.name} can write")


def give_to(user: TargetUser, path: str) -> None:
    """Hands the directory ``path`` and everything in it to ``user``
    (links themselves, never what they point to)."""
    os.chown(path, user.uid, user.gid, follow_symlinks=False)
    for root, dirs, files in os.walk(path):
        for name in dirs + files:
            os.chown(os.path.join(root, name), user.uid, user.gid, follow_symlinks=False)


