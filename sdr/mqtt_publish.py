"""Publish received telegrams and receiver statistics to an MQTT broker.

Threads and queues::

    radio side --publish(record)--> bounded deque --> worker --> paho network thread
                                    (queue_size)      thread     (reconnects with
                                                                  back-off)

    publish() never blocks: a full deque drops its oldest telegram and counts it.
    The worker hands messages to paho only while connected, and keeps at most
    max_in_flight of them unconfirmed.

A telegram counts as *published* when the broker acknowledged it (QoS 1) or paho wrote
it to the socket (QoS 0), and as *dropped* when the deque overflowed, when a QoS 0
message was unconfirmed at a disconnect, or when it was still queued at ``close()``.
QoS 1 messages handed to paho survive a reconnect (paho sends them again), so the
head-end may see a copy twice; ``wmbus collect`` removes such copies.

Every message carries ``receiver`` (the gateway's id) and ``received_at`` (UTC wall
clock, ISO 8601) so that a head-end fed by several gateways can de-duplicate.  Topics
are those of :mod:`sdr.mqtt`.
"""

from __future__ import annotations

import argparse
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

from sdr.mqtt import (
    MqttError,
    MqttUrl,
    build_message,
    check_receiver_id,
    default_receiver_id,
    encode_message,
    parse_mqtt_url,
    stats_topic,
    status_topic,
    telegram_topic,
    utc_iso,
)
from sdr.mqtt_client import close_client, open_client, unique_client_id

__all__ = ["MqttPublisher", "PublisherCounts", "publisher_from_args"]

log = logging.getLogger(__name__)

_MQTT_ERR_SUCCESS = 0  # paho.mqtt.enums.MQTTErrorCode values, without importing paho
_MQTT_ERR_NO_CONN = 4
_RETRY_WAIT_S = 0.05  # after paho refused a QoS 0 message in a connection race


@dataclass(frozen=True, slots=True)
class PublisherCounts:
    """A snapshot of the publisher's counters (telegrams only; stats not counted)."""

    published: int
    dropped: int
    queued: int
    in_flight: int
    reconnects: int
    connected: bool

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class _Outgoing:
    topic: str
    payload: bytes
    retain: bool
    kind: str  # "telegram", "stats" or "status"
    seq: int  # order of queueing, for flush()


