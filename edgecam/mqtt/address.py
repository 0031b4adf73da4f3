"""The broker's address, ``mqtt://[user:pass@]host[:port]`` (``mqtts://`` for TLS): parsed,
checked in one sentence, and shown with its password redacted wherever it is shown."""

from __future__ import annotations

import re
from typing import NamedTuple, Optional
from urllib.parse import unquote, urlsplit

from edgecam.bounds import show
from edgecam.errors import ConfigError

PORTS = {"mqtt": 1883, "mqtts": 8883}
EXAMPLE = "e.g. mqtt://127.0.0.1:1883 or mqtts://user:pass@broker.lan"


class Broker(NamedTuple):
    host: str
    port: int
    tls: bool
    user: Optional[str] = None
    password: Optional[str] = None

    def __str__(self) -> str:
        """The address as logs show it: never the password."""
        who = f"{self.user}:***@" if self.password is not None else (f"{self.user}@" if self.user else "")
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{'mqtts' if self.tls else 'mqtt'}://{who}{host}:{self.port}"


def redact(text: str) -> str:
    """``text`` with the password of any ``scheme://user:password@`` in it replaced by ***."""
    return re.sub(r"(://[^:/@\s]*:)\S*@", r"\1***@", str(text))


def parse_broker(url: str) -> Broker:
    """The broker ``url`` names (ConfigError with one sentence, the password redacted)."""
    text = str(url).strip()
    bad = f"bad --mqtt address {show(redact(text))} (config key 'mqtt.url')"
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError:
        raise ConfigError(f"{bad}: the port must be a number 1-65535 ({EXAMPLE}; a password with / : @ # ? "
                          f"in it is written %-encoded, e.g. %2F for /)") from None
    if parts.scheme not in PORTS:
        raise ConfigError(f"{bad}: it must start with mqtt:// or mqtts:// ({EXAMPLE})")
    if not parts.hostname:
        raise ConfigError(f"{bad}: it names no host ({EXAMPLE})")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ConfigError(f"{bad}: it must be only scheme, user, password, host and port ({EXAMPLE})")
    if port == 0:
        raise ConfigError(f"{bad}: the port must be a number 1-65535 ({EXAMPLE})")
    user = unquote(parts.username) if parts.username is not None else None
    password = unquote(parts.password) if parts.password is not None else None
    return Broker(parts.hostname, port or PORTS[parts.scheme], parts.scheme == "mqtts", user, password)


def check_url(key: str, value: str) -> None:
    """For the config schema: a bad ``mqtt.url`` is a ConfigError (the password never shown);
    a topic prefix holds no wildcard and no empty level."""
    if key == "mqtt.url":
        parse_broker(value)
    elif key in ("mqtt.topic_prefix", "mqtt.discovery_prefix") and (
            not value.strip("/") or "//" in value.strip("/") or any(c in value for c in "+#\x00")):
        raise ConfigError(f"config key '{key}' must be topic levels like edgecam/kitchen, without + # or "
                          f"empty levels, not {show(value)}")
