"""The technician's window into a running daemon: a Unix socket with JSON lines.

``mynactl status`` (over the Pi's serial console or ssh) asks it what the reader
is doing, how many results wait for the host, and whether the card reader is
there. It answers from status snapshots that never contain secrets. Commands that
change behaviour are limited to arming 目視確認, like the host can.

Who may do what (docs/security.md), decided from the kernel's peer credentials
(SO_PEERCRED and SO_PEERGROUPS, taken at connect time, so they cannot be forged by the
client):

* connecting at all: the socket is mode 0660, group ``control_group`` (default
  ``myna-tech``); the daemon's user and root can always connect;
* ``status`` (read-only): anyone who could connect;
* ``visual-check`` (and any future command that arms or changes something): root, the
  daemon's own user, or a member of ``staff_group`` (default ``myna-staff``). Anything else
  gets one plain sentence back, and the refusal is logged with the peer's uid and pid;
* ``selftest`` (docs/console.md): a conversation on the connection (mynad.selftest). The
  tests that only look (card reader, cameras, host link) are read-only; the ones a patient
  could see or hear (keypad, display pattern, buzzer/LED) need the same rights as visual-check.
"""

from __future__ import annotations

import asyncio
import grp
import json
import logging
import os
import socket
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

log = logging.getLogger("mynad.control")

READ_ONLY: tuple[str, ...] = ("status", "selftest-results")
STATE_CHANGING: tuple[str, ...] = ("visual-check",)
# Self-tests (mynad.selftest) are checked as "selftest:<name>": the ones that only look are
# read-only; the ones that move hardware a patient sees or hears need the staff rights.
from mynad.selftest import HARDWARE_TESTS, READ_ONLY_TESTS  # noqa: E402

READ_ONLY += tuple(f"selftest:{n}" for n in READ_ONLY_TESTS)
STATE_CHANGING += tuple(f"selftest:{n}" for n in HARDWARE_TESTS)
SO_PEERGROUPS = getattr(socket, "SO_PEERGROUPS", 59)  # Linux >= 4.13; Python does not name it
MAX_LINE = 4096


@dataclass(frozen=True)
class Peer:
    """The process at the other end of the socket, as the kernel saw it at connect()."""

    pid: int
    uid: int
    gid: int
    groups: tuple[int, ...] = ()

    def in_group(self, gid: int | None) -> bool:
        return gid is not None and (gid == self.gid or gid in self.groups)


def peer_of(sock: socket.socket) -> Peer:
    pid, uid, gid = struct.unpack("3i", sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED,
                                                         struct.calcsize("3i")))
    groups: tuple[int, ...] = ()
    for size in (4 * 256, 4 * 65536):  # NGROUPS_MAX is 65536; ERANGE asks for a bigger buffer
        try:
            raw = sock.getsockopt(socket.SOL_SOCKET, SO_PEERGROUPS, size)
        except OSError as e:
            if e.errno == 34:  # ERANGE
                continue
            break  # an old kernel: primary group only
        groups = struct.unpack(f"{len(raw) // 4}I", raw)
        break
    return Peer(pid, uid, gid, groups)


def group_id(name_or_id: str | int | None) -> int | None:
    """The gid of a group name (None when the group does not exist on this machine)."""
    if name_or_id is None or isinstance(name_or_id, int):
        return name_or_id
    try:
        return grp.getgrnam(name_or_id).gr_gid
    except KeyError:
        return None


@dataclass(frozen=True)
class ControlPolicy:
    """Pure decision: may ``peer`` run ``cmd``? ``None`` when yes, else the sentence to send."""

    staff_gid: int | None
    staff_group: str = "myna-staff"
    daemon_uid: int = 0

    def refusal(self, cmd: str, peer: Peer) -> str | None:
        if cmd in READ_ONLY:
            return None
        if peer.uid in (0, self.daemon_uid) or peer.in_group(self.staff_gid):
            return None
        if self.staff_gid is None:
            return (f"{cmd} changes what the reader does: only root may run it here "
                    f"(the staff group {self.staff_group} does not exist on this reader)")
        return (f"{cmd} changes what the reader does: only root or members of the group "
                f"{self.staff_group} may run it (ask the clinic's administrator to add your user)")


