"""The staff password for 目視確認: an scrypt record on disk and a device-wide lockout.

Why not a hash in the config file: the config is read by the daemon's whole group and is
copied into support bundles; a plain SHA-256 of a 6-digit number is reversed in well under
a second. The record lives in ``<state_dir>/staff-password`` (mode 0600, owned like the
state dir), written only by ``mynactl staff-password set``.

Format (the PHC string format, so a later release can raise the cost and re-hash on the
next correct entry)::

    $scrypt$ln=15,r=8,p=1$<salt, base64 without padding>$<32-byte key, same>

Why these scrypt parameters: N = 2^15, r = 8, p = 1 needs 32 MiB for a moment and
takes 0.13 s on one x86 core here; a Pi 4's Cortex-A72 is several times slower, which still
keeps the staff member's wait well under a second while making each offline guess cost that
much. A 6-digit password has only 10^6 values, so the hash alone cannot keep it secret from
someone who already has the file: the real protection is that the file is readable by the
daemon's user only and that guessing at the keypad is throttled by the lockout below.

Lockout (device-wide, persisted in ``<state_dir>/staff-lockout.json`` so that pulling the
power does not reset it): after ``max_wrong`` wrong entries in a row the check is refused for
``lock_s``; each further lockout doubles the period up to ``lock_max_s``; a correct entry
resets both. The attempt is counted on disk *before* the hash is compared, so cutting the
power while the check runs does not give a free try. Times are wall-clock (they must survive
a reboot); a lock that ends further in the future than ``lock_max_s`` means the clock went
back (a Pi without RTC before NTP), and is shortened to ``lock_max_s`` from now.

Secrets: the caller's ``bytearray`` is hashed in place (``hashlib.scrypt`` reads the buffer
without making a ``bytes`` copy; OpenSSL clears its own copies) and zeroed before ``check``
returns, whatever the outcome. Nothing here logs a digit.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import hashlib
import hmac
import json
import logging
import os
import secrets
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from mynad.durable import atomic_write, fsync_dir

log = logging.getLogger("mynad.staffauth")

PASSWORD_FILE = "staff-password"
LOCKOUT_FILE = "staff-lockout.json"
SALT_BYTES = 16
KEY_BYTES = 32


class StaffAuthError(Exception):
    """The staff password cannot be set or read; the message says why in one sentence."""


@dataclass(frozen=True)
class ScryptParams:
    log2_n: int = 15
    r: int = 8
    p: int = 1

    @property
    def n(self) -> int:
        return 1 << self.log2_n

    @property
    def maxmem(self) -> int:
        """OpenSSL refuses above 32 MiB by default; scrypt needs 128*r*N (+ 128*r*p) bytes."""
        return 128 * self.r * (self.n + self.p + 2) + (1 << 20)

    def encode(self) -> str:
        return f"ln={self.log2_n},r={self.r},p={self.p}"


DEFAULT_PARAMS = ScryptParams()
# What a record read from disk may ask for: enough to re-hash after an upgrade, not so much
# that a tampered file makes the daemon allocate gigabytes.
_MAX_LOG2_N, _MAX_R, _MAX_P = 20, 16, 4


@dataclass(frozen=True)
class PasswordRecord:
    params: ScryptParams
    salt: bytes
    key: bytes

    def encode(self) -> str:
        return f"$scrypt${self.params.encode()}${_b64(self.salt)}${_b64(self.key)}\n"


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)


def parse_record(text: str, where: str = PASSWORD_FILE) -> PasswordRecord:
    """Parse ``$scrypt$ln=..,r=..,p=..$salt$key``; a plain sentence if it is anything else."""
    parts = text.strip().split("$")
    if len(parts) != 5 or parts[0] != "" or parts[1] != "scrypt":
        raise StaffAuthError(f"{where} is not a staff password record ($scrypt$...); "
                             "set the password again with `mynactl staff-password set`")
    try:
        fields = dict(item.split("=", 1) for item in parts[2].split(","))
        params = ScryptParams(int(fields["ln"]), int(fields["r"]), int(fields["p"]))
        salt, key = _unb64(parts[3]), _unb64(parts[4])
    except (ValueError, KeyError) as e:
        raise StaffAuthError(f"{where} is damaged ({e}); set the password again with "
                             "`mynactl staff-password set`") from None
    if not (10 <= params.log2_n <= _MAX_LOG2_N and 1 <= params.r <= _MAX_R and 1 <= params.p <= _MAX_P):
        raise StaffAuthError(f"{where} asks for scrypt {params.encode()}, outside ln 10..{_MAX_LOG2_N}, "
                             f"r 1..{_MAX_R}, p 1..{_MAX_P}; set the password again")
    if len(salt) < 8 or len(key) < 16:
        raise StaffAuthError(f"{where} has a salt or key that is too short; set the password again")
    return PasswordRecord(params, salt, key)


def derive(secret: bytearray | memoryview, salt: bytes, params: ScryptParams, dklen: int = KEY_BYTES) -> bytes:
    """scrypt over the caller's buffer itself (no ``bytes(secret)`` copy is made)."""
    return hashlib.scrypt(secret, salt=salt, n=params.n, r=params.r, p=params.p,
                          maxmem=params.maxmem, dklen=dklen)


