"""``wmbus collect``: the de-duplicating collector (clock given) and the command against
a real Mosquitto broker fed by two publishers with different receiver ids.

Messages are made up here (the collector only reads a few fields); the broker tests
publish records built with our own encoder (tests/sdr/test_mqtt.py's ``make_record``).
"""

from __future__ import annotations

import io
import json
import threading
import time
from itertools import pairwise

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sdr.cli import main
from sdr.cli_collect import format_collected, run_collect
from sdr.collect import Collector
from sdr.mqtt import MqttError, parse_mqtt_url
from sdr.mqtt_publish import MqttPublisher
from tests.mosquitto import (  # noqa: F401 (fixtures)
    PASSWORD,
    USER,
    WAIT_S,
    free_port,
    mosquitto_fixture,
    paho_fixture,
    wait_until,
)
from tests.sdr.test_mqtt import make_record


def copy(receiver: str, rssi: float, access: int = 5, data: str = "0a0b0c", **extra):
    """One gateway's message about a made-up telegram."""
    message = {
        "manufacturer": "XYZ",
        "id": "00112233",
        "access_number": access,
        "telegram": data,
        "receiver": receiver,
        "received_at": f"t-{receiver}",
        "rssi_dbfs": rssi,
        "snr_db": 10.0,
        "mode": "T1",
    }
    message.update(extra)
    return message


# -- the collector, with a clock we choose -------------------------------------------


def test_two_gateways_one_telegram_with_both_rssis():
    collector = Collector(window_s=10.0, gather_s=2.0)
    assert collector.add(copy("gw-a", -60.5), 100.0) == []
    assert collector.add(copy("gw-b", -71.0), 100.4) == []
    assert collector.poll(101.9) == []
    [telegram] = collector.poll(102.0)
    assert telegram["gateways"] == [
        {
            "receiver": "gw-a",
            "received_at": "t-gw-a",
            "rssi_dbfs": -60.5,
            "snr_db": 10.0,
        },
        {
            "receiver": "gw-b",
            "received_at": "t-gw-b",
            "rssi_dbfs": -71.0,
            "snr_db": 10.0,
        },
    ]
    assert telegram["first_received_at"] == "t-gw-a"
    assert (telegram["manufacturer"], telegram["id"], telegram["access_number"]) == (
        "XYZ",
        "00112233",
        5,
    )
    assert "rssi_dbfs" not in telegram and "receiver" not in telegram
    assert telegram["mode"] == "T1" and telegram["telegram"] == "0a0b0c"
    counts = collector.counts
    assert (counts.messages, counts.telegrams, counts.duplicates) == (2, 1, 1)


def test_late_copy_inside_window_is_swallowed_and_after_window_is_new():
    collector = Collector(window_s=10.0, gather_s=1.0)
    collector.add(copy("gw-a", -60.0), 0.0)
    assert len(collector.poll(1.0)) == 1
    assert collector.add(copy("gw-b", -65.0), 9.9) == []
    assert collector.counts.late == 1
    assert collector.add(copy("gw-b", -65.0), 10.0) == []  # the window has ended
    [again] = collector.poll(11.0)
    assert [g["receiver"] for g in again["gateways"]] == ["gw-b"]
    assert collector.counts.telegrams == 2


@pytest.mark.parametrize(
    "other",
    [
        copy("gw-b", -60.0, access=6),
        copy("gw-b", -60.0, data="0a0b0d"),
        copy("gw-b", -60.0, id="00112234"),
        copy("gw-b", -60.0, manufacturer="XYY"),
    ],
)
def test_different_access_bytes_or_meter_is_another_telegram(other):
    collector = Collector(window_s=5.0)
    collector.add(copy("gw-a", -60.0), 0.0)
    collector.add(other, 0.1)
    emitted = collector.poll(5.1)
    assert len(emitted) == 2
    assert [len(t["gateways"]) for t in emitted] == [1, 1]


def test_hex_case_does_not_split_a_telegram():
    collector = Collector(window_s=1.0)
    collector.add(copy("gw-a", -60.0, data="0A0B0C"), 0.0)
    collector.add(copy("gw-b", -61.0, data="0a0b0c"), 0.1)
    assert len(collector.poll(1.0)) == 1


def test_a_gateway_repeating_itself_is_listed_once():
    collector = Collector(window_s=1.0)
    collector.add(copy("gw-a", -60.0), 0.0)
    collector.add(copy("gw-a", -59.0), 0.2)  # e.g. a QoS 1 redelivery
    [telegram] = collector.poll(1.0)
    assert [g["rssi_dbfs"] for g in telegram["gateways"]] == [-60.0]


