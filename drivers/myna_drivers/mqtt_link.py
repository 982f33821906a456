"""MQTT transport for the host link (aiomqtt on the daemon's loop).

One MQTT message carries exactly one host-link frame (the same bytes as on the
serial line, see docs/host-protocol.md), published with QoS 1 on ``pub_topic``;
frames from the other side arrive on ``sub_topic``. MQTT's own QoS 1 only reaches
the broker, so the host-link ACK by message id is still what empties the outbox.

A retained ``online``/``offline`` status (the last will) is kept on ``status_topic``
so the host can see whether the reader is connected.

Limits, so that whoever can publish on ``sub_topic`` cannot exhaust the reader's memory:

* a payload longer than ``max_payload`` (default: the largest host-link frame) is refused
  before it is queued: counted in ``dropped["payload too large"]`` and logged;
* at most ``max_queued`` received frames wait for the link engine (and as many in
  aiomqtt's own queue, whose drops aiomqtt logs but we cannot count). When full, the newest
  frame is dropped, counted in ``dropped["receive queue full"]`` and logged. Dropping is
  safe because every DATA frame is resent from the peer's outbox until it is ACKed, a lost
  ACK only makes our own sender resend (the peer ACKs the duplicate), and a lost HELLO is
  repeated as keep-alive.

Security (docs/security.md): with ``tls_ca`` the connection is TLS and the broker's
certificate is verified against that CA, host name included; ``tls_cert``/``tls_key`` add a
client certificate. The password is never a config value: it is read from ``password_file``
(refused unless mode 0600/0640 and owned by root or the daemon's user) or from the systemd
credential ``mqtt-password`` ($CREDENTIALS_DIRECTORY, ``LoadCredential=`` in the unit).
"""

from __future__ import annotations

import asyncio
import collections
import logging
import os
import pwd
import socket
import ssl
import stat
from pathlib import Path
from typing import Any

log = logging.getLogger("myna_drivers.mqtt_link")

MAX_FRAME = 8 + 65535 + 24 + 2  # the host-link frame limit: header, 16-bit length payload, auth trailer, CRC
R_TOO_LARGE = "payload too large"
R_QUEUE_FULL = "receive queue full"


CREDENTIAL_NAME = "mqtt-password"  # LoadCredential=mqtt-password:/etc/myna-reader/mqtt-password
DAEMON_USER = "myna"  # systemd/myna-reader.sysusers.conf
MAX_SECRET_FILE = 4096


class MqttLinkError(Exception):
    """The broker cannot be reached or refused us; the message says why in plain words."""


