"""The virtual clinic host PC (レセコン / 資格確認端末 side) for the simulator and tests.

It runs the same link engine as the reader (``mynad.hostlink.engine.LinkEngine``), as
the **host**, with the reader's host key (``key=`` or ``key_file=``), on **its own asyncio
loop in its own thread**; ``start()`` returns once the loop runs, ``stop()`` joins it. Every
public method is thread-safe. Its frame counters are kept in ``state_dir`` (like the reader's),
so they survive a restart of the virtual host.

Behaviour:
* ACKs every valid reader message (NAKs invalid ones with a reason).
* ``visit.started`` -> a fresh 32-byte ``visit.challenge``.
* ``visit.authenticated`` (pin) -> verifies the certificate (CA signature, validity
  allowing the grace period) and the RSA PKCS#1 v1.5 SHA-256 signature over the nonce;
  records ``signature_valid`` in what it reports; then answers ``visit.qualification``
  from ``lookup_patient(cert_serial)``.
* ``visit.registration`` -> marks the patient registered and answers qualification again.
* ``visit.result`` -> stores the consents per certificate serial (``consents.json`` in
  ``state_dir``) and returns them as ``previous_consents`` on the next visit.

Faults (``mynasim.host.faulty_port.FaultyPort`` around its port, not in the engine):
``go_deaf(seconds | None)``/``hear_again()``, ``drop_link(hold_s)``, ``corrupt_next(n)``;
``tap`` sees every byte the host writes.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import json
import logging
import os
import threading
import time
from pathlib import Path
from typing import Any, Callable
from urllib.parse import urlparse

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from mynad.core.cert_policy import grace_end
from mynad.hostlink import messages
from mynad.hostlink.counters import CounterStore, MemoryCounterStore
from mynad.hostlink.engine import LinkEngine
from mynad.hostlink.keyfile import load_key
from mynad.hostlink.outbox import MemoryOutbox
from mynasim.host.faulty_port import FaultyPort

log = logging.getLogger("mynasim.host")

# error codes the host puts in visit.qualification.error
ERR_QUALIFICATION = "021"  # no such patient / not found in 資格確認
ERR_SIGNATURE = "023"  # the PIN signature does not verify against the card certificate
ERR_CERTIFICATE = "024"  # the card certificate is not from the trusted CA, or expired beyond grace
ERR_NO_VISIT = "025"  # authenticated/registration for a visit the host never saw start


class VirtualHost:
    def __init__(self, host_tty: str, *, lookup_patient: Callable[[int], dict[str, Any] | None],
                 ca_certificate: x509.Certificate, on_event: Callable[[str, dict[str, Any]], None] | None = None,
                 state_dir: Path | None = None, key: bytes | None = None, key_file: str | Path | None = None,
                 tap: Callable[[bytes], None] | None = None, **engine_options: Any) -> None:
        """``host_tty``: a serial device path, or ``mqtt://HOST:PORT/READER_ID`` to play the host over MQTT.
        ``key``/``key_file``: the reader's host key (the same as its ``[host] key_file``)."""
        if key is None and key_file is None:
            raise ValueError("the virtual host needs the reader's host key: pass key= or key_file=")
        self._key: bytes | None = key if key is not None else load_key(key_file)  # type: ignore[arg-type]
        self.tap = tap
        self.port: FaultyPort | None = None
        self.host_tty = host_tty
        self.lookup_patient = lookup_patient
        self.ca_certificate = ca_certificate
        self.on_event = on_event
        self.state_dir = Path(state_dir) if state_dir else None
        self.engine_options = {"ack_timeout": 0.5, "max_backoff": 2.0, "keepalive_s": 2.0, **engine_options}
        self.received: list[dict[str, Any]] = []
        self.sent: list[dict[str, Any]] = []
        self.results: list[dict[str, Any]] = []
        self._visits: dict[str, dict[str, Any]] = {}
        self._consents: dict[str, dict[str, bool]] = {}
        self._registered: set[str] = set()
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._engine: LinkEngine | None = None
        self._ready = threading.Event()
        self._stop_event: asyncio.Event | None = None
        self._start_error: BaseException | None = None
        self._held: list[dict[str, Any]] | None = None
        self._load_state()

    # ------------------------------------------------------------ state

    def _state_file(self) -> Path | None:
        return self.state_dir / "consents.json" if self.state_dir else None

    def _load_state(self) -> None:
        f = self._state_file()
        if f is not None and f.exists():
            data = json.loads(f.read_text(encoding="utf-8"))
            self._consents = data.get("consents", {})
            self._registered = set(data.get("registered", []))

    def _save_state(self) -> None:
        f = self._state_file()
        if f is None:
            return
        f.parent.mkdir(parents=True, exist_ok=True)
        tmp = f.with_suffix(".tmp")
        tmp.write_text(json.dumps({"consents": self._consents, "registered": sorted(self._registered)},
                                  ensure_ascii=False, indent=1), encoding="utf-8")
        os.replace(tmp, f)

    # ------------------------------------------------------------ thread / loop

    def _make_port(self) -> Any:
        if self.host_tty.startswith("mqtt://"):
            from myna_drivers.mqtt_link import MqttPort

            u = urlparse(self.host_tty)
            reader_id = u.path.strip("/")
            base = f"myna/{reader_id}"
            return MqttPort(u.hostname or "127.0.0.1", u.port or 1883, sub_topic=f"{base}/up",
                            pub_topic=f"{base}/down", client_id=f"myna-host-{reader_id}-{os.getpid()}",
                            username=u.username or "", password=u.password or "")
        from myna_drivers.serial_link import SerialPort

        return SerialPort(self.host_tty)

    def start(self) -> "VirtualHost":
        if self._thread is not None:
            return self
        self._ready.clear()
        self._thread = threading.Thread(target=self._run, name="virtual-host", daemon=True)
        self._thread.start()
        self._ready.wait(10)
        if self._start_error is not None:
            raise RuntimeError(f"the virtual host did not start: {self._start_error}")
        return self

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as e:  # pragma: no cover - reported through start()
            self._start_error = e
            self._ready.set()

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop_event = asyncio.Event()
        self.port = FaultyPort(self._make_port(), tap=self._tap)
        counters: CounterStore | MemoryCounterStore = (CounterStore.in_state_dir(self.state_dir) if self.state_dir
                                                        else MemoryCounterStore())
        assert self._key is not None
        self._engine = LinkEngine(self.port, MemoryOutbox(), key=self._key, role="host", counters=counters,
                                  hello=self._hello, accept=self._accept, deliver=self._deliver,
                                  name="virtual host", peer_name="the reader", store_in_thread=False,
                                  logger=log, **self.engine_options)
        try:
            await self._engine.start()
            self._ready.set()
            await self._stop_event.wait()
        finally:
            await self._engine.stop()
            counters.close()

    def _tap(self, data: bytes) -> None:
        if self.tap is not None:
            self.tap(data)

    def stop(self) -> None:
        if self._thread is None:
            return
        if self._loop is not None and self._stop_event is not None:
            self._loop.call_soon_threadsafe(self._stop_event.set)
        self._thread.join(10)
        self._thread = None
        self._loop = None

    def _call(self, fn: Callable[[], Any]) -> Any:
        """Run fn on the host loop and return its result (thread-safe)."""
        if self._loop is None:
            raise RuntimeError("the virtual host is not running")

        async def run() -> Any:
            return fn()

        return asyncio.run_coroutine_threadsafe(run(), self._loop).result(10)

    # ------------------------------------------------------------ engine hooks

    def _hello(self, reply: bool) -> dict[str, Any]:
        msg = messages.build("hello", role="host", version="mynasim")
        msg["reply"] = reply
        return msg

    def _accept(self, msg: dict[str, Any]) -> str | None:
        return messages.validate(msg, messages.READER_TO_HOST)

    def _emit(self, kind: str, msg: dict[str, Any]) -> None:
        if self.on_event is None:
            return
        try:
            self.on_event(kind, msg)
        except TypeError:
            # e.g. a timeline whose add(source, kind, **data) collides with a field named "kind"
            safe = {("event_" + k if k in ("kind", "source") else k): v for k, v in msg.items()}
            try:
                self.on_event(kind, safe)
            except Exception:
                log.exception("virtual host: on_event failed")
        except Exception:
            log.exception("virtual host: on_event failed")

    def _send(self, msg: dict[str, Any]) -> None:
        if self._held is not None:  # answering a message: report it first, then send
            self._held.append(msg)
            return
        assert self._engine is not None
        self._engine.put_nowait(msg)
        with self._cond:
            self.sent.append(msg)
            self._cond.notify_all()
        self._emit("sent", msg)

    def _deliver(self, msg: dict[str, Any]) -> None:
        kind = msg["type"]
        report = dict(msg)
        self._held = []
        try:
            if kind == "visit.started":
                self._on_started(msg)
            elif kind == "visit.authenticated":
                report.update(self._on_authenticated(msg))
            elif kind == "visit.registration":
                self._on_registration(msg)
            elif kind == "visit.result":
                self._on_result(msg)
        finally:
            with self._cond:
                self.received.append(report)
                if kind == "visit.result":
                    self.results.append(report)
                self._cond.notify_all()
            self._emit("received", report)
            held, self._held = self._held, None
            for m in held or []:
                self._send(m)

    # ------------------------------------------------------------ the host's business

    def _on_started(self, msg: dict[str, Any]) -> None:
        nonce = os.urandom(32)
        self._visits[msg["visit_id"]] = {"serial": msg["cert_serial"], "cert_der": msg["cert_der"],
                                         "nonce": nonce, "cert_state": msg.get("cert_state")}
        self._send(messages.visit_challenge(msg["visit_id"], nonce))

    def _check_certificate(self, cert: x509.Certificate, today: dt.date) -> str | None:
        ca = self.ca_certificate
        ca_key = ca.public_key()
        algorithm = cert.signature_hash_algorithm
        # JPKI issues RSA PKCS#1 v1.5 certificates only: any other CA key or a hashless
        # signature scheme (Ed25519...) cannot be the trusted CA's.
        if not isinstance(ca_key, rsa.RSAPublicKey) or algorithm is None:
            return "the card certificate was not issued by the trusted CA"
        try:
            ca_key.verify(cert.signature, cert.tbs_certificate_bytes, padding.PKCS1v15(), algorithm)
        except (InvalidSignature, ValueError, TypeError):
            return "the card certificate was not issued by the trusted CA"
        if cert.issuer != ca.subject:
            return "the card certificate names another issuer"
        nb = cert.not_valid_before_utc.date()
        na = cert.not_valid_after_utc.date()
        if today < nb:
            return "the card certificate is not valid yet"
        if today > grace_end(na):
            return "the card certificate expired more than the grace period ago"
        return None

    def _on_authenticated(self, msg: dict[str, Any]) -> dict[str, Any]:
        vid = msg["visit_id"]
        visit = self._visits.get(vid)
        extra: dict[str, Any] = {}
        if visit is None:
            self._send(messages.visit_qualification(vid, False, error={
                "code": ERR_NO_VISIT, "message": "the host has no record of this visit starting"}))
            return extra
        if msg["method"] == "pin":
            valid, why = False, None
            try:
                cert = x509.load_der_x509_certificate(base64.b64decode(visit["cert_der"]))
                why = self._check_certificate(cert, dt.date.today())
                if why is None:
                    card_key = cert.public_key()
                    if not isinstance(card_key, rsa.RSAPublicKey):  # JPKI signs with RSA only
                        raise TypeError("the card key is not RSA")
                    card_key.verify(base64.b64decode(msg.get("signature", "")), visit["nonce"],
                                    padding.PKCS1v15(), hashes.SHA256())
                    valid = True
            except InvalidSignature:
                why = "the signature does not match the challenge and the card certificate"
            except Exception as e:
                why = f"the signature could not be checked: {e}"
            extra["signature_valid"] = valid
            if why:
                extra["signature_error"] = why
            if not valid:
                code = ERR_CERTIFICATE if why and "certificate" in why and "signature" not in why else ERR_SIGNATURE
                self._send(messages.visit_qualification(vid, False, error={"code": code, "message": why or ""}))
                return extra
        self._answer_qualification(vid, visit["serial"])
        return extra

    def _answer_qualification(self, vid: str, serial: str) -> None:
        try:
            patient = self.lookup_patient(int(serial))
        except Exception as e:
            log.warning("virtual host: patient lookup failed: %s", e)
            patient = None
        if patient is None:
            self._send(messages.visit_qualification(vid, False, error={
                "code": ERR_QUALIFICATION, "message": "no insurance record for this card"}))
            return
        registered = bool(patient.get("registered", True)) or serial in self._registered
        prev = self._consents.get(serial)
        self._send(messages.visit_qualification(
            vid, True, name=patient.get("name"), name_kana=patient.get("name_kana"),
            age=patient.get("age") if isinstance(patient.get("age"), int) else None, registered=registered,
            previous_consents=dict(prev) if prev else None))

    def _on_registration(self, msg: dict[str, Any]) -> None:
        visit = self._visits.get(msg["visit_id"])
        if visit is None:
            self._send(messages.visit_qualification(msg["visit_id"], False, error={
                "code": ERR_NO_VISIT, "message": "the host has no record of this visit starting"}))
            return
        self._registered.add(visit["serial"])
        self._save_state()
        self._answer_qualification(msg["visit_id"], visit["serial"])

    def _on_result(self, msg: dict[str, Any]) -> None:
        visit = self._visits.get(msg["visit_id"])
        if visit is None:
            return
        items = messages.consents_to_items(msg.get("consents") or {})
        if items and msg.get("ProcessingResultStatus") == 1:
            self._consents.setdefault(visit["serial"], {}).update(items)
            self._save_state()

    # ------------------------------------------------------------ public (any thread)

    def wait_for(self, type_: str, timeout: float = 10.0, after: int = 0, **fields: Any) -> dict[str, Any]:
        """The first received message at index >= ``after`` of this type (and field values)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for m in self.received[after:]:
                    if m.get("type") == type_ and all(m.get(k) == v for k, v in fields.items()):
                        return m
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"the virtual host received no {type_} within {timeout:.1f} s; "
                                       f"got {[m.get('type') for m in self.received[after:]]}")
                self._cond.wait(left)

    def send_staff_visual_check(self, reason: str = "staff asked for a visual check") -> None:
        self._call(lambda: self._send(messages.staff_visual_check(reason)))

    def send(self, msg: dict[str, Any]) -> None:
        """Send any message (envelope fields added if missing) - for tests of refusal paths."""
        full = messages.envelope(msg) if "id" not in msg else msg
        self._call(lambda: self._send(full))

    def go_deaf(self, seconds: float | None = None) -> None:
        """Ignore everything received (no ACK, no answer) for ``seconds`` (None: until hear_again())."""
        self._call(lambda: self._port().deaf(seconds))

    def hear_again(self) -> None:
        self._call(lambda: self._port().hear())

    def drop_link(self, hold_s: float = 1.0) -> None:
        """Close the host's end of the line now and reopen it after ``hold_s`` seconds."""
        self._call(lambda: self._port().drop(hold_s))

    def corrupt_next(self, n: int = 1) -> None:
        """Flip a byte in each of the next ``n`` frames the host writes."""
        self._call(lambda: self._port().corrupt_next(n))

    def _port(self) -> FaultyPort:
        if self.port is None:
            raise RuntimeError("the virtual host is not running")
        return self.port

    def status(self) -> dict[str, Any]:
        def get() -> dict[str, Any]:
            assert self._engine is not None
            return {**self._engine.status(), "faults": dict(self._port().faults)}
        return self._call(get) if self._loop else {}

    def previous_consents(self, serial: int | str) -> dict[str, bool] | None:
        return self._consents.get(str(serial))
