"""The reader's MQTT link against a real mosquitto with TLS, client certificates, a password
file and the ACL of docs/security.md (fixture in conftest.py)."""

from __future__ import annotations

import asyncio

import pytest

from mynad.config import parse_config
from mynad.hostlink.factory import make_host_link, topics
from myna_drivers.mqtt_link import MqttLinkError, MqttPort

from .conftest import HOST_USER, OTHER_READER, PASSWORDS, READER

pytestmark = pytest.mark.mqtt


def reader_config(b, **host):
    """The daemon's own config path: TOML keys -> parse_config (bounds, file checks) -> factory."""
    cert, key = b.certs[READER]
    host_key = b.folder / "host.key"  # the host link's own HMAC key (issue #10), not under test here
    if not host_key.exists():
        from mynad.hostlink.keyfile import generate_key, write_key

        write_key(host_key, generate_key())
    values = {"key_file": str(host_key), "transport": "mqtt", "mqtt_host": b.host, "mqtt_port": b.port, "mqtt_username": READER,
              "mqtt_password_file": str(b.password_file(READER)), "mqtt_tls_ca": str(b.ca),
              "mqtt_tls_cert": str(cert), "mqtt_tls_key": str(key), **host}
    values = {k: v for k, v in values.items() if v is not None}
    return parse_config({"reader": {"id": READER, "state_dir": str(b.folder / "state")}, "host": values})


def reader_port(b, **host) -> MqttPort:
    cfg = reader_config(b, **host)
    link = make_host_link(cfg.host, cfg.reader, on_message=lambda m: None)
    return link.port


def host_port(b, reader_id: str = READER) -> MqttPort:
    up, down, _ = topics(reader_id)
    cert, key = b.certs[HOST_USER]
    return MqttPort(b.host, b.port, sub_topic=up, pub_topic=down, client_id="clinic-host", username=HOST_USER,
                    password=PASSWORDS[HOST_USER], tls_ca=b.ca, tls_cert=cert, tls_key=key)


async def opened(*ports: MqttPort) -> None:
    for p in ports:
        await p.open()


async def closed(*ports: MqttPort) -> None:
    for p in ports:
        await p.close()


def test_reader_and_host_exchange_frames_over_verified_tls(tls_broker):
    async def main():
        reader, host = reader_port(tls_broker), host_port(tls_broker)
        assert (reader.tls_ca, reader.username) == (tls_broker.ca, READER)
        await opened(host, reader)
        try:
            await reader.write(b"\x02frame from the reader")
            assert await asyncio.wait_for(host.read(), 10) == b"\x02frame from the reader"
            await host.write(b"\x02frame from the host")
            assert await asyncio.wait_for(reader.read(), 10) == b"\x02frame from the host"
        finally:
            await closed(reader, host)

    asyncio.run(main())


def test_password_from_a_systemd_credential(tls_broker, monkeypatch, tmp_path):
    """No password file configured: $CREDENTIALS_DIRECTORY/mqtt-password (LoadCredential=) is used."""
    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "mqtt-password").write_text(PASSWORDS[READER])
    (creds / "mqtt-password").chmod(0o400)  # as systemd leaves it
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(creds))
    port = reader_port(tls_broker, mqtt_password_file=None)
    assert port.password_file is None and port.password == ""
    assert connect_error(port) == "connected"
    monkeypatch.delenv("CREDENTIALS_DIRECTORY")
    assert "refused the user name or password" in connect_error(reader_port(tls_broker, mqtt_password_file=None))


def connect_error(port: MqttPort) -> str:
    async def main():
        try:
            await port.open()
        except MqttLinkError as e:
            return str(e)
        await port.close()
        return "connected"

    return asyncio.run(main())


def test_a_wrong_ca_is_refused_in_plain_words(tls_broker):
    msg = connect_error(reader_port(tls_broker, mqtt_tls_ca=str(tls_broker.wrong_ca)))
    assert msg.startswith(f"MQTT broker {tls_broker.host}:{tls_broker.port}: its TLS certificate was not accepted")
    assert "check that mqtt_tls_ca is the CA that signed it" in msg


def test_a_certificate_for_another_host_name_is_refused(tls_broker):
    msg = connect_error(reader_port(tls_broker, mqtt_port=tls_broker.wrong_name_port))
    assert "its TLS certificate was not accepted" in msg and "mismatch" in msg.lower()


def test_no_client_certificate_no_connection(tls_broker):
    port = MqttPort(tls_broker.host, tls_broker.port, sub_topic=f"myna/{READER}/down", pub_topic=f"myna/{READER}/up",
                    client_id="no-cert", username=READER, password=PASSWORDS[READER], tls_ca=tls_broker.ca)
    msg = connect_error(port)
    assert msg.startswith(f"MQTT broker {tls_broker.host}:{tls_broker.port} did not accept our client certificate")


