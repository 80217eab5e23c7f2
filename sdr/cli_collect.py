"""``wmbus collect``: one stream of telegrams from many gateways, each telegram once.

Subscribes to ``<prefix>/+/+`` (the telegram topics of :mod:`sdr.mqtt_publish`; the
``_stats`` and ``_status`` topics and retained old values are skipped), groups the
copies with :class:`sdr.collect.Collector`, and writes each telegram once with the list
of gateways that heard it.

Threads: paho's network thread stamps each message with its monotonic arrival time and
puts it into a bounded inbox; when the inbox is full it waits, so a slow consumer of our
output slows the broker's delivery instead of losing messages here.  The main thread
groups, times the emissions, and writes.

Only the standard library is imported at module level (the parser is built for every
``wmbus`` call); paho loads when the command runs.
"""

from __future__ import annotations

import argparse
import json
import logging
import queue
import sys
import threading
import time
from collections.abc import Callable
from typing import IO, TYPE_CHECKING, Any

from sdr.cliutil import UsageError

if TYPE_CHECKING:  # annotations only: these load when the command runs
    from sdr.collect import CollectCounts, Collector
    from sdr.mqtt import MqttUrl

__all__ = ["add_collect_parser", "run_collect", "format_collected"]

_INBOX_SIZE = 10_000  # messages between paho's thread and ours
_TICK_S = 0.2  # longest wait before looking at the stop flag again, seconds
_SKIPPED_LEVELS = ("_stats", "_status")  # sdr.mqtt.STATS_LEVEL, STATUS_LEVEL

log = logging.getLogger(__name__)


