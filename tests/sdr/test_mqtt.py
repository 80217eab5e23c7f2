"""MQTT publishing: URL parsing, topics, and a publisher against a real Mosquitto.

Broker tests use tests/mosquitto.py (loopback only, bounded waits).  Telegram records
are built with our own encoder from made-up meter fields, plus made-up radio metadata.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from urllib.parse import quote

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sdr.meterspec import parse_meter_fields
from sdr.mqtt import (
    MqttError,
    MqttUrl,
    MqttUrlError,
    add_mqtt_arguments,
    build_message,
    check_receiver_id,
    default_receiver_id,
    parse_mqtt_url,
    telegram_topic,
    topic_level,
    utc_iso,
)
from sdr.mqtt_publish import MqttPublisher, publisher_from_args
from stack.encode import encode_telegram
from stack.errors import WmbusError
from stack.telegram import decode_telegram
from tests.mosquitto import (  # noqa: F401 (fixtures)
    PASSWORD,
    USER,
    Subscriber,
    free_port,
    mosquitto_fixture,
    own_mosquitto_fixture,
    paho_fixture,
    wait_until,
)

FAST = {"reconnect_min_s": 0.05, "reconnect_max_s": 0.2, "connect_timeout_s": 3.0}


def make_record(meter_id: str = "31415926", access: int = 7, rssi: float = -50.5):
    """A reception record as `wmbus replay --output jsonl` writes it (made-up radio)."""
    fields = f"id={meter_id},man=ABC,type=water,acc={access},volume=12.345m3"
    telegram = decode_telegram(encode_telegram(parse_meter_fields(fields)), None)
    record = {
        "time_s": 1.25,
        "sample": 3_000_000,
        "mode": "T1",
        "frame_format": "A",
        "channel_hz": 868.95e6,
        "cfo_hz": 1200.0,
        "rssi_dbfs": rssi,
        "snr_db": 21.5,
        "crc_ok": True,
    }
    record.update(telegram.to_dict())
    return record


# -- URLs --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("mqtt://localhost/wmbus", MqttUrl("localhost", 1883, "wmbus")),
        ("mqtt://broker:1884/a/b", MqttUrl("broker", 1884, "a/b")),
        ("mqtts://broker", MqttUrl("broker", 8883, "wmbus", tls=True)),
        ("MQTT://Broker.LAN:1/x/", MqttUrl("broker.lan", 1, "x")),
        ("mqtt://u:p@h/x", MqttUrl("h", 1883, "x", "u", "p")),
        ("mqtt://u@h:2/x", MqttUrl("h", 2, "x", "u", None)),
        (
            "mqtt://a%40b:p%23w%2Fd@[::1]:2000/pre",
            MqttUrl("::1", 2000, "pre", "a@b", "p#w/d"),
        ),
        ("mqtt://h/sp%20ace", MqttUrl("h", 1883, "sp ace")),
    ],
)
def test_parse_good_urls(text, expected):
    assert parse_mqtt_url(text) == expected


@pytest.mark.parametrize(
    ("text", "what"),
    [
        ("", "empty"),
        ("localhost:1883/wmbus", "must start with mqtt://"),
        ("http://h/x", "unknown scheme http://"),
        ("mqtt:///x", "no valid host"),
        ("mqtt://ho st/x", "no valid host"),
        ("mqtt://h:99999/x", "port must be a number"),
        ("mqtt://h:abc/x", "port must be a number"),
        ("mqtt://h:0/x", "port must be a number"),
        ("mqtt://h/a/+/b", "must not contain + or #"),
        ("mqtt://h/a//b", "empty level"),
        ("mqtt://h/$SYS", "reserved"),
        ("mqtt://:hunter2@h/x", "password needs a user"),
        ("mqtt://u:hun#ter2@h/x", "'?' and '#'"),
        ("mqtt://h/x?retain=1", "'?' and '#'"),
    ],
)
def test_parse_bad_urls_one_clear_line(text, what):
    with pytest.raises(MqttUrlError) as info:
        parse_mqtt_url(text)
    message = str(info.value)
    assert what in message
    assert "example: mqtt://" in message
    assert "\n" not in message
    assert "hunter2" not in message and "ter2" not in message  # passwords never echoed
    assert isinstance(info.value, WmbusError) and isinstance(info.value, ValueError)


def test_url_text_hides_password():
    url = parse_mqtt_url("mqtt://gw:topsecret@h:1/x")
    assert str(url) == "mqtt://gw:***@h:1/x"
    assert "topsecret" not in repr(str(url))


_LEVEL = st.text(
    st.characters(blacklist_characters="+#/\0$", blacklist_categories=("Cs",)),
    min_size=1,
    max_size=8,
)


@settings(max_examples=80, deadline=None)
@given(
    user=st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=10),
    password=st.text(st.characters(blacklist_categories=("Cs",)), max_size=10),
    port=st.integers(1, 65535),
    levels=st.lists(_LEVEL, min_size=1, max_size=3),
)
def test_url_round_trip(user, password, port, levels):
    prefix = "/".join(levels)
    text = (
        f"mqtt://{quote(user, safe='')}:{quote(password, safe='')}@gw.example:{port}/"
        + "/".join(quote(level, safe="") for level in levels)
    )
    url = parse_mqtt_url(text)
    assert (url.username, url.password, url.port, url.prefix) == (
        user,
        password,
        port,
        prefix,
    )


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=40) | st.text(max_size=30).map(lambda t: "mqtt://" + t))
def test_any_text_parses_or_raises_url_error(text):
    try:
        url = parse_mqtt_url(text)
    except MqttUrlError:
        return
    assert url.host and 1 <= url.port <= 65535 and url.prefix


# -- topics, ids, messages ---------------------------------------------------------


def test_topics_never_contain_wildcards():
    assert topic_level("a/b+c#d") == "a_b_c_d"
    assert topic_level(None) == topic_level("") == "_unknown"
    assert telegram_topic("p/q", {"manufacturer": "ABC", "id": "01020304"}) == (
        "p/q/ABC/01020304"
    )
    assert telegram_topic("p", {}) == "p/_unknown/_unknown"


def test_default_receiver_id_is_stable_and_a_topic_level():
    first = default_receiver_id()
    assert first == default_receiver_id()
    assert check_receiver_id(first) == first
    suffix = first.rsplit("-", 1)[1]
    assert len(suffix) == 6 and int(suffix, 16) >= 0


@pytest.mark.parametrize("bad", ["", "a/b", "x+", "#"])
def test_receiver_id_must_be_a_topic_level(bad):
    with pytest.raises(MqttError, match="receiver id"):
        check_receiver_id(bad)


def test_message_adds_receiver_and_time_without_touching_record():
    record = make_record()
    before = json.dumps(record)
    message = build_message(record, "attic", 86_400.0 + 1.2345)
    assert json.dumps(record) == before
    assert message == {
        **record,
        "receiver": "attic",
        "received_at": message["received_at"],
    }
    assert message["received_at"] == "1970-01-02T00:00:01.234Z"
    assert utc_iso(0.0) == "1970-01-01T00:00:00.000Z"


def test_bad_publisher_settings():
    with pytest.raises(MqttError):
        MqttPublisher("mqtt://h/x", receiver_id="a/b")
    with pytest.raises(MqttError, match="qos"):
        MqttPublisher("mqtt://h/x", receiver_id="a", qos=2)
    with pytest.raises(MqttUrlError):
        MqttPublisher("mqtt://h:0/x")


# -- against the broker --------------------------------------------------------------


def test_publish_subscribe_round_trip(mosquitto):
    subscriber = Subscriber(mosquitto.port, "rt/#")
    record = make_record()
    record["snr_db"] = math.nan  # no estimate: must arrive as null, JSON has no NaN
    try:
        with MqttPublisher(
            mosquitto.url("rt"), receiver_id="gw-roof", stats_interval_s=0
        ) as publisher:
            assert publisher.publish(record, wall_time_s=1_700_000_000.5)
            assert publisher.flush(5.0)
            assert publisher.counts.published == 1
        got = subscriber.wait_for(1, "/ABC/")
    finally:
        subscriber.close()
    assert [m.topic for m in got] == ["rt/ABC/31415926"]
    expected = {
        **record,
        "snr_db": None,
        "receiver": "gw-roof",
        "received_at": "2023-11-14T22:13:20.500Z",
    }
    assert got[0].payload == expected
    assert got[0].payload["records"][0]["value"] == 12.345
    assert not got[0].retain


def test_status_online_then_offline(mosquitto):
    subscriber = Subscriber(mosquitto.port, "st/_status/#")
    try:
        with MqttPublisher(mosquitto.url("st"), receiver_id="gw1", stats_interval_s=0):
            online = subscriber.wait_for(1)
        offline = subscriber.wait_for(2)
    finally:
        subscriber.close()
    assert online[0].topic == "st/_status/gw1"
    assert online[0].payload == {"receiver": "gw1", "online": True}
    assert offline[1].payload == {"receiver": "gw1", "online": False}


def test_retained_last_value_per_meter(mosquitto):
    url = mosquitto.url("ret")
    with MqttPublisher(url, receiver_id="gw1", retain=True, stats_interval_s=0) as pub:
        for access in (1, 2, 3):
            pub.publish(make_record(access=access))
        pub.publish(make_record(meter_id="27182818", access=9))
        assert pub.flush(5.0)
    with MqttPublisher(url, receiver_id="gw2", stats_interval_s=0) as pub:
        pub.publish(make_record(meter_id="11111111"))  # not retained
        assert pub.flush(5.0)
    late = Subscriber(mosquitto.port, "ret/ABC/+")  # subscribes after all was sent
    try:
        got = late.sync("ret/ABC/marker")
    finally:
        late.close()
    assert sorted((m.topic, m.payload["access_number"], m.retain) for m in got) == [
        ("ret/ABC/27182818", 9, True),
        ("ret/ABC/31415926", 3, True),
    ]


def test_statistics_published_periodically(mosquitto):
    subscriber = Subscriber(mosquitto.port, "sx/_stats/#")
    samples = iter(range(0, 10**9, 240_000))
    try:
        with MqttPublisher(
            mosquitto.url("sx"),
            receiver_id="gw-stats",
            stats_interval_s=0.05,
            stats_source=lambda: {"samples": next(samples), "frames": 4},
        ) as publisher:
            publisher.publish(make_record())
            got = subscriber.wait_for(3)
    finally:
        subscriber.close()
    assert {m.topic for m in got} == {"sx/_stats/gw-stats"}
    last = got[-1].payload
    assert last["receiver"] == "gw-stats" and last["frames"] == 4
    assert last["samples_per_s"] > 0
    assert set(last["mqtt"]) == {
        "published",
        "dropped",
        "queued",
        "in_flight",
        "reconnects",
        "connected",
    }
    assert last["mqtt"]["dropped"] == 0


def test_credentials(mosquitto):
    good = mosquitto.url("auth", auth=f"{USER}:{PASSWORD}")
    with MqttPublisher(good, receiver_id="gw-auth", stats_interval_s=0) as pub:
        pub.publish(make_record())
        assert pub.flush(5.0) and pub.counts.published == 1
    for auth in (f"{USER}:wrong", f"nobody:{PASSWORD}"):
        with pytest.raises(MqttError) as info:
            MqttPublisher(mosquitto.url("auth", auth=auth), **FAST).start()
        message = str(info.value)
        assert (
            "refused the connection" in message and "user name and password" in message
        )
        assert "\n" not in message
        assert "wrong" not in message and PASSWORD not in message


def test_anonymous_on_protected_listener_is_refused(mosquitto):
    url = f"mqtt://127.0.0.1:{mosquitto.auth_port}/x"
    with pytest.raises(MqttError, match="refused the connection"):
        MqttPublisher(url, **FAST).start()


def test_unreachable_broker_fails_fast(paho_mqtt):
    url = f"mqtt://127.0.0.1:{free_port()}/x"
    started = time.monotonic()
    with pytest.raises(MqttError, match="cannot connect to MQTT broker 127.0.0.1"):
        MqttPublisher(url, **FAST).start()
    assert time.monotonic() - started < 3.0
    with pytest.raises(MqttError, match="cannot connect"):
        MqttPublisher("mqtt://no-such-host.invalid/x", **FAST).start()


def test_full_queue_drops_oldest_and_counts(mosquitto):
    publisher = MqttPublisher(
        mosquitto.url("dq"),
        receiver_id="gw",
        retain=True,
        queue_size=3,
        stats_interval_s=0,
    )
    results = [publisher.publish(make_record(meter_id=f"{n:08d}")) for n in range(10)]
    assert results == [True] * 3 + [False] * 7
    counts = publisher.counts
    assert (counts.dropped, counts.queued, counts.published) == (7, 3, 0)
    with publisher:  # starts only now: the three kept are sent
        assert publisher.flush(5.0)
    late = Subscriber(mosquitto.port, "dq/ABC/+")
    try:
        got = late.sync("dq/ABC/marker")
    finally:
        late.close()
    assert sorted(m.topic for m in got) == [f"dq/ABC/{n:08d}" for n in (7, 8, 9)]
    assert publisher.counts.published == 3 and publisher.counts.dropped == 7
    assert not publisher.publish(make_record())  # closed: dropped, counted
    assert publisher.counts.dropped == 8


def test_broker_away_publish_never_blocks_then_reconnects(own_mosquitto):
    broker = own_mosquitto
    publisher = MqttPublisher(
        broker.url("away"),
        receiver_id="gw",
        retain=True,
        queue_size=20,
        stats_interval_s=0,
        **FAST,
    ).start()
    try:
        broker.stop()
        assert wait_until(lambda: not publisher.counts.connected)
        started = time.monotonic()
        for n in range(50):
            publisher.publish(make_record(meter_id=f"{n:08d}"))
        assert time.monotonic() - started < 1.0  # 50 calls; a blocking one takes 3 s
        counts = publisher.counts
        assert (counts.dropped, counts.queued, counts.published) == (30, 20, 0)
        broker.start()
        assert wait_until(lambda: publisher.counts.reconnects == 1)
        assert publisher.flush(5.0)
        assert publisher.counts.published == 20
    finally:
        publisher.close()
    late = Subscriber(broker.port, "away/ABC/+")
    try:
        got = late.sync("away/ABC/marker")
    finally:
        late.close()
    assert sorted(m.topic for m in got) == [f"away/ABC/{n:08d}" for n in range(30, 50)]


def test_slow_subscriber_does_not_slow_the_publisher(mosquitto):
    slow = Subscriber(mosquitto.port, "slow/#", delay_s=0.004)
    try:
        with MqttPublisher(
            mosquitto.url("slow"), receiver_id="gw", stats_interval_s=0
        ) as pub:
            started = time.monotonic()
            for access in range(100):
                pub.publish(make_record(access=access))
            assert time.monotonic() - started < 1.0
            assert pub.flush(5.0)
            assert (pub.counts.published, pub.counts.dropped) == (100, 0)
        got = slow.wait_for(100, "/ABC/")
    finally:
        slow.close()
    assert [m.payload["access_number"] for m in got] == list(range(100))


def test_qos0_publishes_too(mosquitto):
    subscriber = Subscriber(mosquitto.port, "q0/ABC/#")
    try:
        with MqttPublisher(
            mosquitto.url("q0"), receiver_id="gw", qos=0, stats_interval_s=0
        ) as pub:
            for access in range(5):
                pub.publish(make_record(access=access))
            assert pub.flush(5.0)
        got = subscriber.wait_for(5)
    finally:
        subscriber.close()
    assert [m.payload["access_number"] for m in got] == list(range(5))


def _options(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_mqtt_arguments(parser)
    return parser.parse_args(argv)


def test_command_line_options(mosquitto):
    assert publisher_from_args(_options()) is None  # no --mqtt: no publisher
    args = _options(
        "--mqtt", mosquitto.url("opt"), "--mqtt-id", "roof", "--mqtt-retain",
        "--mqtt-qos", "0", "--mqtt-stats", "0", "--mqtt-queue", "7",
    )  # fmt: skip
    publisher = publisher_from_args(args, stats_source=lambda: {"frames": 1})
    try:
        assert publisher.receiver_id == "roof"
        assert (publisher.retain, publisher.qos) == (True, 0)
        assert publisher.url.prefix == "opt" and publisher.counts.connected
    finally:
        publisher.close()
    for bad in (("--mqtt-queue", "0"), ("--mqtt-stats", "-1"), ("--mqtt-id", "a/b")):
        with pytest.raises(MqttError):
            publisher_from_args(_options("--mqtt", mosquitto.url("opt"), *bad))
