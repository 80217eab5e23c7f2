"""MQTT: broker URLs, topics, receiver ids, the published JSON, and the CLI options.

URL (``--mqtt``)::

    mqtt://[user[:password]@]host[:port][/prefix]     port 1883 by default
    mqtts://...                                       TLS, system CAs, port 8883

User and password may be percent-encoded (``%40`` for ``@``, ``%23`` for ``#``,
``%2F`` for ``/``).  The prefix is one or more topic levels (default ``wmbus``).

Topics under the prefix::

    <prefix>/<manufacturer>/<id>      one JSON object per telegram (build_message)
    <prefix>/_stats/<receiver>        receiver statistics, periodically
    <prefix>/_status/<receiver>       retained {"online": true|false} (last will)

Manufacturer codes are three letters and ids eight hex digits, so they never collide
with the ``_stats``/``_status`` levels.  This module needs the standard library only
(the CLI imports it at start-up); paho-mqtt is used by :mod:`sdr.mqtt_client`, the
publisher by :mod:`sdr.mqtt_publish`.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import socket
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from stack.errors import WmbusError

__all__ = [
    "MqttError",
    "MqttUrlError",
    "MqttUrl",
    "parse_mqtt_url",
    "default_receiver_id",
    "check_receiver_id",
    "topic_level",
    "telegram_topic",
    "stats_topic",
    "status_topic",
    "build_message",
    "encode_message",
    "utc_iso",
    "add_mqtt_arguments",
]

DEFAULT_PREFIX = "wmbus"
STATS_LEVEL = "_stats"
STATUS_LEVEL = "_status"
_DEFAULT_PORTS = {"mqtt": 1883, "mqtts": 8883}  # IANA registrations for MQTT
_EXAMPLE = "mqtt://user:password@localhost:1883/wmbus"
_HOST_RE = re.compile(r"^[A-Za-z0-9._:\-]+$")
_TOPIC_FORBIDDEN = "+#/\0"  # wildcards, separator and NUL (MQTT 3.1.1 §4.7)


class MqttError(WmbusError):
    """The MQTT broker cannot be used: unreachable, refused us, or refused a topic."""


class MqttUrlError(MqttError, ValueError):
    """An MQTT URL does not parse; the message says what is wrong, with an example."""


@dataclass(frozen=True, slots=True)
class MqttUrl:
    """A parsed ``mqtt://`` or ``mqtts://`` URL.

    Attributes
    ----------
    host : str
        Broker host name or address (IPv6 without brackets).
    port : int
        TCP port.
    prefix : str
        Topic prefix, levels separated by ``/``, no leading or trailing ``/``.
    username, password : str or None
        Credentials, percent-decoded; None when absent.
    tls : bool
        True for ``mqtts://``.
    """

    host: str
    port: int
    prefix: str = DEFAULT_PREFIX
    username: str | None = None
    password: str | None = None
    tls: bool = False

    def __str__(self) -> str:
        """The URL with the password hidden (for logs and messages)."""
        auth = ""
        if self.username is not None:
            auth = self.username + (":***" if self.password is not None else "") + "@"
        host = f"[{self.host}]" if ":" in self.host else self.host
        scheme = "mqtts" if self.tls else "mqtt"
        return f"{scheme}://{auth}{host}:{self.port}/{self.prefix}"

    @property
    def address(self) -> str:
        """``host:port``, for messages."""
        return f"{self.host}:{self.port}"


def _url_error(text: str, what: str) -> MqttUrlError:
    shown = re.sub(r"(://[^:/@]*:)[^@/]*@", r"\1***@", text)  # never echo a password
    return MqttUrlError(f"bad MQTT URL {shown!r}: {what} (example: {_EXAMPLE})")


def _parse_prefix(text: str, path: str) -> str:
    prefix = unquote(path.strip("/")) or DEFAULT_PREFIX
    for level in prefix.split("/"):
        if not level:
            raise _url_error(text, "the topic prefix has an empty level ('//')")
        if any(ch in level for ch in "+#\0"):
            raise _url_error(text, "the topic prefix must not contain + or #")
    if prefix.startswith("$"):
        raise _url_error(text, "topics starting with $ are reserved by the broker")
    return prefix


def parse_mqtt_url(text: str) -> MqttUrl:
    """Parse ``mqtt://[user[:password]@]host[:port][/prefix]`` (or ``mqtts://``).

    Parameters
    ----------
    text : str
        The URL as typed.

    Returns
    -------
    MqttUrl

    Raises
    ------
    MqttUrlError
        Empty text, no or another scheme, no host, a port that is not 1-65535, a
        ``?query`` or ``#fragment`` (an unencoded ``#`` in a password lands here too),
        a password without a user, or a prefix with wildcards or empty levels.
    """
    if not text or not text.strip():
        raise _url_error(text, "it is empty")
    if "://" not in text:
        raise _url_error(text, "it must start with mqtt:// or mqtts://")
    try:
        parts = urlsplit(text.strip())
    except ValueError:  # an unbalanced [ or ] around an IPv6 address
        raise _url_error(text, "no valid host name") from None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS:
        raise _url_error(text, f"unknown scheme {scheme}://, use mqtt:// or mqtts://")
    if parts.query or parts.fragment or text.rstrip().endswith(("?", "#")):
        raise _url_error(
            text, "'?' and '#' are not allowed (percent-encode them in a password)"
        )
    host = parts.hostname
    if not host or not _HOST_RE.match(host):
        raise _url_error(text, "no valid host name")
    try:
        port = parts.port
    except ValueError:
        raise _url_error(text, "the port must be a number from 1 to 65535") from None
    if port == 0:
        raise _url_error(text, "the port must be a number from 1 to 65535")
    username = unquote(parts.username) if parts.username is not None else None
    password = unquote(parts.password) if parts.password is not None else None
    if password is not None and not username:
        raise _url_error(text, "a password needs a user name")
    return MqttUrl(
        host=host,
        port=port or _DEFAULT_PORTS[scheme],
        prefix=_parse_prefix(text, parts.path),
        username=username or None,
        password=password,
        tls=scheme == "mqtts",
    )


def topic_level(value: Any) -> str:
    """A value as one topic level: ``+ # /`` become ``_``; empty is ``_unknown``."""
    text = "" if value is None else str(value)
    for ch in _TOPIC_FORBIDDEN:
        text = text.replace(ch, "_")
    return text or "_unknown"