def wipe(buf: bytearray) -> None:
    """Overwrite a bytearray that held secret bytes (slice assignment writes in place)."""
    buf[:] = bytes(len(buf))


def valid_digits(secret: bytearray, length: int) -> bool:
    """Exactly ``length`` ASCII digits, checked byte by byte (no decoded copy)."""
    return len(secret) == length and all(0x30 <= b <= 0x39 for b in secret)


# --------------------------------------------------------------------------- files


def _write_private(path: Path, text: str, like: Path) -> None:
    """Write ``text`` atomically as a 0600 file owned like ``like`` (the state dir): ``mynactl``
    runs as root but the daemon (user myna) must read the file. The record survives a power
    cut as either the old or the new password, never half of one (mynad.durable)."""
    st = like.stat()
    owner = (st.st_uid, st.st_gid) if os.geteuid() == 0 and (st.st_uid, st.st_gid) != (0, 0) else None
    atomic_write(path, text.encode(), mode=0o600, owner=owner)


def set_password(state_dir: Path, secret: bytearray, *, length: int,
                 params: ScryptParams = DEFAULT_PARAMS) -> Path:
    """Store a new staff password (``length`` digits) and lift any lockout; wipes ``secret``."""
    state_dir = Path(state_dir)
    try:
        if not valid_digits(secret, length):
            raise StaffAuthError(f"the staff password must be exactly {length} digits (0-9), "
                                 "the length the keypad asks for ([flow] staff_password_length)")
        if not state_dir.is_dir():
            raise StaffAuthError(f"the state directory {state_dir} does not exist; start mynad once "
                                 "or create it ([reader] state_dir)")
        salt = secrets.token_bytes(SALT_BYTES)
        record = PasswordRecord(params, salt, derive(secret, salt, params))
    finally:
        wipe(secret)
    path = state_dir / PASSWORD_FILE
    _write_private(path, record.encode(), like=state_dir)
    (state_dir / LOCKOUT_FILE).unlink(missing_ok=True)
    log.info("staff password set (scrypt %s)", params.encode())
    return path


def clear_password(state_dir: Path) -> bool:
    """Remove the staff password; 目視確認 at the reader is then refused. True if one was set."""
    path = Path(state_dir) / PASSWORD_FILE
    try:
        path.unlink()
    except FileNotFoundError:
        return False
    (Path(state_dir) / LOCKOUT_FILE).unlink(missing_ok=True)
    fsync_dir(path.parent)
    log.info("staff password cleared")
    return True


# --------------------------------------------------------------------------- lockout (pure)


@dataclass(frozen=True)
class LockoutPolicy:
    max_wrong: int = 5
    lock_s: float = 60.0
    lock_max_s: float = 3600.0

    def duration(self, lockouts: int) -> float:
        """The n-th lockout in a row lasts lock_s * 2^(n-1), at most lock_max_s."""
        return min(self.lock_max_s, self.lock_s * (2 ** min(max(lockouts, 1) - 1, 30)))


@dataclass(frozen=True)
class LockoutState:
    wrong: int = 0           # wrong entries since the last lockout or success
    lockouts: int = 0        # lockouts since the last success
    locked_until: float = 0.0  # wall-clock seconds

    def locked(self, now: float) -> bool:
        return now < self.locked_until

    def sane(self, policy: LockoutPolicy, now: float) -> LockoutState:
        """A lock ending beyond lock_max_s from now means the clock went back: shorten it."""
        if self.locked_until - now > policy.lock_max_s:
            return dataclasses.replace(self, locked_until=now + policy.lock_max_s)
        return self

    def attempt(self) -> LockoutState:
        """Counted before the comparison, so a power cut mid-check still costs a try."""
        return dataclasses.replace(self, wrong=self.wrong + 1)

    def after_wrong(self, policy: LockoutPolicy, now: float) -> LockoutState:
        """Called on the state returned by ``attempt``: lock when the count is reached."""
        if self.wrong < policy.max_wrong:
            return self
        lockouts = self.lockouts + 1
        return LockoutState(wrong=0, lockouts=lockouts, locked_until=now + policy.duration(lockouts))


# --------------------------------------------------------------------------- the gate


OK, WRONG, LOCKED, NOT_SET = "ok", "wrong", "locked", "not_set"


@dataclass(frozen=True)
class Verdict:
    outcome: str                 # ok | wrong | locked | not_set
    until: float | None = None   # locked: wall-clock end of the lock
    wrong_left: int | None = None  # wrong: tries before the next lockout

    @property
    def ok(self) -> bool:
        return self.outcome == OK

    def __str__(self) -> str:
        if self.outcome == OK:
            return "staff password correct"
        if self.outcome == WRONG:
            return f"staff password wrong ({self.wrong_left} tries left before a lockout)"
        if self.outcome == LOCKED:
            return f"staff password check locked until {time.strftime('%H:%M:%S', time.localtime(self.until))}"
        return "no staff password is set (mynactl staff-password set)"


