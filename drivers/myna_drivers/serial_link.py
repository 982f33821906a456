"""Serial port for the host link, driven by the asyncio loop without ever blocking it.

pyserial opens and configures the device (baud, 8N1, raw; it already ignores the
DTR/RTS ioctls a pty refuses with errno 25), then we keep its file descriptor in
non-blocking mode and watch it with ``loop.add_reader`` / ``loop.add_writer``. The
same code serves a USB gadget (/dev/ttyGS0), a USB-serial adapter and a pty pair
(the simulator); there is no separate sim implementation because a pty *is* a real
serial device to this code.

The device may vanish at any moment (USB unplugged, pty closed): ``read``/``write``
then raise ``SerialLinkError`` with a plain sentence and the port closes itself;
the caller reopens later with ``open()``.

Received bytes wait in a bounded buffer (``max_buffered`` bytes). When it is full the
port applies back-pressure: it stops reading the device until the caller has taken
half of it, so the bytes wait in the kernel's tty buffer instead of in our memory. If
the peer keeps sending, the tty driver eventually drops bytes (there is no flow control
on the line); the frame CRC catches that and the peer resends everything unacknowledged
from its outbox, so nothing is lost and memory stays bounded whatever the peer does.
"""

from __future__ import annotations

import asyncio
import collections
import errno
import fcntl
import os
from typing import Any


class SerialLinkError(Exception):
    """The serial device cannot be used (missing, busy, gone); the message says which and why."""


def _settle(fut: asyncio.Future[None]) -> None:
    """The writer callback: the device takes data again (it may fire again before we remove it)."""
    if not fut.done():
        fut.set_result(None)


