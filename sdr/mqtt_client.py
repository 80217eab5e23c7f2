"""Opening a paho-mqtt client that fails fast, then reconnects by itself.

paho-mqtt is imported here only when a client is opened, so that the rest of ``wmbus``
runs without it; a missing paho becomes an :class:`sdr.mqtt.MqttError` naming the
package.  Used by the publisher (:mod:`sdr.mqtt_publish`) and ``wmbus collect``.
"""

from __future__ import annotations

import logging
import socket
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sdr.mqtt import MqttError, MqttUrl

__all__ = ["open_client", "close_client", "unique_client_id"]

log = logging.getLogger(__name__)

_KEEPALIVE_S = 30
# paho maps MQTT 3.1.1 CONNACK codes 4/5 to these MQTT 5 reason codes.
_AUTH_REASONS = {134, 135}  # 0x86 bad user name or password, 0x87 not authorized


def _import_paho() -> Any:
    try:
        import paho.mqtt.client as paho_client
    except ImportError:
        raise MqttError(
            "MQTT needs paho-mqtt: pip install 'wmbus-sdr[mqtt]' (or paho-mqtt)"
        ) from None
    return paho_client


@dataclass(slots=True)
class _FirstAnswer:
    """The broker's answer to the first CONNECT, handed from paho's thread."""

    event: threading.Event
    reason: Any = None


def _connect_failure(url: MqttUrl, reason: Any) -> MqttError:
    hint = ""
    if getattr(reason, "value", None) in _AUTH_REASONS:
        hint = " (check the user name and password in the URL)"
    return MqttError(
        f"MQTT broker {url.address} refused the connection: {reason}{hint}"
    )


def open_client(
    url: MqttUrl,
    client_id: str,
    *,
    connect_timeout_s: float = 5.0,
    reconnect_min_s: float = 1.0,
    reconnect_max_s: float = 60.0,
    will: tuple[str, bytes] | None = None,
    on_connect: Callable[[bool, str], None] | None = None,
    on_disconnect: Callable[[str], None] | None = None,
    setup: Callable[[Any], None] | None = None,
) -> Any:
    """Connect a paho client, start its network thread, and fail fast on a bad broker.

    After the first successful connection, paho's thread reconnects by itself with a
    delay doubling from ``reconnect_min_s`` to ``reconnect_max_s``.

    Parameters
    ----------
    url : MqttUrl
        Broker, credentials and TLS.
    client_id : str
        MQTT client id (must be unique on the broker).
    connect_timeout_s : float
        Bound, in seconds, on the TCP connect and on the wait for the broker's answer.
    reconnect_min_s, reconnect_max_s : float
        Reconnect back-off bounds, seconds.
    will : (topic, payload) or None
        Retained last-will message the broker publishes if we vanish.
    on_connect : callable(ok, reason) or None
        Called on paho's thread for every answer to CONNECT (first and reconnects).
    on_disconnect : callable(reason) or None
        Called on paho's thread when the connection is lost or closed.
    setup : callable(client) or None
        Sets further callbacks (``on_message``, ``on_publish``) before connecting.

    Returns
    -------
    paho.mqtt.client.Client
        Connected, its network loop running; stop it with :func:`close_client`.

    Raises
    ------
    MqttError
        paho-mqtt missing, host unknown, connection refused or timed out, TLS failure,
        no answer within ``connect_timeout_s``, or the broker refused us (wrong
        credentials, not authorized): one line saying which.
    """
    paho = _import_paho()
    client = paho.Client(
        paho.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=paho.MQTTv311
    )
    client.connect_timeout = connect_timeout_s
    # paho's annotation says int, but it only multiplies and compares: floats work.
    client.reconnect_delay_set(reconnect_min_s, max(reconnect_min_s, reconnect_max_s))
    if url.username is not None:
        client.username_pw_set(url.username, url.password)
    if url.tls:
        client.tls_set()
    if will is not None:
        client.will_set(will[0], will[1], qos=1, retain=True)
    first = _FirstAnswer(threading.Event())
    _install_connection_callbacks(client, first, on_connect, on_disconnect)
    if setup is not None:
        setup(client)
    try:
        client.connect(url.host, url.port, keepalive=_KEEPALIVE_S)
    except (OSError, ValueError) as exc:
        reason = exc.strerror or str(exc) if isinstance(exc, OSError) else str(exc)
        raise MqttError(
            f"cannot connect to MQTT broker {url.address}: {reason}"
        ) from None
    client.loop_start()
    if not first.event.wait(connect_timeout_s):
        close_client(client)
        raise MqttError(
            f"no answer from MQTT broker {url.address} within {connect_timeout_s:g} s "
            "(is it an MQTT broker?)"
        )
    if first.reason.is_failure:
        close_client(client)
        raise _connect_failure(url, first.reason)
    return client


def _install_connection_callbacks(
    client: Any,
    first: _FirstAnswer,
    on_connect: Callable[[bool, str], None] | None,
    on_disconnect: Callable[[str], None] | None,
) -> None:
    def connected(client_, _userdata, _flags, reason, _properties) -> None:
        _disable_nagle(client_)
        if not first.event.is_set():
            first.reason = reason
            first.event.set()
        if on_connect is not None:
            on_connect(not reason.is_failure, str(reason))

    def disconnected(_client, _userdata, _flags, reason, _properties) -> None:
        if on_disconnect is not None:
            on_disconnect(str(reason))

    client.on_connect = connected
    client.on_disconnect = disconnected


def _disable_nagle(client: Any) -> None:
    """Send each small MQTT packet at once.

    With Nagle's algorithm a PUBLISH waits for the TCP acknowledgement of the one
    before, which the broker may delay by 40 ms: one QoS 1 round trip per 40 ms.
    """
    sock = client.socket()
    if sock is None:
        return
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    except OSError as exc:  # a socket type without the option: only slower
        log.debug("TCP_NODELAY not set: %s", exc)


def close_client(client: Any) -> None:
    """Disconnect (if connected) and stop paho's network thread."""
    client.disconnect()
    client.loop_stop()


def unique_client_id(name: str) -> str:
    """``wmbus-<name>-<8 hex digits>``: two processes never take over each other."""
    return f"wmbus-{name}-{uuid.uuid4().hex[:8]}"
