"""The directory a run writes its profile into, made safe for root to write.

msprof runs as root and often in a shared folder (a checkout, /tmp), so its
output must not be steered by someone else:

* the directory is created by this run (``mkdir``, which fails on anything
  already there, a planted symlink included); an existing directory is
  reused only with ``force`` and only when it already holds a profile
  (meta.json or job.json), whose entries are then removed;
* every file is opened relative to the directory's descriptor with
  ``O_NOFOLLOW`` (and new files with ``O_EXCL``), so a symlink put inside
  it is never written through, and renaming the directory away mid-run
  cannot redirect what follows;
* a lock file (``.msprof.lock``, flock) is held for the collector's life:
  a second run into the same directory is refused, and the kernel releases
  the lock when the collector dies, however it dies.
"""
from __future__ import annotations

import errno
import fcntl
import os
import secrets
import shutil
import stat
import time

from msprof.errors import MsprofError

LOCK_FILE = ".msprof.lock"
PROFILE_MARKERS = ("meta.json", "job.json")   # what makes a directory a profile (or a job)
DIR_MODE = 0o755
FILE_MODE = 0o644
_NEW = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


def default_name() -> str:
    """``msprof-<stamp>-<random>``: the random part keeps another user from
    planting the directory in advance, and two runs started in the same
    second from colliding."""
    return f"msprof-{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(3)}"


def _is_profile(fd: int) -> bool:
    for name in PROFILE_MARKERS:
        try:
            st = os.stat(name, dir_fd=fd, follow_symlinks=False)
        except FileNotFoundError:
            continue
        if stat.S_ISREG(st.st_mode):
            return True
    return False


class OutputDir:
    """An exclusively created (or, with ``force``, emptied) profile
    directory, locked by this process until :meth:`release`."""

    def __init__(self, path: str, force: bool = False):
        self.path = path
        parent = os.path.dirname(os.path.abspath(path))
        try:
            os.makedirs(parent, exist_ok=True)
        except OSError as e:
            raise MsprofError(f"cannot create {parent}: {e.strerror}") from None
        self.created = True
        try:
            os.mkdir(path, DIR_MODE)
        except FileExistsError:
            self.created = False
        except OSError as e:
            raise MsprofError(f"cannot create profile directory {path}: {e.strerror}") from None
        try:
            self.fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except OSError as e:
            why = ("a symlink" if os.path.islink(path)
                   else "not a directory" if e.errno == errno.ENOTDIR else e.strerror)
            raise MsprofError(f"refusing to write into {path}: {why}") from None
        try:
            if not self.created:
                self._check_reusable(force)
            self._lock()
            if not self.created:
                self._empty()
        except BaseException:
            os.close(self.fd)
            raise

    def _check_reusable(self, force: bool) -> None:
        if not _is_profile(self.fd):
            raise MsprofError(f"{self.path} already exists and is not a profile; "
                              "msprof writes only into a new directory (choose another -o)")
        if not force:
            raise MsprofError(f"{self.path} already holds a profile; choose another -o "
                              "(or --force to replace it)")

    def _lock(self) -> None:
        try:
            self._lock_fd = os.open(LOCK_FILE, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC,
                                    FILE_MODE, dir_fd=self.fd)
        except OSError as e:
            raise MsprofError(f"cannot lock {self.path}: {e.strerror}") from None
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self._lock_fd)
            raise MsprofError(f"{self.path} is being written by another msprof run; "
                              "choose another -o") from None

    def _empty(self) -> None:
        """--force: removes the old profile's entries (not following links;
        the lock file stays, held)."""
        for name in os.listdir(self.fd):
            if name == LOCK_FILE:
                continue
            st = os.stat(name, dir_fd=self.fd, follow_symlinks=False)
            if stat.S_ISDIR(st.st_mode):
                shutil.rmtree(name, dir_fd=self.fd)
            else:
                os.unlink(name, dir_fd=self.fd)

    def join(self, name: str) -> str:
        return os.path.join(self.path, name)

    def create(self, name: str, mode: int = FILE_MODE) -> int:
        """A new file's descriptor, for writing; fails if ``name`` exists
        (as anything, a symlink included)."""
        return os.open(name, _NEW, mode, dir_fd=self.fd)

    def open_read(self, name: str) -> int:
        return os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=self.fd)

    def replace(self, src: str, dst: str) -> None:
        """Atomically puts ``src`` in place of ``dst`` (a link at ``dst`` is
        replaced, never followed)."""
        os.replace(src, dst, src_dir_fd=self.fd, dst_dir_fd=self.fd)

    def unlink(self, name: str) -> None:
        try:
            os.unlink(name, dir_fd=self.fd)
        except FileNotFoundError:
            pass

    def discard(self) -> None:
        """Removes the directory this run created and has written nothing
        into (the run could not start), and releases it."""
        if self.created and self.fd is not None and os.listdir(self.fd) == [LOCK_FILE]:
            self.unlink(LOCK_FILE)
            try:
                os.rmdir(self.path)
            except OSError:
                pass
        self.release()

    def release(self) -> None:
        """Drops the lock and the descriptors (idempotent)."""
        for attr in ("_lock_fd", "fd"):
            fd = getattr(self, attr, None)
            if fd is not None:
                os.close(fd)
                setattr(self, attr, None)