def telegram_topic(prefix: str, record: Mapping[str, Any]) -> str:
    """``prefix/<manufacturer>/<id>`` of a record (``_unknown`` where missing)."""
    return (
        f"{prefix}/{topic_level(record.get('manufacturer'))}/"
        f"{topic_level(record.get('id'))}"
    )


def stats_topic(prefix: str, receiver_id: str) -> str:
    """``prefix/_stats/<receiver_id>``."""
    return f"{prefix}/{STATS_LEVEL}/{receiver_id}"


def status_topic(prefix: str, receiver_id: str) -> str:
    """``prefix/_status/<receiver_id>`` (retained online flag, and the last will)."""
    return f"{prefix}/{STATUS_LEVEL}/{receiver_id}"


def _machine_tag() -> str:
    """Six hex digits stable for this machine (machine-id, else the MAC address)."""
    # Imported here: hashlib loads OpenSSL (~3.5 MB), and this module is imported by
    # every receiving command, with or without --mqtt.
    import hashlib

    for path in ("/etc/machine-id", "/var/lib/dbus/machine-id"):
        try:
            text = Path(path).read_text().strip()
        except OSError:
            continue
        if text:
            return hashlib.sha256(text.encode()).hexdigest()[:6]
    return hashlib.sha256(str(uuid.getnode()).encode()).hexdigest()[:6]


