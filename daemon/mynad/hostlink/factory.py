"""Choose the host transport from the configuration: ``[host] transport = serial | mqtt``."""

from __future__ import annotations

from typing import Any, Callable

from mynad.config import HostSection, ReaderSection
from mynad.hostlink.link import HostLink


def topics(reader_id: str) -> tuple[str, str, str]:
    """(up, down, status) MQTT topics of one reader."""
    base = f"myna/{reader_id}"
    return f"{base}/up", f"{base}/down", f"{base}/status"


def make_host_link(cfg: HostSection, reader: ReaderSection, on_message: Callable[[dict[str, Any]], None],
                   **engine_options: Any) -> HostLink:
    if cfg.transport == "serial":
        from myna_drivers.serial_link import SerialPort

        port: Any = SerialPort(cfg.serial_path, cfg.baud)
    elif cfg.transport == "mqtt":
        from myna_drivers.mqtt_link import MqttPort

        up, down, status = topics(reader.id)
        port = MqttPort(cfg.mqtt_host, cfg.mqtt_port, sub_topic=down, pub_topic=up, status_topic=status,
                        client_id=f"myna-{reader.id}", username=cfg.mqtt_username, password=cfg.mqtt_password,
                        tls_ca=cfg.mqtt_tls_ca)
    else:
        raise ValueError(f"[host] transport must be serial or mqtt (got {cfg.transport!r})")
    return HostLink(port, reader.state_dir, on_message, reader_id=reader.id, **engine_options)
