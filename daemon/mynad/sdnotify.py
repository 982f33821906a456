"""A small sd_notify(3) client for mynad (no dependency on libsystemd).

systemd starts mynad as ``Type=notify`` with ``WatchdogSec=``. It passes two
things in the environment:

* ``NOTIFY_SOCKET``: an AF_UNIX datagram socket, either a path (``/run/systemd/notify``)
  or an abstract name written ``@name``.
* ``WATCHDOG_USEC`` (and ``WATCHDOG_PID``): how often systemd wants to hear
  ``WATCHDOG=1``. If it hears nothing for that long, it kills and restarts the service.

Usage in the daemon::

    notifier = Notifier.from_env()
    notifier.ready("reader idle")             # once the loop, card monitor and host link run
    task = asyncio.create_task(watchdog_loop(notifier, health))
    ...
    notifier.stopping()                       # on SIGTERM, before cleanup

Outside systemd (tests, the simulator, a developer's shell) every method is a
no-op that returns False. Sending never blocks the event loop: the socket is
non-blocking, and a failed send is logged once (then at debug level until a send
works again) and never raises.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Mapping, MutableMapping

__all__ = ["Heartbeat", "Notifier", "watchdog_loop"]

log = logging.getLogger(__name__)


class Notifier:
    """Sends state changes to the service manager; a no-op when ``address`` is None."""

    def __init__(self, address: str | None, watchdog_usec: int | None = None) -> None:
        self._address = _parse_address(address) if address else None
        self._watchdog_usec = watchdog_usec if watchdog_usec and watchdog_usec > 0 else None
        self._sock: socket.socket | None = None
        self._lock = threading.Lock()
        self._failing = False  # True after a failed send was logged, until a send works again

    # -- construction -----------------------------------------------------------------

    @classmethod
    def from_env(
        cls,
        environ: Mapping[str, str] | None = None,
        *,
        unset_environment: bool = False,
    ) -> Notifier:
        """Read ``NOTIFY_SOCKET``, ``WATCHDOG_USEC`` and ``WATCHDOG_PID``.

        ``WATCHDOG_USEC`` counts only when ``WATCHDOG_PID`` is absent or equals our PID
        (the variables may have been inherited from a parent). With
        ``unset_environment=True`` the variables are removed from ``os.environ`` (or the
        given mutable mapping), so child processes do not talk to systemd in our name.
        """
        env = os.environ if environ is None else environ
        address = env.get("NOTIFY_SOCKET") or None
        watchdog_usec: int | None = None
        raw_usec = env.get("WATCHDOG_USEC")
        raw_pid = env.get("WATCHDOG_PID")
        try:
            pid_ok = raw_pid is None or raw_pid == "" or int(raw_pid) == os.getpid()
        except ValueError:
            log.warning("ignoring WATCHDOG_PID=%r: not a number", raw_pid)
            pid_ok = False
        if raw_usec and pid_ok:
            try:
                watchdog_usec = int(raw_usec)
            except ValueError:
                log.warning("ignoring WATCHDOG_USEC=%r: not a number", raw_usec)
            else:
                if watchdog_usec <= 0:
                    watchdog_usec = None
        if unset_environment and isinstance(env, MutableMapping):
            for name in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"):
                env.pop(name, None)
        if address is not None and not address.startswith(("/", "@")):
            log.warning("NOTIFY_SOCKET=%r is not a path or @abstract name; not notifying", address)
            address = None
        return cls(address, watchdog_usec)

    # -- state ------------------------------------------------------------------------

    @property
    def enabled(self) -> bool:
        """True when there is a socket to notify (we run under systemd or a test harness)."""
        return self._address is not None

    def watchdog_interval(self) -> float | None:
        """Seconds between ``WATCHDOG=1`` pings (half of ``WATCHDOG_USEC``), or None if no watchdog."""
        if self._watchdog_usec is None:
            return None
        return self._watchdog_usec / 2_000_000

    # -- messages ---------------------------------------------------------------------

    def ready(self, status: str | None = None) -> bool:
        """Start-up is complete (``READY=1``), optionally with a status line."""
        return self.notify("READY=1", *_status_field(status))

    def status(self, text: str) -> bool:
        """Free-form one-line status shown by ``systemctl status mynad``."""
        return self.notify(*_status_field(text))

    def watchdog(self) -> bool:
        """Keep-alive ping (``WATCHDOG=1``). Prefer :func:`watchdog_loop` over calling this directly."""
        return self.notify("WATCHDOG=1")

    def stopping(self, status: str | None = None) -> bool:
        """The daemon is shutting down (``STOPPING=1``)."""
        return self.notify("STOPPING=1", *_status_field(status))

    def extend_timeout(self, seconds: float) -> bool:
        """Ask for ``seconds`` more before the start/stop timeout fires (``EXTEND_TIMEOUT_USEC``)."""
        return self.notify(f"EXTEND_TIMEOUT_USEC={max(0, int(seconds * 1_000_000))}")

    def notify(self, *fields: str) -> bool:
        """Send ``KEY=value`` fields in one datagram. Returns True if it was sent.

        Never raises and never blocks: if the manager's queue is full (EAGAIN) the message
        is dropped, which for a watchdog ping means the next one will be on time anyway.
        """
        if self._address is None or not fields:
            return False
        payload = "\n".join(fields).encode("utf-8", "replace")
        with self._lock:  # the daemon may notify from worker threads as well
            try:
                if self._sock is None:
                    self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
                    self._sock.setblocking(False)
                self._sock.sendto(payload, self._address)
            except OSError as e:
                self._report_failure(e)
                return False
            if self._failing:
                self._failing = False
                log.info("sd_notify works again")
            return True

    def close(self) -> None:
        with self._lock:
            if self._sock is not None:
                self._sock.close()
                self._sock = None

    def __repr__(self) -> str:
        where = "disabled" if self._address is None else _show_address(self._address)
        return f"Notifier({where}, watchdog_interval={self.watchdog_interval()})"

    def _report_failure(self, e: OSError) -> None:
        if not self._failing:
            self._failing = True
            reason = "queue full" if e.errno in (errno.EAGAIN, errno.EWOULDBLOCK) else (e.strerror or str(e))
            log.warning(
                "sd_notify to %s failed (%s); further failures are logged at debug level",
                _show_address(self._address), reason,
            )
        else:
            log.debug("sd_notify failed again: %s", e)


class Heartbeat:
    """A thread-safe 'I am alive' timestamp for a worker thread (e.g. the card monitor).

    The worker calls :meth:`beat` at least once per cycle (its SCardGetStatusChange
    timeout); the daemon's health check calls :meth:`fresh`.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._last = clock()

    def beat(self) -> None:
        self._last = self._clock()  # a float store is atomic in CPython

    def age(self) -> float:
        return self._clock() - self._last

    def fresh(self, max_age_s: float) -> bool:
        return self.age() <= max_age_s


