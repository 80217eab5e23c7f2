"""De-duplicate telegrams heard by several gateways (the core of ``wmbus collect``).

Several receivers that hear the same meter each publish its telegram (see
:mod:`sdr.mqtt_publish`).  The collector groups copies by the key::

    (manufacturer, id, access number, telegram bytes)

and emits each group once, ``gather_s`` seconds after its first copy arrived, listing
every gateway that had heard it by then with its RSSI.  Copies arriving later but
within ``window_s`` of the first are swallowed (counted as ``late``); a copy after the
window starts a new group.  Time is the collector's own monotonic arrival time, passed
in by the caller, because gateways' clocks and network delays differ.

::

    first copy      gather_s            window_s
        |--------------->| emit          |
        |  more copies: listed  | later: late | after: a new telegram

Memory is bounded: groups leave when their window ends, and at most ``max_groups`` are
kept (the oldest is emitted early, or forgotten if already emitted; a later copy of a
forgotten group is then emitted again).  ``now_s`` must not decrease between calls.
No I/O here.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Collector", "CollectCounts", "GATEWAY_FIELDS"]

# Fields that describe one gateway's reception, not the telegram: moved into the
# "gateways" list of the emitted object.
GATEWAY_FIELDS = (
    "receiver",
    "received_at",
    "timestamp",
    "rssi_dbfs",
    "snr_db",
    "cfo_hz",
    "channel_hz",
    "chip_errors",
    "time_s",
    "sample",
)

_Key = tuple[str, str, int | None, str]


@dataclass(slots=True)
class CollectCounts:
    """Counters of a collector."""

    messages: int = 0  # copies offered
    invalid: int = 0  # not a telegram object (bad JSON shape, fields missing)
    telegrams: int = 0  # distinct telegrams emitted
    duplicates: int = 0  # copies merged into a group before it was emitted
    late: int = 0  # copies after emission, still inside the window
    evicted: int = 0  # groups pushed out early by max_groups


@dataclass(slots=True)
class _Group:
    first_s: float
    first: dict[str, Any]
    gateways: dict[str, dict[str, Any]] = field(default_factory=dict)
    emitted: bool = False


def _text(message: Mapping[str, Any], name: str) -> str | None:
    """A field that must be a non-empty string, or None when it is not one."""
    value = message.get(name)
    return value if isinstance(value, str) and value else None


def _key_of(message: Mapping[str, Any]) -> _Key | None:
    """The de-duplication key, or None when the message is not a telegram object."""
    manufacturer = message.get("manufacturer")
    meter_id, telegram = _text(message, "id"), _text(message, "telegram")
    if meter_id is None or telegram is None or _text(message, "receiver") is None:
        return None
    if not isinstance(manufacturer, str):
        return None
    access = message.get("access_number")
    if access is not None and not isinstance(access, int):
        return None
    return manufacturer, meter_id, access, telegram.lower()


class Collector:
    """Groups copies of a telegram from several gateways and emits each once.

    Parameters
    ----------
    window_s : float
        De-duplication window from a group's first copy, seconds (> 0).
    gather_s : float or None
        Delay from the first copy to emission, seconds; at most ``window_s``; default
        ``window_s`` (every gateway heard within the window is listed).
    max_groups : int
        Groups kept at most (bounds memory under a flood of distinct telegrams).

    Raises
    ------
    ValueError
        ``window_s`` not positive, ``gather_s`` negative or above ``window_s``, or
        ``max_groups`` below 1.
    """

    def __init__(
        self, window_s: float, gather_s: float | None = None, max_groups: int = 100_000
    ) -> None:
        gather_s = window_s if gather_s is None else gather_s
        if not window_s > 0 or not 0 <= gather_s <= window_s or max_groups < 1:
            raise ValueError(
                f"need window > 0, 0 <= gather <= window and max_groups >= 1 (got "
                f"window {window_s} s, gather {gather_s} s, max_groups {max_groups})"
            )
        self.window_s, self.gather_s, self.max_groups = window_s, gather_s, max_groups
        self.counts = CollectCounts()
        # Insertion order is arrival order, so the oldest group is always first.
        self._groups: OrderedDict[_Key, _Group] = OrderedDict()  # all, until expiry
        self._pending: OrderedDict[_Key, _Group] = OrderedDict()  # not yet emitted

    def __len__(self) -> int:
        """Groups held now."""
        return len(self._groups)

    def add(self, message: Mapping[str, Any], now_s: float) -> list[dict[str, Any]]:
        """Offer one gateway's copy; return the telegrams now due (usually none).

        Parameters
        ----------
        message : mapping
            A decoded message of :func:`sdr.mqtt.build_message`'s form; it
            needs ``manufacturer``, ``id``, ``telegram`` and ``receiver``.
        now_s : float
            Arrival time, seconds on a monotonic clock.

        Returns
        -------
        list of dict
            Telegrams emitted (see :meth:`poll`); copies never raise, bad ones are
            counted as ``invalid``.
        """
        self.counts.messages += 1
        key = _key_of(message) if isinstance(message, Mapping) else None
        if key is None:
            self.counts.invalid += 1
            return self.poll(now_s)
        due = self.poll(now_s)
        group = self._groups.get(key)
        if group is None:
            due += self._make_room()
            group = _Group(first_s=now_s, first=dict(message))
            self._groups[key] = group
            self._pending[key] = group
        elif group.emitted:
            self.counts.late += 1
            return due
        else:
            self.counts.duplicates += 1
        receiver = message["receiver"]
        if receiver not in group.gateways:  # a gateway's own repeat adds nothing
            group.gateways[receiver] = {
                f: message[f] for f in GATEWAY_FIELDS if f in message
            }
        if self.gather_s == 0:
            due += self.poll(now_s)
        return due

    def poll(self, now_s: float) -> list[dict[str, Any]]:
        """Emit groups whose gather time has passed; forget those past their window.

        Both dicts are in arrival order, so this touches only groups that are due.
        """
        due: list[dict[str, Any]] = []
        while self._pending:
            key, group = next(iter(self._pending.items()))
            if now_s - group.first_s < self.gather_s:
                break
            del self._pending[key]
            due.append(self._emit(group))
        while self._groups:
            key, group = next(iter(self._groups.items()))
            if now_s - group.first_s < self.window_s:
                break
            del self._groups[key]
        return due

    def next_due_s(self) -> float | None:
        """Monotonic time of the next emission, or None when nothing is pending."""
        if not self._pending:
            return None
        return next(iter(self._pending.values())).first_s + self.gather_s

    def drain(self) -> list[dict[str, Any]]:
        """Emit every pending group now (at exit) and forget everything."""
        due = [self._emit(group) for group in self._pending.values()]
        self._pending.clear()
        self._groups.clear()
        return due

    def _make_room(self) -> list[dict[str, Any]]:
        due = []
        while len(self._groups) >= self.max_groups:
            key, oldest = self._groups.popitem(last=False)
            self.counts.evicted += 1
            if self._pending.pop(key, None) is not None:
                due.append(self._emit(oldest))
        return due

    def _emit(self, group: _Group) -> dict[str, Any]:
        group.emitted = True
        self.counts.telegrams += 1
        telegram = {k: v for k, v in group.first.items() if k not in GATEWAY_FIELDS}
        telegram["first_received_at"] = group.first.get("received_at")
        telegram["gateways"] = list(group.gateways.values())
        return telegram