class ControlServer:
    def __init__(self, path: Path, status: Callable[[], dict[str, Any]], visual_check: Callable[[], None], *,
                 staff_group: str | int = "myna-staff", socket_group: str | int | None = "myna-tech",
                 selftests: Any = None) -> None:
        self.path = Path(path)
        self._selftests = selftests  # mynad.selftest.SelfTests, or None: no self-tests here
        self._status = status
        self._visual_check = visual_check
        self.policy = ControlPolicy(group_id(staff_group), str(staff_group), os.geteuid())
        self.socket_group = socket_group
        self.refused = 0
        self._server: asyncio.AbstractServer | None = None

    async def start(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.path.exists():
            self.path.unlink()
        self._server = await asyncio.start_unix_server(self._serve, path=str(self.path), limit=MAX_LINE)
        gid = group_id(self.socket_group)
        if gid is not None:
            try:
                os.chown(self.path, -1, gid)
            except PermissionError:
                log.warning("control socket: cannot give it to group %s (is mynad a member?); only its own "
                            "group can connect", self.socket_group)
        elif self.socket_group is not None:
            log.info("control socket: group %s does not exist; only the daemon's own group can connect",
                     self.socket_group)
        os.chmod(self.path, 0o660)
        if self.policy.staff_gid is None:
            log.info("control socket: staff group %s does not exist; visual-check only for root",
                     self.policy.staff_group)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        if self.path.exists():
            self.path.unlink()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            peer = peer_of(writer.get_extra_info("socket"))
            line = await asyncio.wait_for(reader.readline(), 5)
            try:
                req = json.loads(line or b"{}")
                cmd = req.get("cmd")
            except (ValueError, AttributeError):
                cmd = None
            if cmd == "selftest" and self._selftests is not None:
                reply = await self._selftest(req, peer, reader, writer)
            else:
                reply = self._answer(cmd, peer)
            writer.write((json.dumps(reply, ensure_ascii=False, default=str) + "\n").encode())
            await writer.drain()
        except (asyncio.TimeoutError, ConnectionError, ValueError, asyncio.LimitOverrunError):
            pass  # ValueError: a line longer than MAX_LINE
        finally:
            writer.close()

    async def _selftest(self, req: dict[str, Any], peer: Peer, reader: asyncio.StreamReader,
                        writer: asyncio.StreamWriter) -> dict[str, Any]:
        """A self-test is a conversation on this connection (mynad.selftest.Conversation)."""
        from mynad.selftest import TESTS, Conversation

        name = str(req.get("name"))[:40]
        if name not in TESTS:
            return {"ok": False, "error": f"unknown self-test {name!r}; known: {', '.join(TESTS)}"}
        refusal = self.policy.refusal(f"selftest:{name}", peer)
        if refusal is not None:
            self.refused += 1
            log.warning("control socket: refused self-test %s from uid %d gid %d (pid %d): not root nor in group %s",
                        name, peer.uid, peer.gid, peer.pid, self.policy.staff_group)
            return {"ok": False, "error": refusal.replace(f"selftest:{name}", f"the {name} self-test"),
                    "refused": True}
        log.info("control socket: self-test %s by uid %d (pid %d)", name, peer.uid, peer.pid)
        talk = Conversation(reader, writer)
        try:
            return await self._selftests.run(name, talk)
        finally:
            talk.close()

    def _answer(self, cmd: Any, peer: Peer) -> dict[str, Any]:
        commands = tuple(c for c in READ_ONLY + STATE_CHANGING if not c.startswith("selftest:"))
        if cmd not in commands:  # a self-test is asked as {"cmd": "selftest", "name": ...} only
            return {"ok": False, "error": f"unknown command {str(cmd)[:40]!r}; known: "
                                          f"{', '.join(commands + ('selftest',))}"}
        refusal = self.policy.refusal(cmd, peer)
        if refusal is not None:
            self.refused += 1
            log.warning("control socket: refused %s from uid %d gid %d (pid %d): not root nor in group %s",
                        cmd, peer.uid, peer.gid, peer.pid, self.policy.staff_group)
            return {"ok": False, "error": refusal, "refused": True}
        if cmd == "status":
            return {"ok": True, "status": self._status()}
        if cmd == "selftest-results":
            return {"ok": True, "results": self._selftests.results() if self._selftests is not None else {}}
        log.info("control socket: %s by uid %d (pid %d)", cmd, peer.uid, peer.pid)
        self._visual_check()
        return {"ok": True}