async def watchdog_loop(
    notifier: Notifier,
    health: Callable[[], bool],
    *,
    interval: float | None = None,
) -> None:
    """Send ``WATCHDOG=1`` every interval, but only while ``health()`` returns True.

    ``health`` runs on the event loop and must be quick and non-blocking (e.g. "the card
    monitor's :class:`Heartbeat` is fresh and the host link task is not done"). Because
    this coroutine itself runs on the loop, a blocked loop also stops the pings. When the
    pings stop, systemd kills the daemon after ``WatchdogSec`` and ``Restart=`` starts it
    again. If ``health()`` becomes True again before that, the pings resume.

    A ``health()`` that raises counts as unhealthy. Returns at once when systemd asked
    for no watchdog (and no ``interval`` is given); cancel the task to stop it.
    """
    if interval is None:
        interval = notifier.watchdog_interval()
    if interval is None or not notifier.enabled:
        log.debug("no systemd watchdog requested; watchdog_loop exits")
        return
    healthy_before = True
    while True:
        try:
            healthy = bool(health())
        except Exception:
            if healthy_before:
                log.exception("watchdog health check raised; treating the daemon as unhealthy")
            healthy = False
        if healthy:
            notifier.watchdog()
            if not healthy_before:
                log.warning("health check passes again; resuming watchdog pings")
        elif healthy_before:
            log.error("health check failed; withholding WATCHDOG=1 so systemd restarts mynad")
        healthy_before = healthy
        await asyncio.sleep(interval)


def _status_field(text: str | None) -> tuple[str, ...]:
    if text is None:
        return ()
    # One line only: a newline would start a new field (e.g. a forged "READY=1").
    return ("STATUS=" + " ".join(str(text).splitlines()),)


def _parse_address(address: str) -> str | bytes:
    if address.startswith("@"):
        return b"\0" + os.fsencode(address[1:])  # Linux abstract namespace
    return address


def _show_address(address: str | bytes | None) -> str:
    if isinstance(address, bytes):
        return "@" + os.fsdecode(address[1:])
    return str(address)
