"""`wmbus replay --mqtt`: all telegrams of the bundled recording reach a real broker."""

from __future__ import annotations

import json
from pathlib import Path

from sdr.cli import main
from tests.mosquitto import (  # noqa: F401 (fixtures)
    Subscriber,
    mosquitto_fixture,
    paho_fixture,
)

RECORDINGS = Path(__file__).resolve().parents[2] / "recordings"


def test_replay_publishes_every_telegram(mosquitto, capsys):
    subscriber = Subscriber(mosquitto.port, "rp/#")
    try:
        status = main(
            [
                "replay",
                str(RECORDINGS / "multimode_868.95M_2400k.sigmf-meta"),
                "--keys",
                str(RECORDINGS / "keys.txt"),
                "--output",
                "jsonl",
                "--mqtt",
                mosquitto.url("rp"),
                "--mqtt-id",
                "gw-test",
            ]
        )
        out, err = capsys.readouterr()
        assert status == 0, err
        printed = [line for line in out.splitlines() if line.strip()]
        got = subscriber.wait_for(len(printed), "/2026")
    finally:
        subscriber.close()
    assert len(printed) == 10
    assert "10 published, 0 dropped" in err
    printed_telegrams = sorted(json.loads(line)["telegram"] for line in printed)
    assert sorted(m.payload["telegram"] for m in got) == printed_telegrams
    for message in got:
        payload = message.payload
        assert payload["receiver"] == "gw-test"
        assert message.topic == f"rp/{payload['manufacturer']}/{payload['id']}"
        assert payload["error"] is None