def default_receiver_id() -> str:
    """``<hostname>-<6 hex digits>``: stable across restarts, distinct across machines.

    The hex digits hash the systemd machine id (or the MAC address), so two gateways
    that share a host name (``raspberrypi``) still get different ids.
    """
    host = topic_level(socket.gethostname().split(".")[0] or "wmbus")
    return f"{host}-{_machine_tag()}"


def check_receiver_id(receiver_id: str) -> str:
    """Return ``receiver_id`` if it can be a topic level.

    Raises
    ------
    MqttError
        Empty, or containing ``/``, ``+``, ``#`` or NUL.
    """
    if not receiver_id or any(ch in receiver_id for ch in _TOPIC_FORBIDDEN):
        raise MqttError(
            f"receiver id {receiver_id!r} must be non-empty without / + or # "
            "(example: attic-gateway)"
        )
    return receiver_id


def utc_iso(wall_time_s: float) -> str:
    """``2026-01-02T03:04:05.678Z`` for a Unix time in seconds."""
    stamp = datetime.fromtimestamp(wall_time_s, UTC).isoformat(timespec="milliseconds")
    return stamp.replace("+00:00", "Z")


def _finite(value: Any) -> Any:
    """``value`` with NaN and infinities replaced by None (JSON has neither)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Mapping):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(item) for item in value]
    return value


def _json_default(value: Any) -> Any:
    if isinstance(value, bytes | bytearray):
        return bytes(value).hex()
    raise TypeError(f"cannot put {type(value).__name__} into JSON")


def encode_message(message: Mapping[str, Any]) -> bytes:
    """UTF-8 JSON of a message; NaN and infinities become null (JSON has neither)."""
    try:
        text = json.dumps(message, allow_nan=False, default=_json_default)
    except ValueError:  # a NaN somewhere (an unmeasured SNR): rare, so walk only then
        text = json.dumps(_finite(message), allow_nan=False, default=_json_default)
    return text.encode()


def build_message(
    record: Mapping[str, Any], receiver_id: str, wall_time_s: float
) -> dict[str, Any]:
    """The JSON object published for one telegram: the record plus who heard it when.

    Parameters
    ----------
    record : mapping
        One telegram as ``wmbus replay --output jsonl`` writes it (radio fields and
        ``Telegram.to_dict()``); not modified.
    receiver_id : str
        The gateway's id.
    wall_time_s : float
        Unix time of reception, seconds.

    Returns
    -------
    dict
        ``record`` with ``receiver`` and ``received_at`` added (replacing such keys).
    """
    message = dict(record)
    message["receiver"] = receiver_id
    message["received_at"] = utc_iso(wall_time_s)
    return message


def add_mqtt_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``--mqtt URL`` and its companions to an argparse parser (listen, replay)."""
    group = parser.add_argument_group("MQTT publishing")
    group.add_argument(
        "--mqtt",
        metavar="URL",
        help="publish telegrams to mqtt://[user:pass@]host[:port]/prefix "
        "(topic prefix/MANUFACTURER/ID; statistics under prefix/_stats/RECEIVER)",
    )
    group.add_argument(
        "--mqtt-id",
        metavar="ID",
        help="this receiver's id in every message (default: hostname-XXXXXX, stable)",
    )
    group.add_argument(
        "--mqtt-retain",
        action="store_true",
        help="retain each meter's last telegram on the broker",
    )
    group.add_argument(
        "--mqtt-qos", type=int, choices=(0, 1), default=1, help="MQTT QoS (default 1)"
    )
    group.add_argument(
        "--mqtt-stats",
        type=float,
        default=60.0,
        metavar="S",
        help="seconds between statistics messages, 0 for none (default 60)",
    )
    group.add_argument(
        "--mqtt-queue",
        type=int,
        default=1000,
        metavar="N",
        help="telegrams kept while the broker is away; older ones are dropped "
        "(default 1000)",
    )