def add_collect_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``wmbus collect`` on the subcommand parsers."""
    parser = sub.add_parser(
        "collect",
        help="de-duplicate telegrams that several gateways publish over MQTT",
        description=(
            "Subscribe to the telegrams that gateways (wmbus listen --mqtt) publish "
            "under a prefix, and write each telegram once (same meter, access number "
            "and bytes within the window) with the gateways that heard it and their "
            "RSSI. Ctrl-C stops and prints the counts."
        ),
    )
    parser.add_argument(
        "--mqtt",
        required=True,
        metavar="URL",
        help="broker and prefix: mqtt://[user:pass@]host[:port]/prefix",
    )
    parser.add_argument(
        "--window",
        type=float,
        default=10.0,
        metavar="S",
        help="copies within S seconds of the first are the same telegram (default 10)",
    )
    parser.add_argument(
        "--gather",
        type=float,
        metavar="S",
        help="write a telegram S seconds after its first copy (default: the window); "
        "later copies in the window are dropped without being listed",
    )
    parser.add_argument(
        "--output", choices=("jsonl", "text"), default="jsonl", help="default jsonl"
    )
    parser.add_argument("--count", type=int, metavar="N", help="stop after N telegrams")
    parser.add_argument(
        "--duration", type=float, metavar="S", help="stop after S seconds"
    )
    parser.set_defaults(handler=_run_collect_command)


def _run_collect_command(args: argparse.Namespace) -> int:
    from sdr.collect import Collector
    from sdr.mqtt import parse_mqtt_url

    url = parse_mqtt_url(args.mqtt)
    gather_s = args.window if args.gather is None else args.gather
    if not args.window > 0 or not 0 <= gather_s <= args.window:
        raise UsageError("--window must be > 0 and --gather between 0 and the window")
    if args.count is not None and args.count < 1:
        raise UsageError("--count must be at least 1")
    collector = Collector(args.window, gather_s)
    counts = run_collect(
        url,
        collector,
        sys.stdout,
        output=args.output,
        count=args.count,
        duration_s=args.duration,
    )
    print(
        f"wmbus: collect: {counts.messages} messages, {counts.telegrams} telegrams, "
        f"{counts.duplicates} duplicates, {counts.late} late, {counts.invalid} invalid",
        file=sys.stderr,
        flush=True,
    )
    return 0


def format_collected(telegram: dict[str, Any], output: str) -> str:
    """One output line for an emitted telegram (``jsonl`` or ``text``)."""
    if output == "jsonl":
        return json.dumps(telegram, ensure_ascii=False)
    heard = ", ".join(
        f"{g.get('receiver')} {_rssi_text(g.get('rssi_dbfs'))}"
        for g in telegram["gateways"]
    )
    hex_len = len(telegram.get("telegram") or "") // 2
    return (
        f"{telegram.get('first_received_at')} {telegram.get('manufacturer')} "
        f"{telegram.get('id')} access {telegram.get('access_number')} {hex_len} bytes, "
        f"{len(telegram['gateways'])} gateway(s): {heard}"
    )


def _rssi_text(rssi_dbfs: Any) -> str:
    if isinstance(rssi_dbfs, int | float):
        return f"{rssi_dbfs:.1f} dBFS"
    return "RSSI ?"


def run_collect(
    url: MqttUrl,
    collector: Collector,
    out: IO[str],
    *,
    output: str = "jsonl",
    count: int | None = None,
    duration_s: float | None = None,
    stop: threading.Event | None = None,
    ready: threading.Event | None = None,
    connect_timeout_s: float = 5.0,
) -> CollectCounts:
    """Subscribe, de-duplicate and write until count, duration, stop or Ctrl-C.

    Parameters
    ----------
    url : sdr.mqtt.MqttUrl
        Broker and prefix.
    collector : sdr.collect.Collector
        Does the grouping (its window and gather time apply).
    out : text stream
        Receives one line per telegram, flushed at once.
    output : {"jsonl", "text"}
        Line format (see :func:`format_collected`).
    count : int or None
        Stop after this many telegrams (pending ones are then not written).
    duration_s : float or None
        Stop after this many seconds; pending telegrams are written first.
    stop, ready : threading.Event or None
        Set ``stop`` to end (pending telegrams are written); ``ready`` is set once the
        subscription is in place.
    connect_timeout_s : float
        Bound on connecting and subscribing, seconds.

    Returns
    -------
    sdr.collect.CollectCounts

    Raises
    ------
    MqttError
        The broker is unreachable, refuses us or refuses the subscription.
    """
    subscription = _Subscription(url, _INBOX_SIZE)
    subscription.open(connect_timeout_s)

    def write(telegram: dict[str, Any]) -> None:
        print(format_collected(telegram, output), file=out, flush=True)

    try:
        if ready is not None:
            ready.set()
        finished = _collect_loop(
            collector, subscription.inbox, write, count, duration_s, stop
        )
    except KeyboardInterrupt:
        finished = False
    finally:
        subscription.close()
    if not finished:
        for telegram in collector.drain():
            write(telegram)
    return collector.counts


class _Subscription:
    """paho's side: subscribe on each (re)connect, stamp and queue telegram messages."""

    def __init__(self, url: MqttUrl, inbox_size: int) -> None:
        self.url = url
        self.topic = f"{url.prefix}/+/+"
        self.inbox: queue.Queue[tuple[float, Any]] = queue.Queue(inbox_size)
        self._answered = threading.Event()
        self._closed = threading.Event()
        self._refused: str | None = None
        self._client: Any = None

    def open(self, timeout_s: float) -> None:
        from sdr.mqtt import MqttError
        from sdr.mqtt_client import close_client, open_client, unique_client_id

        self._client = open_client(
            self.url,
            unique_client_id("collect"),
            connect_timeout_s=timeout_s,
            on_connect=self._on_connect,
            setup=self._setup,
        )
        if not self._answered.wait(timeout_s) or self._refused is not None:
            close_client(self._client)
            why = self._refused or f"no answer within {timeout_s:g} s"
            raise MqttError(
                f"MQTT broker {self.url.address} refused the subscription to "
                f"{self.topic}: {why}"
            )

    def close(self) -> None:
        from sdr.mqtt_client import close_client

        self._closed.set()  # releases paho's thread if it waits for room in the inbox
        close_client(self._client)

    def _setup(self, client: Any) -> None:
        self._client = client
        client.on_message = self._on_message
        client.on_subscribe = self._on_subscribe

    def _on_connect(self, ok: bool, _reason: str) -> None:
        if ok:  # a clean session forgets subscriptions: renew on every connect
            self._client.subscribe(self.topic, qos=1)

    def _on_subscribe(self, _client, _userdata, _mid, reasons, _properties) -> None:
        failed = [str(r) for r in reasons if r.is_failure]
        if failed:
            self._refused = ", ".join(failed)
            log.warning("subscription to %s refused: %s", self.topic, self._refused)
        self._answered.set()

    def _on_message(self, _client, _userdata, message) -> None:
        stamp_s = time.monotonic()
        level = message.topic[len(self.url.prefix) + 1 :].split("/", 1)[0]
        if message.retain or level in _SKIPPED_LEVELS:
            return  # an old retained value, or statistics: not a telegram heard now
        try:
            decoded = json.loads(message.payload)
        except (ValueError, UnicodeDecodeError):
            decoded = None  # the collector counts it as invalid
        # Wait while the inbox is full (back-pressure on the broker), but not forever:
        # after close() nobody empties it and paho's thread must end.
        while not self._closed.is_set():
            try:
                self.inbox.put((stamp_s, decoded), timeout=_TICK_S)
                return
            except queue.Full:
                continue


def _collect_loop(
    collector: Collector,
    inbox: queue.Queue,
    write: Callable[[dict[str, Any]], None],
    count: int | None,
    duration_s: float | None,
    stop: threading.Event | None,
) -> bool:
    """Feed the collector and write what is due; True when ``count`` was reached."""
    deadline_s = None if duration_s is None else time.monotonic() + duration_s
    clock_s = 0.0  # never decreases, as the collector requires
    written = 0
    while not (stop is not None and stop.is_set()):
        now_s = time.monotonic()
        if deadline_s is not None and now_s >= deadline_s:
            return False
        wait_s = _TICK_S
        for at_s in (collector.next_due_s(), deadline_s):
            if at_s is not None:
                wait_s = min(wait_s, at_s - now_s)
        try:
            stamp_s, message = inbox.get(timeout=max(0.0, wait_s))
            clock_s = max(clock_s, stamp_s)
            due = collector.add(message, clock_s)
        except queue.Empty:
            clock_s = max(clock_s, time.monotonic())
            due = collector.poll(clock_s)
        for telegram in due:
            write(telegram)
            written += 1
            if count is not None and written >= count:
                return True
    return False
