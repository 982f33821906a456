"""Plug a virtual card into vpcd (the real pcscd's virtual reader driver).

vpcd protocol (docs/sources.md §S9, docs/virtual-card.md): the card side connects to 127.0.0.1:35963 (slot 0) or
:35964 (slot 1); connecting = card inserted, closing = card removed. Each message is a
2-byte big-endian length + payload; a 1-byte payload is a control (0 power off, 1 power
on, 2 reset, 4 send ATR), anything else a command APDU answered with a response APDU.
TCP_QUICKACK is re-armed before every recv (else each APDU costs ~44 ms).
"""

from __future__ import annotations

import os
import socket
import threading
import time
from pathlib import Path
from typing import Callable

from mynasim.card.app import VirtualMynaCard
from mynasim.card.faults import FaultPlan
from mynasim.card.pki import TestPKI
from mynasim.card.profiles import Profile, load_profiles
from mynasim.card.state import CardState

TCP_QUICKACK = getattr(socket, "TCP_QUICKACK", 12)

# vpcd/pcscd poll the slot every ~100 ms: a card swapped faster than that is never seen as
# removed (the new card is then missed). A hand cannot swap faster either, so insert() waits.
MIN_ABSENT_S = 0.6
_last_removed: dict[tuple[str, int], float] = {}   # per (host, port), across slot objects

CTRL_OFF, CTRL_ON, CTRL_RESET, CTRL_ATR = 0, 1, 2, 4

OnApdu = Callable[[float, bytes, bytes], None]  # (time, command, response), called before the response is sent


def _quickack(sock: socket.socket) -> None:
    try:
        sock.setsockopt(socket.IPPROTO_TCP, TCP_QUICKACK, 1)
    except OSError:
        pass


def _recv_exact(sock: socket.socket, n: int) -> bytes | None:
    buf = bytearray()
    while len(buf) < n:
        _quickack(sock)
        chunk = sock.recv(n - len(buf))
        if not chunk:
            return None
        buf += chunk
    return bytes(buf)


def _garbage(n: int = 6) -> bytes:
    """Random bytes whose last two cannot be a valid SW (SW1 must be 6x or 9x)."""
    b = bytearray(os.urandom(n))
    while (b[-2] >> 4) in (6, 9):
        b[-2] = os.urandom(1)[0]
    return bytes(b)


VPCD_PORT = 35963  # vpcd's first reader, as configured for the system pcscd