class StaffGate:
    """Checks the staff password typed at the keypad; one instance per state dir.

    ``check`` blocks for the scrypt time (0.1-1 s), so the daemon calls ``submit``,
    which runs it on a worker thread (hashlib releases the GIL while hashing).
    """

    @classmethod
    def for_config(cls, cfg) -> "StaffGate":  # cfg: mynad.config.DaemonConfig
        """The gate the daemon keeps for its whole run (its lock serialises checks)."""
        return cls(cfg.reader.state_dir, LockoutPolicy(cfg.staff.max_wrong, cfg.staff.lock_s, cfg.staff.lock_max_s),
                   length=cfg.flow.staff_password_length)

    def __init__(self, state_dir: Path, policy: LockoutPolicy = LockoutPolicy(), *,
                 length: int | None = None, clock: Callable[[], float] = time.time) -> None:
        self.state_dir = Path(state_dir)
        self.policy = policy
        self.length = length
        self.clock = clock
        self._lock = threading.Lock()

    @property
    def password_path(self) -> Path:
        return self.state_dir / PASSWORD_FILE

    @property
    def lockout_path(self) -> Path:
        return self.state_dir / LOCKOUT_FILE

    def is_set(self) -> bool:
        return self.password_path.exists()

    def lockout(self, now: float | None = None) -> LockoutState:
        now = self.clock() if now is None else now
        return self._load_lockout(now).sane(self.policy, now)

    def check(self, secret: bytearray, now: float | None = None) -> Verdict:
        """Compare ``secret`` (ASCII digits) with the stored record; always wipes ``secret``."""
        try:
            with self._lock:
                return self._check(secret, self.clock() if now is None else now)
        finally:
            wipe(secret)

    def _check(self, secret: bytearray, now: float) -> Verdict:
        state = self._load_lockout(now)
        sane = state.sane(self.policy, now)
        if sane != state:
            log.warning("staff lockout ended more than %.0f s from now (clock went back?); shortened",
                        self.policy.lock_max_s)
            self._save_lockout(sane)
        state = sane
        if state.locked(now):
            log.warning("staff password check refused: locked for %.0f more s", state.locked_until - now)
            return Verdict(LOCKED, until=state.locked_until)
        record = self._load_record()
        if record is None:
            log.warning("staff password check refused: no staff password is set")
            return Verdict(NOT_SET)
        counted = state.attempt()
        self._save_lockout(counted)
        good = (self.length is None or valid_digits(secret, self.length)) and hmac.compare_digest(
            derive(secret, record.salt, record.params, len(record.key)), record.key)
        if good:
            self._save_lockout(LockoutState())  # undoes the counted attempt as well
            log.info("staff password correct")
            return Verdict(OK)
        after = counted.after_wrong(self.policy, now)
        if after.locked(now):
            self._save_lockout(after)
            log.warning("staff password wrong %d times: check locked for %.0f s (lockout %d)",
                        self.policy.max_wrong, after.locked_until - now, after.lockouts)
            return Verdict(LOCKED, until=after.locked_until)
        left = self.policy.max_wrong - after.wrong
        log.warning("staff password wrong (%d of %d before a lockout)", after.wrong, self.policy.max_wrong)
        return Verdict(WRONG, wrong_left=left)

    def submit(self, secret: bytearray, loop: asyncio.AbstractEventLoop,
               on_done: Callable[[Verdict], None]) -> None:
        """Run ``check`` on a worker thread and call ``on_done(verdict)`` on ``loop``.

        Any failure (disk, damaged record) is logged and answered as ``not_set``: the
        staff check fails closed and the daemon keeps running.
        """
        def work() -> None:
            try:
                verdict = self.check(secret)
            except Exception as e:  # noqa: BLE001 - fail closed, never kill the loop
                log.error("staff password check failed: %s", e)
                verdict = Verdict(NOT_SET)
            loop.call_soon_threadsafe(on_done, verdict)

        threading.Thread(target=work, name="staff-check", daemon=True).start()

    def _load_record(self) -> PasswordRecord | None:
        try:
            text = self.password_path.read_text(encoding="ascii")
        except FileNotFoundError:
            return None
        except (OSError, UnicodeDecodeError) as e:
            raise StaffAuthError(f"cannot read {self.password_path}: {e}") from None
        return parse_record(text, str(self.password_path))

    def _load_lockout(self, now: float) -> LockoutState:
        try:
            raw = json.loads(self.lockout_path.read_text(encoding="utf-8"))
            return LockoutState(int(raw["wrong"]), int(raw["lockouts"]), float(raw["locked_until"]))
        except FileNotFoundError:
            return LockoutState()
        except (OSError, ValueError, KeyError, TypeError) as e:
            # Fail closed but not for ever: a damaged file counts as one lockout from now.
            log.error("staff lockout file %s is damaged (%s); locking for %.0f s",
                      self.lockout_path, e, self.policy.lock_s)
            state = LockoutState(0, 1, now + self.policy.duration(1))
            self._save_lockout(state)
            return state

    def _save_lockout(self, state: LockoutState) -> None:
        _write_private(self.lockout_path, json.dumps(dataclasses.asdict(state)) + "\n", like=self.state_dir)
