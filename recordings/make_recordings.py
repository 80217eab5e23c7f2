"""Regenerate the bundled example data, deterministically, with our own transmitter side.

Writes, next to this script:

- ``keys.txt``: the made-up AES keys of the example meters (``ID KEYHEX`` per line);
- ``example_telegrams.txt``: one telegram per line as hex, in the CRC-less form receivers
  print (L counts the bytes after it).

Every meter, value and key here is invented; nothing is copied from other projects'
captures.  Run: ``.venv/bin/python recordings/make_recordings.py``.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from stack.encode import TelegramSpec, encode_telegram
from stack.records import make_record

HERE = Path(__file__).resolve().parent


def demo_key(meter_id: str) -> bytes:
    """A made-up, reproducible 16-byte key for an example meter."""
    return hashlib.sha256(f"wmbus-sdr demo key {meter_id}".encode()).digest()[:16]


def _water_meter() -> list[TelegramSpec]:
    """A cold-water meter, mode 5 (AES-CBC), current and month-end volume."""
    records = [
        make_record("volume", 1234.567, unit="m3"),
        make_record("date", "2026-10-31", storage=1),
        make_record("volume", 1198.004, unit="m3", storage=1),
        make_record("volume_flow", 0.012, unit="m3/h"),
        make_record("error_flags", 0),
    ]
    return [TelegramSpec(manufacturer="DME", meter_id="20261101", version=0x33,
                         device_type=0x16, access_number=0x21, security_mode=5,
                         key=demo_key("20261101"), records=records)]


def _heat_meter() -> list[TelegramSpec]:
    """A heat meter, OMS mode 7 (ELL I + AFL with AES-CMAC + AES-CBC)."""
    records = [
        make_record("energy", 8_765_000, unit="Wh"),
        make_record("volume", 321.45, unit="m3"),
        make_record("power", 4300, unit="W"),
        make_record("flow_temperature", 61.2, unit="°C"),
        make_record("return_temperature", 40.7, unit="°C"),
        make_record("date_time", "2026-11-24T08:15"),
    ]
    return [TelegramSpec(manufacturer="EFE", meter_id="20261102", version=0x01,
                         device_type=0x04, ell_ci=0x8C, ell_cc=0x20, afl_counter=4711,
                         access_number=0x5E, security_mode=7, key=demo_key("20261102"),
                         records=records)]


def _kamstrup_style_meter() -> list[TelegramSpec]:
    """A water meter with ELL AES-CTR: a full frame, then a compact frame of it."""
    full = [make_record("volume", 42.125, unit="m3"),
            make_record("volume", 40.5, unit="m3", storage=1),
            make_record("flow_temperature", 9, unit="°C", function="minimum")]
    later = [make_record("volume", 42.311, unit="m3"),
             make_record("volume", 40.5, unit="m3", storage=1),
             make_record("flow_temperature", 8, unit="°C", function="minimum")]
    common = dict(manufacturer="KAM", meter_id="20261103", version=0x1B, device_type=0x16,
                  ell_ci=0x8D, ell_cc=0x20, ell_encrypt=True, ci=0x78,
                  key=demo_key("20261103"))
    return [TelegramSpec(**common, ell_session=0x0001_2340, records=full),
            TelegramSpec(**common, ell_session=0x0001_2350, records=later, compact=True)]


def _heat_cost_allocator() -> list[TelegramSpec]:
    """A heat cost allocator sending in clear (mode 0)."""
    records = [make_record("hca_units", 317),
               make_record("date", "2026-09-30", storage=1),
               make_record("hca_units", 1290, storage=1),
               make_record("flow_temperature", 38.5, unit="°C")]
    return [TelegramSpec(manufacturer="QDS", meter_id="20261104", version=0x35,
                         device_type=0x08, access_number=0x07, records=records)]


def example_specs() -> list[TelegramSpec]:
    """All example telegrams, in a fixed order."""
    return (_water_meter() + _heat_meter() + _kamstrup_style_meter()
            + _heat_cost_allocator())


def write_text_examples() -> None:
    specs = example_specs()
    ids = sorted({spec.meter_id for spec in specs if spec.key is not None})
    keys = "".join(f"{meter_id} {demo_key(meter_id).hex().upper()}\n" for meter_id in ids)
    (HERE / "keys.txt").write_text(
        "# Made-up keys of the example meters (recordings/make_recordings.py)\n" + keys)
    lines = [encode_telegram(spec).hex() for spec in specs]
    (HERE / "example_telegrams.txt").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    write_text_examples()
