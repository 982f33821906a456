"""Host-link round-trip figures: reader send() -> host ACK (outbox emptied), and
visit.started -> visit.challenge back at the reader, over a pty pair and over MQTT.

    .venv/bin/python bench/hostlink_rtt.py [--n 200] [--no-mqtt]

MQTT needs mosquitto installed; the script starts its own on a free port and stops it.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "hostlink"))

from conftest import CardPKI  # noqa: E402
from cryptography.hazmat.primitives import serialization  # noqa: E402

from mynad.config import HostSection, ReaderSection  # noqa: E402
from mynad.hostlink.auth import LinkAuth  # noqa: E402
from mynad.hostlink.codec import Frame, FrameType  # noqa: E402
from mynad.hostlink.factory import make_host_link  # noqa: E402
from mynad.hostlink.keyfile import generate_key, write_key  # noqa: E402
from mynasim.host import VirtualHost, pty_pair  # noqa: E402


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(p * len(xs)))]


async def measure(link, n: int, pki: CardPKI) -> tuple[list[float], list[float]]:
    inbox: asyncio.Queue = asyncio.Queue()
    link._on_message = inbox.put_nowait
    await link.start()
    t0 = time.monotonic()
    while not link.status()["connected"]:
        if time.monotonic() - t0 > 10:
            raise RuntimeError(f"not connected: {link.status()}")
        await asyncio.sleep(0.01)
    der = base64.b64encode(pki.cert.public_bytes(serialization.Encoding.DER)).decode()
    ack, chal = [], []
    for i in range(n):
        t = time.perf_counter()
        await link.send({"type": "reader.event", "kind": "bench", "code": "", "message": str(i)})
        while link.engine.pending_count:
            await asyncio.sleep(0)
        ack.append((time.perf_counter() - t) * 1000)
        t = time.perf_counter()
        await link.send({"type": "visit.started", "visit_id": f"b{i}", "cert_state": "valid", "cert_der": der,
                         "cert_serial": str(pki.serial), "cert_not_after": "2030-01-01"})
        while True:
            m = await inbox.get()
            if m["type"] == "visit.challenge":
                break
        chal.append((time.perf_counter() - t) * 1000)
        while link.engine.pending_count:
            await asyncio.sleep(0)
    await link.stop()
    return ack, chal


def report(name: str, ack: list[float], chal: list[float]) -> None:
    for what, xs in (("send -> ACK (outbox row deleted)", ack), ("visit.started -> visit.challenge", chal)):
        print(f"{name:5s} {what:34s} N={len(xs)} median {statistics.median(xs):7.3f} ms  "
              f"p95 {pct(xs, 0.95):7.3f} ms  max {max(xs):7.3f} ms")


def auth_reference(n: int = 5000) -> None:
    """The same-run reference for what authentication adds to a round trip: one result-sized
    DATA frame sealed by the reader and checked by the host, then its ACK the other way."""
    key = generate_key()
    reader, host = LinkAuth(key, "reader"), LinkAuth(key, "host")
    for end in (reader, host):  # counters reserved ahead, as the engine does on disk
        end.send.reserved(end.send.next + 4 * n)
    data = Frame(FrameType.DATA, 1, b'{"id":"' + b"x" * 32 + b'","type":"visit.result",' + b"0" * 600 + b"}")
    ack = Frame(FrameType.ACK, 1, b'{"id":"' + b"x" * 32 + b'"}')
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        f = reader.seal(data)
        assert host.check(f) is None
        host.accept(f)
        a = host.seal(ack)
        assert reader.check(a) is None
        reader.accept(a)
        times.append((time.perf_counter() - t0) * 1000)
    print(f"{'auth':5s} {'seal+check, frame and its ACK':34s} N={n} median {statistics.median(times):7.3f} ms  "
          f"p95 {pct(times, 0.95):7.3f} ms  max {max(times):7.3f} ms")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--no-mqtt", action="store_true")
    args = ap.parse_args()
    auth_reference()
    pki = CardPKI()
    lookup = lambda s: None  # noqa: E731
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        key = d / "host.key"  # the authenticated link (frame v2): both ends share this key
        write_key(key, generate_key())
        r, h, close = pty_pair(d)
        host = VirtualHost(h, lookup_patient=lookup, ca_certificate=pki.ca, key_file=key).start()
        try:
            link = make_host_link(HostSection(transport="serial", serial_path=r, key_file=key),
                                  ReaderSection(id="bench", state_dir=d / "s1"), print)
            report("pty", *asyncio.run(measure(link, args.n, pki)))
        finally:
            host.stop()
            close()
        if args.no_mqtt:
            return
        exe = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        if not os.path.exists(exe):
            print("mqtt: mosquitto not installed, skipped")
            return
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        conf = d / "mosquitto.conf"
        conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\nset_tcp_nodelay true\n")
        os.chmod(d, 0o755)
        os.chmod(conf, 0o644)
        proc = subprocess.Popen([exe, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            for _ in range(500):
                try:
                    socket.create_connection(("127.0.0.1", port), 0.2).close()
                    break
                except OSError:
                    time.sleep(0.01)
            host = VirtualHost(f"mqtt://127.0.0.1:{port}/bench", lookup_patient=lookup,
                               ca_certificate=pki.ca, key_file=key).start()
            try:
                link = make_host_link(HostSection(transport="mqtt", mqtt_host="127.0.0.1", mqtt_port=port,
                                                  key_file=key),
                                      ReaderSection(id="bench", state_dir=d / "s2"), print)
                report("mqtt", *asyncio.run(measure(link, args.n, pki)))
            finally:
                host.stop()
        finally:
            proc.terminate()
            proc.wait(5)


if __name__ == "__main__":
    main()