def test_gather_zero_emits_at_once_and_window_still_deduplicates():
    collector = Collector(window_s=10.0, gather_s=0.0)
    assert len(collector.add(copy("gw-a", -60.0), 0.0)) == 1
    assert collector.add(copy("gw-b", -60.0), 3.0) == []
    assert collector.counts.late == 1


@pytest.mark.parametrize(
    "bad",
    [
        None,
        [],
        "text",
        {"id": "00112233", "telegram": "00", "receiver": "g"},  # no manufacturer
        copy("", -60.0),  # empty receiver
        copy("gw", -60.0, telegram=5),
        copy("gw", -60.0, access_number="5"),
        copy("gw", -60.0, id=None),
    ],
)
def test_invalid_messages_are_counted_not_raised(bad):
    collector = Collector(window_s=1.0)
    assert collector.add(bad, 0.0) == []
    assert collector.counts.invalid == 1 and len(collector) == 0


@pytest.mark.parametrize("name", ["manufacturer", "id", "telegram", "receiver"])
@pytest.mark.parametrize("missing", ["absent", "null"])
def test_message_without_a_needed_field_is_invalid(name, missing):
    # A gateway's JSON may lack any field, or carry null: counted, never raised, and
    # the good copy after it still makes a group of its own.
    message = copy("gw-a", -60.0)
    if missing == "absent":
        del message[name]
    else:
        message[name] = None
    collector = Collector(window_s=1.0, gather_s=0.0)
    assert collector.add(message, 0.0) == []
    [telegram] = collector.add(copy("gw-b", -61.0), 0.1)
    assert [g["receiver"] for g in telegram["gateways"]] == ["gw-b"]
    assert collector.counts.invalid == 1 and collector.counts.telegrams == 1


def test_memory_is_bounded_by_expiry_and_by_max_groups():
    collector = Collector(window_s=1.0, gather_s=0.5, max_groups=10)
    emitted = []
    for n in range(1000):
        emitted += collector.add(
            copy("gw", -60.0, access=n % 256, data=f"{n:06x}"), n * 0.001
        )
        assert len(collector) <= 10
    emitted += collector.drain()
    assert len(emitted) == 1000 and collector.counts.evicted == 990
    collector = Collector(window_s=1.0, gather_s=0.5)
    collector.add(copy("gw", -60.0), 0.0)
    collector.poll(5.0)
    assert len(collector) == 0 and collector.next_due_s() is None


def test_next_due_and_drain():
    collector = Collector(window_s=4.0, gather_s=1.5)
    assert collector.next_due_s() is None
    collector.add(copy("gw-a", -60.0), 2.0)
    collector.add(copy("gw-a", -60.0, access=9), 2.5)
    assert collector.next_due_s() == 3.5
    assert len(collector.drain()) == 2 and len(collector) == 0


@pytest.mark.parametrize(
    ("window_s", "gather_s", "max_groups"),
    [(0.0, None, 10), (-1.0, None, 10), (1.0, 2.0, 10), (1.0, -0.1, 10), (1.0, 0.5, 0)],
)
def test_bad_collector_settings(window_s, gather_s, max_groups):
    with pytest.raises(ValueError, match="window"):
        Collector(window_s, gather_s, max_groups)


_EVENTS = st.lists(
    st.tuples(
        st.integers(0, 3),  # which telegram (access number)
        st.sampled_from(["gw-a", "gw-b", "gw-c"]),
        st.floats(0.0, 3.0),  # seconds since the previous copy
    ),
    max_size=40,
)


@settings(max_examples=150, deadline=None)
@given(events=_EVENTS, window_s=st.floats(0.5, 5.0), gather_frac=st.floats(0.0, 1.0))
def test_property_each_copy_is_emitted_merged_or_late(events, window_s, gather_frac):
    collector = Collector(window_s, gather_frac * window_s)
    now_s, emitted = 0.0, []
    for access, gateway, step_s in events:
        now_s += step_s
        message = copy(gateway, -50.0, access=access, received_at=now_s)
        emitted += collector.add(message, now_s)
    emitted += collector.drain()
    counts = collector.counts
    assert counts.telegrams == len(emitted)
    assert counts.telegrams + counts.duplicates + counts.late == len(events)
    starts: dict[int, list[float]] = {}
    for telegram in emitted:
        receivers = [g["receiver"] for g in telegram["gateways"]]
        assert receivers and len(set(receivers)) == len(receivers)
        starts.setdefault(telegram["access_number"], []).append(
            telegram["first_received_at"]
        )
    # The same telegram is emitted again only once a window has passed.
    for times_s in starts.values():
        assert all(b - a >= window_s for a, b in pairwise(times_s))
    assert set(starts) == {access for access, _gw, _step in events}