class MqttPublisher:
    """Publishes telegram records to ``prefix/<manufacturer>/<id>`` without blocking.

    Parameters
    ----------
    url : str or MqttUrl
        Broker URL (see :func:`sdr.mqtt.parse_mqtt_url`).
    receiver_id : str or None
        This gateway's id; default :func:`sdr.mqtt.default_receiver_id`.
    retain : bool
        Retain each meter's last telegram (and the last statistics) on the broker.
    qos : int
        MQTT QoS 0 or 1 for telegrams and statistics.
    queue_size : int
        Telegrams kept while the broker is away or slow; then the oldest is dropped.
    max_in_flight : int
        Telegrams handed to paho and not yet confirmed, at most.
    stats_interval_s : float
        Seconds between statistics messages; 0 for none (``publish_stats()`` works).
    stats_source : callable() -> dict, or None
        The receiver's counters, merged into each statistics message.  A cumulative
        ``samples`` count also yields ``samples_per_s`` (unless given).
    connect_timeout_s, reconnect_min_s, reconnect_max_s : float
        See :func:`sdr.mqtt_client.open_client`.

    Raises
    ------
    MqttUrlError
        ``url`` does not parse.
    MqttError
        ``receiver_id`` cannot be a topic level, or ``qos``/sizes are out of range.
    """

    def __init__(
        self,
        url: str | MqttUrl,
        *,
        receiver_id: str | None = None,
        retain: bool = False,
        qos: int = 1,
        queue_size: int = 1000,
        max_in_flight: int = 100,
        stats_interval_s: float = 60.0,
        stats_source: Callable[[], Mapping[str, Any]] | None = None,
        connect_timeout_s: float = 5.0,
        reconnect_min_s: float = 1.0,
        reconnect_max_s: float = 60.0,
    ) -> None:
        self.url = url if isinstance(url, MqttUrl) else parse_mqtt_url(url)
        self.receiver_id = check_receiver_id(receiver_id or default_receiver_id())
        if qos not in (0, 1) or queue_size < 1 or max_in_flight < 1:
            raise MqttError("MQTT qos must be 0 or 1, queue and in-flight sizes >= 1")
        if not stats_interval_s >= 0:
            raise MqttError("the MQTT statistics interval must be >= 0 s (0: none)")
        self.retain, self.qos = retain, qos
        self._queue_size, self._max_in_flight = queue_size, max_in_flight
        self._stats_interval_s, self._stats_source = stats_interval_s, stats_source
        self._timeouts = (connect_timeout_s, reconnect_min_s, reconnect_max_s)
        self._cond = threading.Condition()
        self._queue: deque[_Outgoing] = deque()
        # Status and statistics go before telegrams and are never dropped.
        self._control: list[_Outgoing] = []
        self._in_flight: dict[int, _Outgoing] = {}  # by paho message id
        self._last_seq = 0
        # mids confirmed before paho's publish() returned them to the worker
        self._early_acks: set[int] = set()
        self._published = self._dropped = self._reconnects = 0
        self._connected = self._ever_connected = self._closing = False
        self._lost_at_s: float | None = None
        self._client: Any = None
        self._worker: threading.Thread | None = None
        self._start_s = time.monotonic()
        self._last_samples: tuple[float, int] | None = None

    # -- the radio side -----------------------------------------------------------

    def publish(
        self, record: Mapping[str, Any], wall_time_s: float | None = None
    ) -> bool:
        """Queue one telegram record; returns at once.

        Parameters
        ----------
        record : mapping
            One telegram record (see :func:`build_message`); needs ``manufacturer``
            and ``id`` for its topic (``_unknown`` stands in where missing).
        wall_time_s : float or None
            Unix time of reception, seconds; default now.

        Returns
        -------
        bool
            False when the queue was full and its oldest telegram was dropped (or the
            publisher is closed and this one was dropped), True otherwise.
        """
        when = time.time() if wall_time_s is None else wall_time_s
        payload = encode_message(build_message(record, self.receiver_id, when))
        topic = telegram_topic(self.url.prefix, record)
        with self._cond:
            if self._closing:
                self._dropped += 1
                return False
            full = len(self._queue) >= self._queue_size
            if full:
                self._queue.popleft()
                self._dropped += 1
            self._queue.append(
                self._item_locked(topic, payload, self.retain, "telegram")
            )
            self._cond.notify()
        return not full

    def publish_stats(self) -> None:
        """Queue a statistics message now (replacing one still waiting)."""
        payload = encode_message(self._stats_message(time.monotonic()))
        topic = stats_topic(self.url.prefix, self.receiver_id)
        with self._cond:
            self._control = [c for c in self._control if c.kind != "stats"]
            self._control.append(
                self._item_locked(topic, payload, self.retain, "stats")
            )
            self._cond.notify()

    def _item_locked(
        self, topic: str, payload: bytes, retain: bool, kind: str
    ) -> _Outgoing:
        self._last_seq += 1
        return _Outgoing(topic, payload, retain, kind, self._last_seq)

    def _oldest_seq_locked(self) -> int | None:
        """Sequence number of the oldest message not yet confirmed or dropped."""
        oldest = [self._queue[0].seq] if self._queue else []  # the deque is in order
        oldest += [item.seq for item in self._control]
        oldest += [item.seq for item in self._in_flight.values()]
        return min(oldest, default=None)

    @property
    def counts(self) -> PublisherCounts:
        """The counters now."""
        with self._cond:
            return self._counts_locked()

    def _counts_locked(self) -> PublisherCounts:
        in_flight = sum(1 for i in self._in_flight.values() if i.kind == "telegram")
        return PublisherCounts(
            published=self._published,
            dropped=self._dropped,
            queued=len(self._queue),
            in_flight=in_flight,
            reconnects=self._reconnects,
            connected=self._connected,
        )

    def _stats_message(self, now_s: float) -> dict[str, Any]:
        stats: dict[str, Any] = {}
        if self._stats_source is not None:
            stats.update(self._stats_source())
        samples = stats.get("samples")
        if isinstance(samples, int) and "samples_per_s" not in stats:
            then_s, then_samples = self._last_samples or (self._start_s, 0)
            if now_s > then_s:
                stats["samples_per_s"] = (samples - then_samples) / (now_s - then_s)
            self._last_samples = (now_s, samples)
        stats["receiver"] = self.receiver_id
        stats["time"] = utc_iso(time.time())
        stats["uptime_s"] = round(now_s - self._start_s, 3)
        stats["mqtt"] = self.counts.to_dict()
        return stats

    def _status_locked(self, online: bool) -> _Outgoing:
        topic, payload = self._status_message(online)
        return self._item_locked(topic, payload, True, "status")

    def _status_message(self, online: bool) -> tuple[str, bytes]:
        payload = encode_message({"receiver": self.receiver_id, "online": online})
        return status_topic(self.url.prefix, self.receiver_id), payload

    # -- start and stop -----------------------------------------------------------

    def start(self) -> MqttPublisher:
        """Connect (failing fast) and start the worker thread; returns self.

        Calling it again does nothing.

        Raises
        ------
        MqttError
            The broker is unreachable, does not answer, or refuses the credentials.
        """
        if self._client is not None:  # already started (``with publisher.start():``)
            return self
        connect_s, reconnect_min_s, reconnect_max_s = self._timeouts
        offline = self._status_message(False)
        self._client = open_client(
            self.url,
            unique_client_id(self.receiver_id),
            connect_timeout_s=connect_s,
            reconnect_min_s=reconnect_min_s,
            reconnect_max_s=reconnect_max_s,
            will=offline,
            on_connect=self._on_connect,
            on_disconnect=self._on_disconnect,
            setup=self._setup,
        )
        self._worker = threading.Thread(
            target=self._run, name=f"mqtt-publish-{self.receiver_id}", daemon=True
        )
        self._worker.start()
        log.info("publishing to %s as receiver %s", self.url, self.receiver_id)
        return self

    def flush(self, timeout_s: float) -> bool:
        """Wait until everything queued so far is confirmed (or dropped).

        Returns False if ``timeout_s`` seconds ran out first.  Messages queued after
        the call (periodic statistics) are not waited for.
        """
        deadline = time.monotonic() + timeout_s
        with self._cond:
            target = self._last_seq
            while (
                oldest := self._oldest_seq_locked()
            ) is not None and oldest <= target:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self._worker is None:
                    return False
                self._cond.wait(remaining)
        return True

    def close(self, timeout_s: float = 2.0) -> PublisherCounts:
        """Send final statistics and the offline status, flush, disconnect.

        Telegrams still unconfirmed after ``timeout_s`` seconds count as dropped.
        Returns the final counters; calling it again only returns them.
        """
        with self._cond:
            if self._closing:
                return self._counts_locked()
        if self._client is not None and self._worker is not None:
            if self._stats_interval_s > 0 or self._stats_source is not None:
                self.publish_stats()
            with self._cond:
                self._control.append(self._status_locked(False))
                self._cond.notify()
            self.flush(timeout_s)
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        if self._worker is not None:
            self._worker.join(timeout_s)
        if self._client is not None:
            close_client(self._client)
        with self._cond:
            lost = len(self._queue) + sum(
                1 for item in self._in_flight.values() if item.kind == "telegram"
            )
            self._dropped += lost
            self._queue.clear()
            self._in_flight.clear()
            counts = self._counts_locked()
        if lost:
            log.warning("MQTT: %d telegrams not delivered at exit", lost)
        return counts

    def __enter__(self) -> MqttPublisher:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- paho's thread ------------------------------------------------------------

    def _setup(self, client: Any) -> None:
        client.on_publish = self._on_publish

    def _on_connect(self, ok: bool, reason: str) -> None:
        with self._cond:
            if not ok:
                if self._ever_connected:
                    log.warning("MQTT broker %s refused us: %s", self.url, reason)
                return
            if self._ever_connected:
                self._reconnects += 1
                down_s = time.monotonic() - (self._lost_at_s or time.monotonic())
                log.warning(
                    "MQTT broker %s back after %.1f s; %d telegrams dropped so far",
                    self.url.address,
                    down_s,
                    self._dropped,
                )
            self._connected = self._ever_connected = True
            # Confirmations of a lost connection's QoS 0 messages can arrive after
            # on_disconnect dropped them; they name nothing we still wait for.
            self._early_acks.clear()
            self._control.insert(0, self._status_locked(True))
            self._cond.notify_all()

    def _on_disconnect(self, reason: str) -> None:
        with self._cond:
            was_connected, self._connected = self._connected, False
            if self.qos == 0:  # paho discards unsent QoS 0 packets on reconnect
                lost = sum(1 for i in self._in_flight.values() if i.kind == "telegram")
                self._dropped += lost
                self._in_flight.clear()
            if was_connected and not self._closing:
                self._lost_at_s = time.monotonic()
                log.warning(
                    "lost MQTT broker %s (%s); reconnecting, queueing <= %d telegrams",
                    self.url.address,
                    reason,
                    self._queue_size,
                )
            self._cond.notify_all()

    def _on_publish(self, _client, _userdata, mid, _reason, _properties) -> None:
        with self._cond:
            item = self._in_flight.pop(mid, None)
            if item is None:
                self._early_acks.add(mid)
            elif item.kind == "telegram":
                self._published += 1
            self._cond.notify_all()

    # -- the worker thread --------------------------------------------------------

    def _run(self) -> None:
        next_stats_s = time.monotonic() + self._stats_interval_s
        while True:
            if self._stats_interval_s > 0 and time.monotonic() >= next_stats_s:
                self.publish_stats()
                # after a stall (a suspended machine), one message, not a burst
                next_stats_s = max(
                    next_stats_s + self._stats_interval_s, time.monotonic()
                )
            with self._cond:
                if self._closing:
                    return
                item = self._take_locked()
                if item is None:
                    wait_s = next_stats_s - time.monotonic()
                    self._cond.wait(wait_s if self._stats_interval_s > 0 else None)
                    continue
            self._send(item)

    def _take_locked(self) -> _Outgoing | None:
        if not self._connected or len(self._in_flight) >= self._max_in_flight:
            return None
        if self._control:
            return self._control.pop(0)
        return self._queue.popleft() if self._queue else None

    def _send(self, item: _Outgoing) -> None:
        # Never call paho while holding our lock: paho calls _on_publish under its own.
        info = self._client.publish(item.topic, item.payload, self.qos, item.retain)
        # QoS 1: NO_CONN means paho keeps the message and sends it after reconnecting.
        accepted = info.rc == _MQTT_ERR_SUCCESS or (
            self.qos > 0 and info.rc == _MQTT_ERR_NO_CONN
        )
        with self._cond:
            if accepted and info.mid in self._early_acks:
                self._early_acks.discard(info.mid)
                self._published += item.kind == "telegram"
            elif accepted:
                self._in_flight[info.mid] = item
            else:
                self._put_back_locked(item)
                self._cond.wait(_RETRY_WAIT_S)

    def _put_back_locked(self, item: _Outgoing) -> None:
        if item.kind != "telegram":
            self._control.insert(0, item)
        elif len(self._queue) < self._queue_size:
            self._queue.appendleft(item)
        else:
            self._dropped += 1


def publisher_from_args(
    args: argparse.Namespace,
    stats_source: Callable[[], Mapping[str, Any]] | None = None,
) -> MqttPublisher | None:
    """The started publisher that ``add_mqtt_arguments`` options ask for, or None.

    Raises
    ------
    MqttUrlError, MqttError
        Bad URL or id, or the broker cannot be used (one line each).
    """
    if getattr(args, "mqtt", None) is None:
        return None
    publisher = MqttPublisher(
        args.mqtt,
        receiver_id=args.mqtt_id,
        retain=args.mqtt_retain,
        qos=args.mqtt_qos,
        queue_size=args.mqtt_queue,
        stats_interval_s=args.mqtt_stats,
        stats_source=stats_source,
    )
    return publisher.start()
