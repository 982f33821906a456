"""The host key file: 64 hexadecimal digits (32 bytes) and a newline, mode 0600.

``load_key`` refuses, with one plain sentence, a file that is missing, unreadable, of the
wrong size or content, not a regular file, open to group or others, or owned by another
user than the one reading it (the daemon's user): a key others can read authenticates
nothing. The checks are made on the opened file (``fstat``), so the file cannot be swapped
between check and read. ``write_key`` creates the file 0600 from the start (never a window
where it is readable), writes, fsyncs and renames it into place.

Neither function logs or prints the key; callers must not either. The daemon logs only its
fingerprint (``auth.fingerprint``).
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from mynad.durable import atomic_write
from mynad.hostlink.auth import KEY_LEN, AuthError, check_key, format_key_text, parse_key_text

DEFAULT_KEY_FILE = Path("/etc/myna-reader/host.key")
_MAX_FILE = 4096  # a key file is 65 bytes; anything much larger is not one


class HostKeyError(Exception):
    """The host key cannot be used; the text says what to do (and never contains the key)."""


def generate_key() -> bytes:
    return os.urandom(KEY_LEN)


def load_key(path: str | Path, *, require_owner: bool = True) -> bytes:
    path = Path(path)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NOCTTY)
    except FileNotFoundError:
        raise HostKeyError(f"the host key file {path} does not exist; create it with `mynactl host-key generate` "
                           f"or install the host's copy with `mynactl host-key import FILE`") from None
    except PermissionError:
        raise HostKeyError(f"the host key file {path} cannot be read by this user (uid {os.geteuid()}); "
                           f"it must be owned by the daemon's user with mode 0600") from None
    except OSError as e:
        raise HostKeyError(f"the host key file {path} cannot be opened: {e.strerror or e}") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise HostKeyError(f"the host key file {path} is not a regular file")
        if st.st_mode & 0o077:
            raise HostKeyError(f"the host key file {path} can be used by group or others (mode "
                               f"{stat.S_IMODE(st.st_mode):04o}); it must be 0600 (chmod 600 {path})")
        if require_owner and st.st_uid != os.geteuid():
            raise HostKeyError(f"the host key file {path} is owned by uid {st.st_uid}, not by the daemon's user "
                               f"(uid {os.geteuid()}); chown it to that user")
        data = os.read(fd, _MAX_FILE + 1)
    except OSError as e:
        raise HostKeyError(f"the host key file {path} cannot be read: {e.strerror or e}") from None
    finally:
        os.close(fd)
    try:
        return parse_key_text(data)
    except AuthError as e:
        raise HostKeyError(f"the host key file {path} is not usable: {e}") from None


def read_key_text(path: str | Path) -> bytes:
    """A key from a file to import (the host's copy on a USB stick): format checked, not permissions."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            data = f.read(_MAX_FILE + 1)
    except OSError as e:
        raise HostKeyError(f"cannot read {path}: {e.strerror or e}") from None
    try:
        return parse_key_text(data)
    except AuthError as e:
        raise HostKeyError(f"{path} is not a host key file: {e}") from None


def write_key(path: str | Path, key: bytes, *, replace: bool = False, owner: tuple[int, int] | None = None) -> None:
    """Write ``key`` to ``path`` with mode 0600 (and ``owner`` (uid, gid) if given).

    Refuses to replace an existing file unless ``replace``: a new key at one end cuts the
    link until the other end has it too.
    """
    path = Path(path)
    check_key(key)
    if path.exists() and not replace:
        raise HostKeyError(f"{path} already exists; not replacing a key unless asked to (--force)")
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        atomic_write(path, format_key_text(key), mode=0o600, owner=owner)
    except OSError as e:
        raise HostKeyError(f"cannot write {path}: {e.strerror or e}") from None