def test_text_line():
    telegram = {
        "manufacturer": "XYZ",
        "id": "00112233",
        "access_number": 5,
        "telegram": "0a0b0c",
        "first_received_at": "2026-01-02T03:04:05.000Z",
        "gateways": [
            {"receiver": "gw-a", "rssi_dbfs": -60.54},
            {"receiver": "gw-b", "rssi_dbfs": None},
        ],
    }
    assert format_collected(telegram, "text") == (
        "2026-01-02T03:04:05.000Z XYZ 00112233 access 5 3 bytes, 2 gateway(s): "
        "gw-a -60.5 dBFS, gw-b RSSI ?"
    )
    assert json.loads(format_collected(telegram, "jsonl")) == telegram


# -- against the broker ----------------------------------------------------------------


class _Run:
    """``run_collect`` on a thread, writing into a StringIO (or a slow stream)."""

    def __init__(self, url: str, out=None, **kwargs) -> None:
        self.out = out if out is not None else io.StringIO()
        self.ready, self.stop = threading.Event(), threading.Event()
        self.result = None
        collector = Collector(kwargs.pop("window_s", 0.3), kwargs.pop("gather_s", None))

        def target() -> None:
            self.result = run_collect(
                parse_mqtt_url(url),
                collector,
                self.out,
                ready=self.ready,
                stop=self.stop,
                **kwargs,
            )

        self.thread = threading.Thread(target=target, daemon=True)
        self.thread.start()
        assert self.ready.wait(WAIT_S), "collect did not subscribe"

    def lines(self) -> list[dict]:
        return [json.loads(line) for line in self.out.getvalue().splitlines()]

    def finish(self):
        self.stop.set()
        self.thread.join(WAIT_S)
        assert not self.thread.is_alive()
        return self.result


def test_collect_two_gateways(mosquitto):
    url = mosquitto.url("col")
    run = _Run(url, window_s=0.8)  # generous: both copies must land inside it
    try:
        with (
            MqttPublisher(url, receiver_id="gw-a", stats_interval_s=0.05) as gw_a,
            MqttPublisher(url, receiver_id="gw-b", stats_interval_s=0.05) as gw_b,
        ):
            gw_a.publish(make_record(access=1, rssi=-48.25))
            gw_b.publish(make_record(access=1, rssi=-77.5))
            gw_a.publish(make_record(access=2, rssi=-49.0))  # another telegram
            assert gw_a.flush(WAIT_S) and gw_b.flush(WAIT_S)
            assert wait_until(lambda: len(run.lines()) == 2)
            # Once emitted (after the window), the same telegram again is new.
            gw_b.publish(make_record(access=1, rssi=-70.0))
            assert wait_until(lambda: len(run.lines()) == 3)
    finally:
        counts = run.finish()
    first, second, third = run.lines()
    assert first["access_number"] == 1 and second["access_number"] == 2
    assert sorted((g["receiver"], g["rssi_dbfs"]) for g in first["gateways"]) == [
        ("gw-a", -48.25),
        ("gw-b", -77.5),
    ]
    assert [g["receiver"] for g in second["gateways"]] == ["gw-a"]
    assert [(g["receiver"], g["rssi_dbfs"]) for g in third["gateways"]] == [
        ("gw-b", -70.0)
    ]
    assert first["records"][0]["value"] == 12.345
    assert counts.invalid == 0 and counts.telegrams == 3 and counts.duplicates == 1


def test_collect_skips_stats_status_retained_and_counts_garbage(mosquitto):
    url = mosquitto.url("junk")
    with MqttPublisher(url, receiver_id="old", retain=True, stats_interval_s=0) as pub:
        pub.publish(make_record(access=3))  # retained before collect starts: old news
        assert pub.flush(WAIT_S)
    run = _Run(url, window_s=0.2, gather_s=0.0)
    try:
        with MqttPublisher(url, receiver_id="gw", stats_interval_s=0.02) as pub:
            pub.publish({"manufacturer": "ABC"})  # no id, telegram: invalid
            pub.publish(make_record(access=4))
            assert pub.flush(WAIT_S)
            assert wait_until(lambda: len(run.lines()) == 1)
            assert wait_until(lambda: pub.counts.published == 2)
    finally:
        counts = run.finish()
    [line] = run.lines()
    assert line["access_number"] == 4
    assert counts.invalid == 1 and counts.messages == 2