def test_a_wrong_password_is_refused(tls_broker, tmp_path):
    bad = tmp_path / "bad-password"
    bad.write_text("not-the-password\n")
    bad.chmod(0o600)
    msg = connect_error(reader_port(tls_broker, mqtt_password_file=str(bad)))
    assert msg == f"MQTT broker {tls_broker.host}:{tls_broker.port} refused the user name or password"


def test_a_readable_password_file_is_refused_before_connecting(tls_broker):
    f = tls_broker.password_file(READER, mode=0o644)
    cert, key = tls_broker.certs[READER]
    port = MqttPort(tls_broker.host, tls_broker.port, sub_topic="x", pub_topic="y", client_id="perm",
                    username=READER, password_file=f, tls_ca=tls_broker.ca, tls_cert=cert, tls_key=key)
    msg = connect_error(port)
    assert msg.startswith("MQTT password file refused:") and "has mode 0644" in msg
    assert PASSWORDS[READER] not in msg


def test_acl_a_reader_cannot_publish_on_another_readers_topic(tls_broker):
    """Mosquitto drops a denied PUBLISH silently (QoS 1 is still acknowledged), so the proof is
    order: the forged frame is sent first, a legitimate one second, and only the second arrives."""
    async def main():
        victim_host = host_port(tls_broker, OTHER_READER)  # the clinic host listening to reader 02
        own_host = host_port(tls_broker, READER)
        cert, key = tls_broker.certs[READER]
        up_other, _, _ = topics(OTHER_READER)
        forger = MqttPort(tls_broker.host, tls_broker.port, sub_topic=topics(READER)[1], pub_topic=up_other,
                          client_id="myna-forger", username=READER, password_file=tls_broker.password_file(READER),
                          tls_ca=tls_broker.ca, tls_cert=cert, tls_key=key)
        honest = reader_port(tls_broker)
        victim_host.client_id, own_host.client_id = "host-a", "host-b"
        await opened(victim_host, own_host, forger, honest)
        try:
            await forger.write(b"forged result for reader 02")
            await honest.write(b"after the forgery")
            assert await asyncio.wait_for(own_host.read(), 10) == b"after the forgery"
            # the same reader connection then sends a frame reader 02's host may receive: its own
            await forger.close()
            other_cert, other_key = tls_broker.certs[OTHER_READER]
            real_other = MqttPort(tls_broker.host, tls_broker.port, sub_topic=topics(OTHER_READER)[1],
                                  pub_topic=up_other, client_id="myna-other", username=OTHER_READER,
                                  password=PASSWORDS[OTHER_READER], tls_ca=tls_broker.ca, tls_cert=other_cert,
                                  tls_key=other_key)
            await real_other.open()
            await real_other.write(b"genuine from reader 02")
            assert await asyncio.wait_for(victim_host.read(), 10) == b"genuine from reader 02"
            await real_other.close()
        finally:
            await closed(victim_host, own_host, honest, forger)

    asyncio.run(main())
    assert "Denied PUBLISH from myna-forger" in tls_broker.log_text()


def test_acl_a_reader_cannot_read_another_readers_down_topic(tls_broker):
    """Subscribing to reader 02's down topic is refused (SUBACK failure): a frame the host sends
    there never reaches reader 01, while reader 02 gets it."""
    async def main():
        cert, key = tls_broker.certs[READER]
        _, down_other, _ = topics(OTHER_READER)
        snoop = MqttPort(tls_broker.host, tls_broker.port, sub_topic=down_other, pub_topic=topics(READER)[0],
                         client_id="myna-snoop", username=READER, password=PASSWORDS[READER],
                         tls_ca=tls_broker.ca, tls_cert=cert, tls_key=key)
        other_cert, other_key = tls_broker.certs[OTHER_READER]
        other = MqttPort(tls_broker.host, tls_broker.port, sub_topic=down_other, pub_topic=topics(OTHER_READER)[0],
                         client_id="myna-other2", username=OTHER_READER, password=PASSWORDS[OTHER_READER],
                         tls_ca=tls_broker.ca, tls_cert=other_cert, tls_key=other_key)
        host = host_port(tls_broker, OTHER_READER)
        host.client_id = "host-c"
        try:
            await snoop.open()
        except MqttLinkError as e:  # aiomqtt may turn the refused SUBACK into an error
            snooping = False
            assert "subscri" in str(e).lower() or "not authori" in str(e).lower()
        else:
            snooping = True
        await opened(other, host)
        try:
            await host.write(b"for reader 02 only")
            assert await asyncio.wait_for(other.read(), 10) == b"for reader 02 only"
            await host.write(b"second")
            assert await asyncio.wait_for(other.read(), 10) == b"second"
            if snooping:
                assert snoop._rx.qsize() == 0  # both were delivered to 02 and none to 01
        finally:
            await closed(snoop, other, host)

    asyncio.run(main())
