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
"""

from __future__ import annotations

import asyncio
import collections
import logging
import socket
import ssl
from typing import Any

log = logging.getLogger("myna_drivers.mqtt_link")

MAX_FRAME = 8 + 65535 + 2  # the host-link frame limit: header, 16-bit length payload, CRC
R_TOO_LARGE = "payload too large"
R_QUEUE_FULL = "receive queue full"


class MqttLinkError(Exception):
    """The broker cannot be reached or refused us; the message says why in plain words."""


class MqttPort:
    transport_name = "mqtt"
    stream = False  # every message is one whole frame

    def __init__(self, host: str, port: int = 1883, *, sub_topic: str, pub_topic: str, client_id: str,
                 username: str = "", password: str = "", tls_ca: str = "", status_topic: str | None = None,
                 keepalive: int = 15, max_payload: int = MAX_FRAME, max_queued: int = 64) -> None:
        self.host = host
        self.port = port
        self.sub_topic = sub_topic
        self.pub_topic = pub_topic
        self.client_id = client_id
        self.username = username
        self.password = password
        self.tls_ca = tls_ca
        self.status_topic = status_topic
        self.keepalive = keepalive
        self.max_payload = max_payload
        self.max_queued = max_queued
        self.dropped: collections.Counter[str] = collections.Counter()
        self._client: Any = None
        self._rx: asyncio.Queue[bytes | BaseException] | None = None
        self._pump: asyncio.Task | None = None

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

        tls_context = None
        if self.tls_ca:
            try:
                tls_context = ssl.create_default_context(cafile=self.tls_ca)
            except (OSError, ssl.SSLError) as e:
                raise MqttLinkError(f"cannot load the broker CA certificate {self.tls_ca}: {e}") from None
        will = None
        if self.status_topic:
            will = aiomqtt.Will(self.status_topic, b"offline", qos=1, retain=True)
        client = aiomqtt.Client(
            self.host, self.port, username=self.username or None, password=self.password or None,
            identifier=self.client_id, clean_session=True, keepalive=self.keepalive, will=will,
            tls_context=tls_context, timeout=10,
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

    def _explain(self, e: BaseException) -> str:
        text = str(e)
        low = text.lower()
        where = f"MQTT broker {self.host}:{self.port}"
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