class _SlowStream(io.StringIO):
    """An output that takes 10 ms per line: a slow consumer of ``wmbus collect``."""

    def write(self, text: str) -> int:
        time.sleep(0.01)
        return super().write(text)


def test_slow_output_loses_nothing(mosquitto, monkeypatch):
    monkeypatch.setattr("sdr.cli_collect._INBOX_SIZE", 2)  # paho's thread must wait
    url = mosquitto.url("slowout")
    run = _Run(url, out=_SlowStream(), window_s=0.05, gather_s=0.0)
    try:
        with MqttPublisher(url, receiver_id="gw", stats_interval_s=0) as pub:
            for access in range(30):
                pub.publish(make_record(access=access))
            assert pub.flush(WAIT_S)
        assert wait_until(lambda: len(run.lines()) == 30)
    finally:
        counts = run.finish()
    assert [line["access_number"] for line in run.lines()] == list(range(30))
    assert counts.telegrams == 30 and counts.invalid == 0


def test_count_reached_with_a_full_inbox_ends_promptly(mosquitto, monkeypatch):
    monkeypatch.setattr("sdr.cli_collect._INBOX_SIZE", 2)
    url = mosquitto.url("fullstop")
    run = _Run(url, out=_SlowStream(), window_s=0.05, gather_s=0.0, count=3)
    with MqttPublisher(url, receiver_id="gw", stats_interval_s=0) as pub:
        for access in range(40):
            pub.publish(make_record(access=access))
        assert pub.flush(WAIT_S)
    # paho's thread is waiting for room in the inbox when the count is reached
    run.thread.join(WAIT_S)
    assert not run.thread.is_alive()
    assert [line["access_number"] for line in run.lines()] == [0, 1, 2]
    assert run.result.telegrams == 3


def test_collect_command_end_to_end(mosquitto, capsys):
    url = mosquitto.url("cli")
    status: list[int] = []
    thread = threading.Thread(
        target=lambda: status.append(
            main(
                [
                    "collect",
                    "--mqtt",
                    url,
                    "--window",
                    "0.2",
                    "--count",
                    "1",
                    "--output",
                    "text",
                ]
            )
        ),
        daemon=True,
    )
    thread.start()
    with MqttPublisher(url, receiver_id="gw-cli", stats_interval_s=0) as pub:
        # The command subscribes at some point after it starts: publish until it exits.
        access = 0
        while thread.is_alive() and access < 200:
            pub.publish(make_record(access=access % 256, rssi=-55.0))
            access += 1
            thread.join(0.05)
    assert not thread.is_alive() and status == [0]
    out, err = capsys.readouterr()
    [line] = out.splitlines()
    assert " ABC 31415926 access " in line and line.endswith(
        "1 gateway(s): gw-cli -55.0 dBFS"
    )
    assert err.startswith("wmbus: collect: ") and "1 telegrams" in err


@pytest.mark.parametrize(
    ("url_kind", "expected"),
    [
        ("garbage", "wmbus: bad MQTT URL"),
        ("closed", "wmbus: cannot connect to MQTT broker 127.0.0.1"),
        ("bad-password", "refused the connection"),
    ],
)
def test_collect_command_errors_are_one_line(mosquitto, capsys, url_kind, expected):
    url = {
        "garbage": "mqtt//127.0.0.1/x",
        "closed": f"mqtt://127.0.0.1:{free_port()}/x",
        "bad-password": mosquitto.url("x", auth=f"{USER}:not-{PASSWORD}"),
    }[url_kind]
    assert main(["collect", "--mqtt", url]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert len(err.splitlines()) == 1 and expected in err
    assert "Traceback" not in err


def test_collect_command_bad_window_is_usage_error(capsys):
    with pytest.raises(SystemExit) as info:
        main(["collect", "--mqtt", "mqtt://h/x", "--window", "0"])
    assert info.value.code == 2
    assert "--window" in capsys.readouterr().err


def test_run_collect_raises_for_unreachable_broker(paho_mqtt):
    with pytest.raises(MqttError, match="cannot connect"):
        run_collect(
            parse_mqtt_url(f"mqtt://127.0.0.1:{free_port()}/x"),
            Collector(1.0),
            io.StringIO(),
            connect_timeout_s=2.0,
        )