class SerialPort:
    transport_name = "serial"
    stream = True  # bytes arrive in arbitrary pieces; the codec reassembles frames

    def __init__(self, path: str, baud: int = 115200, *, chunk: int = 4096, max_buffered: int = 256 * 1024) -> None:
        self.path = path
        self.baud = baud
        self.chunk = chunk
        self.max_buffered = max(max_buffered, chunk)
        self._ser: Any = None
        self._fd: int | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._rx: collections.deque[bytes] | None = None
        self.buffered = 0  # bytes received and not yet read
        self._exc: BaseException | None = None  # why every later read fails
        self._ready: asyncio.Event | None = None
        self.paused = False  # the device is not read while the buffer is full
        self.pauses = 0

    @property
    def describe(self) -> str:
        return f"serial {self.path} at {self.baud} baud"

    @property
    def is_open(self) -> bool:
        return self._fd is not None

    async def open(self) -> None:
        if self._fd is not None:
            return
        import serial  # pyserial; imported here so the module imports anywhere

        self._loop = asyncio.get_running_loop()
        try:
            # serial.Serial() opens with O_NONBLOCK; it never blocks on a tty open.
            ser = serial.Serial(port=None, baudrate=self.baud, bytesize=8, parity="N", stopbits=1,
                                timeout=0, write_timeout=0, xonxoff=False, rtscts=False, dsrdtr=False)
            ser.port = self.path
            ser.open()
        except serial.SerialException as e:
            raise SerialLinkError(self._explain(e)) from None
        except OSError as e:
            raise SerialLinkError(self._explain(e)) from None
        fd = ser.fileno()
        flags = fcntl.fcntl(fd, fcntl.F_GETFL)
        fcntl.fcntl(fd, fcntl.F_SETFL, flags | os.O_NONBLOCK)
        try:
            ser.reset_input_buffer()  # stale bytes from before we opened are not ours
        except Exception:
            pass
        self._ser, self._fd = ser, fd
        self._rx, self.buffered, self._exc, self.paused = collections.deque(), 0, None, False
        self._ready = asyncio.Event()
        self._loop.add_reader(fd, self._readable)

    def _explain(self, e: BaseException) -> str:
        code = getattr(e, "errno", None)
        text = str(e)
        if code == errno.ENOENT or "No such file" in text:
            return f"serial device {self.path} does not exist (unplugged, or the host cable is not connected)"
        if code in (errno.EACCES, errno.EPERM) or "Permission denied" in text:
            return f"no permission to open serial device {self.path} (is the daemon user in group dialout?)"
        if code == errno.EBUSY or "busy" in text.lower():
            return f"serial device {self.path} is in use by another program"
        if code in (errno.EIO, errno.ENXIO, errno.ENODEV):
            return f"serial device {self.path} went away (unplugged or closed at the other end)"
        return f"serial device {self.path} failed: {text}"

    def _readable(self) -> None:
        assert self._fd is not None and self._rx is not None
        try:
            data = os.read(self._fd, self.chunk)
        except BlockingIOError:
            return
        except OSError as e:
            self._fail(SerialLinkError(self._explain(e)))
            return
        if not data:
            self._fail(SerialLinkError(f"serial device {self.path} went away (end of file)"))
            return
        self._rx.append(data)
        self.buffered += len(data)
        assert self._ready is not None and self._loop is not None
        self._ready.set()
        if self.buffered >= self.max_buffered and not self.paused:
            self._loop.remove_reader(self._fd)  # back-pressure: leave the rest in the kernel
            self.paused = True
            self.pauses += 1

    def _fail(self, exc: BaseException) -> None:
        if self._fd is not None and self._loop is not None:
            self._loop.remove_reader(self._fd)
        if self._exc is None:
            self._exc = exc
        if self._ready is not None:
            self._ready.set()

    async def read(self) -> bytes:
        """The next bytes received (at least one). Raises SerialLinkError when the device is gone.

        Bytes received before the failure are returned first."""
        if self._rx is None or self._ready is None or (self._fd is None and not self._rx):
            raise SerialLinkError(f"serial device {self.path} is not open")
        rx, ready = self._rx, self._ready
        while not rx:
            if self._exc is not None:
                raise self._exc  # every later read fails the same way
            ready.clear()
            await ready.wait()
            if rx is not self._rx:
                raise SerialLinkError(f"serial device {self.path} was reopened while reading")
        data = rx.popleft()
        self.buffered -= len(data)
        if self.paused and self.buffered <= self.max_buffered // 2 and self._fd is not None \
                and self._loop is not None and self._exc is None:
            self._loop.add_reader(self._fd, self._readable)
            self.paused = False
        return data

    async def write(self, data: bytes) -> None:
        if self._fd is None or self._loop is None:
            raise SerialLinkError(f"serial device {self.path} is not open")
        view = memoryview(data)
        while view:
            fd = self._fd
            if fd is None:
                raise SerialLinkError(f"serial device {self.path} was closed while writing")
            try:
                n = os.write(fd, view)
                view = view[n:]
                continue
            except BlockingIOError:
                pass
            except OSError as e:
                self._fail(SerialLinkError(self._explain(e)))
                raise SerialLinkError(self._explain(e)) from None
            # output buffer full: wait until writable (bounded, so a stuck line is noticed)
            fut: asyncio.Future[None] = self._loop.create_future()
            self._loop.add_writer(fd, _settle, fut)
            try:
                await asyncio.wait_for(fut, timeout=5.0)
            except asyncio.TimeoutError:
                raise SerialLinkError(f"serial device {self.path} does not accept data (flow stopped?)") from None
            finally:
                if self._fd is not None:
                    self._loop.remove_writer(fd)

    async def close(self) -> None:
        fd, ser = self._fd, self._ser
        self._fd = self._ser = None
        if fd is not None and self._loop is not None:
            self._loop.remove_reader(fd)
            self._loop.remove_writer(fd)
        self._fail(SerialLinkError(f"serial device {self.path} is closed"))
        self.paused = False
        if ser is not None:
            try:
                ser.close()
            except Exception:
                pass