class _LastError(logging.Handler):
    """Keeps paho's last socket error: a TLS alert (say, "certificate required") is only logged
    by paho, and the connect attempt then merely times out; _explain turns it into a sentence."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.last = ""

    def emit(self, record: logging.LogRecord) -> None:
        self.last = record.getMessage()


def secret_file_problem(path: str | os.PathLike[str]) -> str | None:
    """Why ``path`` may not hold a secret (None when it may), in one sentence.

    Allowed: a regular file, no access for others and no write for the group (0600, 0640,
    0400, 0440), owned by root, the daemon's user, or whoever runs this check.
    """
    try:
        st = os.stat(path)
    except OSError as e:
        return f"{path} cannot be read ({e.strerror or e})"
    if not stat.S_ISREG(st.st_mode):
        return f"{path} is not a regular file"
    mode = stat.S_IMODE(st.st_mode)
    if mode & 0o137:
        return (f"{path} has mode {mode:04o}; a file holding a secret must be 0600 or 0640 "
                f"(chmod 0600 {path})")
    owners = {0, os.geteuid()}
    try:
        owners.add(pwd.getpwnam(DAEMON_USER).pw_uid)
    except KeyError:
        pass
    if st.st_uid not in owners:
        return (f"{path} is owned by uid {st.st_uid}; it must belong to root or the daemon's user "
                f"{DAEMON_USER} (chown root:{DAEMON_USER} {path})")
    return None


def read_secret_file(path: str | os.PathLike[str]) -> str:
    """The secret in ``path`` (first line, surrounding whitespace removed), after the checks above."""
    problem = secret_file_problem(path)
    if problem:
        raise MqttLinkError(f"MQTT password file refused: {problem}")
    try:
        with open(path, "rb") as f:
            raw = f.read(MAX_SECRET_FILE + 1)
    except OSError as e:
        raise MqttLinkError(f"cannot read the MQTT password file {path}: {e.strerror or e}") from None
    if len(raw) > MAX_SECRET_FILE:
        raise MqttLinkError(f"the MQTT password file {path} is larger than {MAX_SECRET_FILE} bytes")
    lines = raw.splitlines()
    try:
        secret = lines[0].strip().decode("utf-8") if lines else ""
    except UnicodeDecodeError:
        raise MqttLinkError(f"the MQTT password file {path} is not UTF-8 text") from None
    if not secret:
        raise MqttLinkError(f"the MQTT password file {path} is empty")
    return secret


def credential_path(env: dict[str, str] | None = None) -> Path | None:
    """The systemd credential ``mqtt-password`` if the unit loaded one."""
    folder = (os.environ if env is None else env).get("CREDENTIALS_DIRECTORY")
    if not folder:
        return None
    path = Path(folder) / CREDENTIAL_NAME
    return path if path.is_file() else None


def tls_context(ca: str | os.PathLike[str], cert: str | os.PathLike[str] | None = None,
                key: str | os.PathLike[str] | None = None) -> ssl.SSLContext:
    """A client context that verifies the broker against ``ca`` (host name included).

    ``create_default_context`` sets CERT_REQUIRED and check_hostname; TLS 1.2 is the floor.
    """
    try:
        ctx = ssl.create_default_context(cafile=str(ca))
    except (OSError, ssl.SSLError) as e:
        raise MqttLinkError(f"cannot load the broker CA certificate {ca}: {e}") from None
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    if cert:
        try:
            ctx.load_cert_chain(str(cert), str(key) if key else None)
        except (OSError, ssl.SSLError) as e:
            raise MqttLinkError(f"cannot load the client certificate {cert} / key {key}: {e}") from None
    return ctx


class MqttPort:
    transport_name = "mqtt"
    stream = False  # every message is one whole frame

    def __init__(self, host: str, port: int = 1883, *, sub_topic: str, pub_topic: str, client_id: str,
                 username: str = "", password: str = "", password_file: str | os.PathLike[str] | None = None,
                 tls_ca: str | os.PathLike[str] | None = "", tls_cert: str | os.PathLike[str] | None = None,
                 tls_key: str | os.PathLike[str] | None = None, status_topic: str | None = None,
                 keepalive: int = 15, max_payload: int = MAX_FRAME, max_queued: int = 64) -> None:
        self.host = host
        self.port = port
        self.sub_topic = sub_topic
        self.pub_topic = pub_topic
        self.client_id = client_id
        self.username = username
        self.password = password  # tests and the virtual host only; the daemon gives a file
        self.password_file = password_file
        self.tls_ca = tls_ca or None
        self.tls_cert = tls_cert or None
        self.tls_key = tls_key or None
        self.status_topic = status_topic
        self.keepalive = keepalive
        self.max_payload = max_payload
        self.max_queued = max_queued
        self.dropped: collections.Counter[str] = collections.Counter()
        self._client: Any = None
        self._rx: asyncio.Queue[bytes | BaseException] | None = None
        self._pump: asyncio.Task | None = None
        self._paho_log = logging.getLogger(f"myna_drivers.mqtt_link.paho.{client_id}")
        found = next((h for h in self._paho_log.handlers if isinstance(h, _LastError)), None)
        if found is None:  # one handler per client id, however often a link is made for it
            found = _LastError()
            self._paho_log.addHandler(found)
        self._paho_errors: _LastError = found

    @property
    def describe(self) -> str:
        return f"MQTT {self.host}:{self.port} ({self.pub_topic} / {self.sub_topic})"

    @property
    def is_open(self) -> bool:
        return self._client is not None

    async def open(self) -> None:
        if self._client is not None:
            return
        import aiomqtt

        context = tls_context(self.tls_ca, self.tls_cert, self.tls_key) if self.tls_ca else None
        if self.tls_cert and context is None:
            raise MqttLinkError("a client certificate is only sent over TLS: set the broker CA as well")
        password = self._password()
        self._paho_errors.last = ""
        will = None
        if self.status_topic:
            will = aiomqtt.Will(self.status_topic, b"offline", qos=1, retain=True)
        client = aiomqtt.Client(
            self.host, self.port, username=self.username or None, password=password,
            identifier=self.client_id, clean_session=True, keepalive=self.keepalive, will=will,
            tls_context=context, timeout=10, logger=self._paho_log,
            # paho leaves Nagle on: with the broker's delayed ACK every small frame waits ~40 ms
            socket_options=[(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)],
            max_queued_incoming_messages=self.max_queued,  # aiomqtt drops (and logs) beyond this
        )
        try:
            await client.__aenter__()
            await client.subscribe(self.sub_topic, qos=1)
            if self.status_topic:
                await client.publish(self.status_topic, b"online", qos=1, retain=True)
        except aiomqtt.MqttError as e:
            try:
                await client.__aexit__(None, None, None)
            except Exception:
                pass
            raise MqttLinkError(self._explain(e)) from None
        except OSError as e:
            raise MqttLinkError(self._explain(e)) from None
        self._client = client
        self._rx = asyncio.Queue(self.max_queued + 1)  # + 1: room for the closing error
        self._pump = asyncio.create_task(self._pump_messages(client, self._rx), name="mqtt-rx")

    def _password(self) -> str | None:
        """From the password file, else the systemd credential, else the constructor's value."""
        if self.password_file:
            return read_secret_file(self.password_file)
        cred = credential_path()
        if cred is not None:
            return read_secret_file(cred)
        return self.password or None

    def _explain(self, e: BaseException) -> str:
        text = str(e)
        if self._paho_errors.last and ("timed out" in text.lower() or "timeout" in text.lower() or not text):
            text = f"{text} ({self._paho_errors.last})" if text else self._paho_errors.last
        low = text.lower()
        where = f"MQTT broker {self.host}:{self.port}"
        if "certificate verify failed" in low or isinstance(e, ssl.SSLCertVerificationError):
            reason = getattr(e, "verify_message", None) or text
            return (f"{where}: its TLS certificate was not accepted ({reason}); check that mqtt_tls_ca is the "
                    f"CA that signed it and that mqtt_host is a name in the certificate")
        if "alert" in low and "certificate" in low:
            return f"{where} did not accept our client certificate ({text}); check mqtt_tls_cert and mqtt_tls_key"
        if "not authori" in low or "bad user" in low:
            return f"{where} refused the user name or password"
        if "refused" in low:
            return f"{where} refused the connection (is it running?)"
        if "timed out" in low or "timeout" in low:
            return f"{where} did not answer in time"
        if "certificate" in low or "ssl" in low:
            return f"{where}: TLS failed ({text})"
        return f"{where}: {text or type(e).__name__}"

    async def _pump_messages(self, client: Any, rx: asyncio.Queue) -> None:
        import aiomqtt

        try:
            async for message in client.messages:
                payload = message.payload
                if isinstance(payload, str):
                    payload = payload.encode()
                if isinstance(payload, (bytes, bytearray)) and payload:
                    if len(payload) > self.max_payload:
                        self._drop(R_TOO_LARGE, f"{len(payload)} bytes, limit {self.max_payload}")
                    elif rx.qsize() >= self.max_queued:
                        self._drop(R_QUEUE_FULL, f"{self.max_queued} frames wait for the link")
                    else:
                        rx.put_nowait(bytes(payload))
            self._end(rx, MqttLinkError(f"MQTT broker {self.host}:{self.port} closed the connection"))
        except aiomqtt.MqttError as e:
            self._end(rx, MqttLinkError(f"lost the MQTT broker {self.host}:{self.port}: {e}"))
        except asyncio.CancelledError:
            self._end(rx, MqttLinkError("MQTT connection closed"))
            raise
        except Exception as e:  # never let the pump die silently
            self._end(rx, MqttLinkError(f"MQTT receive failed: {e}"))

    def _drop(self, reason: str, detail: str) -> None:
        self.dropped[reason] += 1
        n = self.dropped[reason]
        if n <= 10 or n % 100 == 0:  # a flood must not flood the log as well
            log.warning("MQTT %s: frame dropped, %s (%s; %d so far)", self.sub_topic, reason, detail, n)

    @staticmethod
    def _end(rx: asyncio.Queue, exc: BaseException) -> None:
        """Queue the error that ends reading; it always fits (one slot is kept for it)."""
        try:
            rx.put_nowait(exc)
        except asyncio.QueueFull:
            pass  # an earlier error is already waiting

    async def read(self) -> bytes:
        if self._rx is None:
            raise MqttLinkError("MQTT is not connected")
        item = await self._rx.get()
        if isinstance(item, BaseException):
            self._end(self._rx, item)  # every later read fails the same way
            raise item
        return item

    async def write(self, data: bytes) -> None:
        import aiomqtt

        client = self._client
        if client is None:
            raise MqttLinkError("MQTT is not connected")
        try:
            await client.publish(self.pub_topic, data, qos=1, timeout=10)
        except aiomqtt.MqttError as e:
            raise MqttLinkError(f"could not publish to MQTT broker {self.host}:{self.port}: {e}") from None

    async def close(self) -> None:
        client, self._client = self._client, None
        pump, self._pump = self._pump, None
        if client is not None and self.status_topic:
            try:
                await asyncio.wait_for(client.publish(self.status_topic, b"offline", qos=1, retain=True), 2)
            except Exception:
                pass
        if pump is not None:
            pump.cancel()
            try:
                await pump
            except BaseException:
                pass
        if client is not None:
            try:
                await asyncio.wait_for(client.__aexit__(None, None, None), 5)
            except Exception:
                pass
        if self._rx is not None:
            self._end(self._rx, MqttLinkError("MQTT connection closed"))
