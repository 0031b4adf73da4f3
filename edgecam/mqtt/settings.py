"""The ``mqtt:`` section of the config schema (see edgecam/config.py): where the broker is,
what edgecam is called there, and what it publishes. Every key needs a restart to change."""

from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional

from edgecam.schema import setting


@dataclass
class MqttConfig:
    url: Optional[str] = setting(None, flag="--mqtt", metavar="URL",
                                 help="publish to this MQTT broker: mqtt://[user:pass@]host[:port] "
                                      "(mqtts:// for TLS); null: no MQTT")
    name: Optional[str] = setting(None, help="this camera's name in topics and in Home Assistant "
                                             "(null: the hostname)")
    topic_prefix: Optional[str] = setting(None, help="topics start with this (null: edgecam/<name>)")
    client_id: Optional[str] = setting(None, help="MQTT client id (null: edgecam-<name>)")
    qos: int = setting(1, range=(0, 2), help="QoS of events and replies (1: delivered at least once)")
    queue: int = setting(1000, range=(0, 1000000),
                         help="events kept while the broker is away; beyond it the oldest are dropped")
    status_s: float = setting(10.0, range=(1.0, 86400.0), help="publish the status summary this often (seconds)")
    snapshot: bool = setting(False, help="publish the annotated frame as JPEG with each event")
    labels: List[str] = setting(["person"], help="labels Home Assistant gets a detected/count sensor for")
    discovery: bool = setting(True, flag="--mqtt-discovery", metavar="on|off",
                              help="announce entities to Home Assistant (off: remove them)")
    discovery_prefix: str = setting("homeassistant", help="Home Assistant's discovery prefix")
    tls_ca: Optional[str] = setting(None, path=True, help="mqtts: CA certificate file (null: the system's)")
    tls_cert: Optional[str] = setting(None, path=True, help="mqtts: client certificate file")
    tls_key: Optional[str] = setting(None, path=True, help="mqtts: client key file")
    tls_insecure: bool = setting(False, help="mqtts: do not check the broker's certificate and name")