class VirtualCardSlot:
    def __init__(self, port: int = 35963, state_dir: Path | str = Path("card-state"),
                 assets_dir: Path | str = Path("assets"), on_apdu: OnApdu | None = None,
                 host: str = "127.0.0.1", profiles: dict[str, Profile] | None = None) -> None:
        self.port = port
        self.host = host
        self.state_dir = Path(state_dir)
        self.assets_dir = Path(assets_dir)
        self.on_apdu = on_apdu
        self.profiles = profiles if profiles is not None else load_profiles()
        self.pki = TestPKI(self.state_dir, self.profiles)
        self.state = CardState(self.state_dir)
        self.card: VirtualMynaCard | None = None
        self.profile_key: str | None = None
        self.apdu_count = 0
        self.error: BaseException | None = None
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.RLock()
        self._closing = False
        self._bench = port == VPCD_PORT  # the real pcscd's reader: one user per machine
        if self._bench:
            from mynasim import benchlock

            benchlock.acquire()

    @property
    def inserted(self) -> bool:
        t = self._thread
        return t is not None and t.is_alive() and self._sock is not None

    def insert(self, profile_key: str, faults: FaultPlan | None = None) -> VirtualMynaCard:
        """Connect to vpcd as the card of ``profile_key``; serves in a daemon thread."""
        with self._lock:
            if self._thread is not None:
                self.remove()
            if profile_key not in self.profiles:
                raise KeyError(f"unknown card profile {profile_key!r} (have: {', '.join(self.profiles)})")
            card = VirtualMynaCard(self.profiles[profile_key], self.pki, self.state, self.assets_dir, faults)
            self.error = None
            # prepare everything slow (keys, certificate, photo) before the card "touches" the reader
            try:
                card.ef_data("jpki", 0x000A)
                card.ef_data("face", 0x0002)
            except Exception as e:  # e.g. a missing photo: the card answers 6F00 for that EF later
                self.error = e
            wait = _last_removed.get((self.host, self.port), 0.0) + MIN_ABSENT_S - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            sock = socket.create_connection((self.host, self.port), timeout=5.0)
            sock.settimeout(None)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            _quickack(sock)
            self.card, self.profile_key, self.apdu_count = card, profile_key, 0
            self._sock = sock
            self._closing = False
            self._thread = threading.Thread(target=self._serve, args=(sock, card),
                                            name=f"vcard-{self.port}-{profile_key}", daemon=True)
            self._thread.start()
            return card

    def remove(self, timeout: float = 5.0) -> None:
        """Close the socket (card removed) and wait for the serving thread to end."""
        with self._lock:
            sock, thread = self._sock, self._thread
            self._closing = True
            if sock is not None:
                self._close_sock(sock)
            if thread is not None and thread is not threading.current_thread():
                thread.join(timeout)
            if thread is not None:
                _last_removed[(self.host, self.port)] = time.monotonic()
            self._thread = None
            self._sock = None
            self.card = None
            self.profile_key = None

    def close(self) -> None:
        self.remove()
        if self._bench:
            from mynasim import benchlock

            self._bench = False
            benchlock.release()

    def __enter__(self) -> "VirtualCardSlot":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @staticmethod
    def _close_sock(sock: socket.socket) -> None:
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        try:
            sock.close()
        except OSError:
            pass

    # ------------------------------------------------------------ serving thread

    def _send(self, sock: socket.socket, payload: bytes) -> None:
        sock.sendall(len(payload).to_bytes(2, "big") + payload)

    def _serve(self, sock: socket.socket, card: VirtualMynaCard) -> None:
        faults = card.faults
        muted = False
        try:
            while True:
                head = _recv_exact(sock, 2)
                if head is None:
                    break
                size = int.from_bytes(head, "big")
                msg = _recv_exact(sock, size) if size else b""
                if msg is None:
                    break
                if muted:
                    continue
                if len(msg) == 1:
                    ctrl = msg[0]
                    if ctrl in (CTRL_OFF, CTRL_ON, CTRL_RESET):
                        card.reset()
                    elif ctrl == CTRL_ATR:
                        self._send(sock, card.atr)
                    continue
                self.apdu_count += 1
                n = self.apdu_count
                if faults.pull_at_apdu is not None and n >= faults.pull_at_apdu:
                    break
                if faults.mute_at_apdu is not None and n >= faults.mute_at_apdu:
                    muted = True
                    continue
                try:
                    response = card.process(msg)
                except Exception as e:  # a simulator bug must look like a card error, not a hang
                    self.error = e
                    response = b"\x6F\x00"
                if faults.truncate_at_apdu == n:
                    response = response[:1]
                elif faults.garbage_at_apdu == n:
                    response = _garbage()
                if faults.slow_s:
                    time.sleep(faults.slow_s)
                # Observed before the answer leaves: whoever reacts to the answer (the daemon,
                # a test) must find this APDU already in the log, never race the observer.
                if self.on_apdu is not None:
                    try:
                        self.on_apdu(time.time(), msg, response)
                    except Exception:  # an observer must never kill the card
                        pass
                self._send(sock, response)
        except OSError as e:
            if not self._closing:
                self.error = e
        finally:
            self._close_sock(sock)
            if self._sock is sock:  # no lock here: remove() holds it while joining us
                self._sock = None
                _last_removed[(self.host, self.port)] = time.monotonic()
