"""Choose the host transport from the configuration (``[host] transport = serial | mqtt``) and
load the host key (``[host] key_file``): a missing, unreadable, malformed or too-open key file
raises ``HostKeyError`` with one sentence, and the daemon does not start."""

from __future__ import annotations

from typing import Any, Callable

from mynad.config import HostSection, ReaderSection
from mynad.hostlink.keyfile import load_key
from mynad.hostlink.link import HostLink


def topics(reader_id: str) -> tuple[str, str, str]:
    """(up, down, status) MQTT topics of one reader."""
    base = f"myna/{reader_id}"
    return f"{base}/up", f"{base}/down", f"{base}/status"


def make_host_link(cfg: HostSection, reader: ReaderSection, on_message: Callable[[dict[str, Any]], None],
                   **engine_options: Any) -> HostLink:
    key = load_key(cfg.key_file)
    if cfg.transport == "serial":
        from myna_drivers.serial_link import SerialPort

        port: Any = SerialPort(cfg.serial_path, cfg.baud)
    elif cfg.transport == "mqtt":
        from myna_drivers.mqtt_link import MqttPort

        up, down, status = topics(reader.id)
        port = MqttPort(cfg.mqtt_host, cfg.mqtt_port, sub_topic=down, pub_topic=up, status_topic=status,
                        client_id=f"myna-{reader.id}", username=cfg.mqtt_username,
                        password_file=cfg.mqtt_password_file, tls_ca=cfg.mqtt_tls_ca,
                        tls_cert=cfg.mqtt_tls_cert, tls_key=cfg.mqtt_tls_key)
    else:
        raise ValueError(f"[host] transport must be serial or mqtt (got {cfg.transport!r})")
    return HostLink(port, reader.state_dir, on_message, key=key, reader_id=reader.id, **engine_options)
