"""Regenerate the bundled example data, deterministically, with our own transmitter.

Writes into a folder (default: next to this script):

- ``keys.txt``: the made-up AES keys of the example meters (``ID KEYHEX`` per line);
- ``example_telegrams.txt``: telegrams as hex, in the CRC-less form receivers print;
- ``multimode_868.95M_2400k.sigmf-meta`` / ``.sigmf-data``: 2.4 MS/s complex baseband
  (8-bit, cu8) centred on 868.95 MHz, so 868.3 MHz (S, T2 downlink), 868.95 MHz (T, C)
  and 869.525 MHz (C2 downlink) all fit; one SigMF annotation per telegram (mode, frame
  format, first and last sample, carrier, telegram hex) is the ground truth.

Every meter, value and key here is invented; nothing is copied from other projects'
captures.  The same script and library versions give the same bytes.

Run: ``.venv/bin/python recordings/make_recordings.py [OUTDIR]``.
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

from sdr.sink_file import FileSink
from sdr.transmit import TxFrame, render
from stack.encode import TelegramSpec, encode_telegram
from stack.records import make_record

HERE = Path(__file__).resolve().parent
SAMPLE_RATE_HZ = 2_400_000.0
CENTER_FREQ_HZ = 868_950_000.0
EBN0_DB = 32.0  # of a 0 dB telegram at the first telegram's (S1) bit rate
# Level of a 0 dB telegram in the 8-bit file: leaves headroom for noise and for two
# overlapping telegrams, as a dongle with sensible gain would (no clipping).
FULL_SCALE_FRACTION = 0.35
NOISE_SEED = 20261124
IQ_NAME = "multimode_868.95M_2400k.sigmf-meta"


def demo_key(meter_id: str) -> bytes:
    """A made-up, reproducible 16-byte key for an example meter."""
    return hashlib.sha256(f"wmbus-sdr demo key {meter_id}".encode()).digest()[:16]


def water_meter(access_number: int = 0x21) -> TelegramSpec:
    """A cold-water meter, mode 5 (AES-CBC), current and month-end volume."""
    records = [
        make_record("volume", 1234.567, unit="m3"),
        make_record("date", "2026-10-31", storage=1),
        make_record("volume", 1198.004, unit="m3", storage=1),
        make_record("volume_flow", 0.012, unit="m3/h"),
        make_record("error_flags", 0),
    ]
    return TelegramSpec(
        manufacturer="DME",
        meter_id="20261101",
        version=0x33,
        device_type=0x16,
        access_number=access_number,
        security_mode=5,
        key=demo_key("20261101"),
        records=records,
    )


def heat_meter() -> TelegramSpec:
    """A heat meter, OMS mode 7 (ELL I + AFL with AES-CMAC + AES-CBC)."""
    records = [
        make_record("energy", 8_765_000, unit="Wh"),
        make_record("volume", 321.45, unit="m3"),
        make_record("power", 4300, unit="W"),
        make_record("flow_temperature", 61.2, unit="°C"),
        make_record("return_temperature", 40.7, unit="°C"),
        make_record("date_time", "2026-11-24T08:15"),
    ]
    return TelegramSpec(
        manufacturer="EFE",
        meter_id="20261102",
        version=0x01,
        device_type=0x04,
        ell_ci=0x8C,
        ell_cc=0x20,
        afl_counter=4711,
        access_number=0x5E,
        security_mode=7,
        key=demo_key("20261102"),
        records=records,
    )


def kamstrup_style_meter(compact: bool) -> TelegramSpec:
    """A water meter with ELL AES-CTR; a full frame, or a later compact frame of it."""
    volume = 42.311 if compact else 42.125
    records = [
        make_record("volume", volume, unit="m3"),
        make_record("volume", 40.5, unit="m3", storage=1),
        make_record(
            "flow_temperature", 8 if compact else 9, unit="°C", function="minimum"
        ),
    ]
    return TelegramSpec(
        manufacturer="KAM",
        meter_id="20261103",
        version=0x1B,
        device_type=0x16,
        ell_ci=0x8D,
        ell_cc=0x20,
        ell_encrypt=True,
        ci=0x78,
        key=demo_key("20261103"),
        records=records,
        ell_session=0x0001_2350 if compact else 0x0001_2340,
        compact=compact,
    )


def heat_cost_allocator() -> TelegramSpec:
    """A heat cost allocator sending in clear (mode 0)."""
    records = [
        make_record("hca_units", 317),
        make_record("date", "2026-09-30", storage=1),
        make_record("hca_units", 1290, storage=1),
        make_record("flow_temperature", 38.5, unit="°C"),
    ]
    return TelegramSpec(
        manufacturer="QDS",
        meter_id="20261104",
        version=0x35,
        device_type=0x08,
        access_number=0x07,
        records=records,
    )


def electricity_meter() -> TelegramSpec:
    """An electricity meter with a long frame (L > 127: three blocks in format B)."""
    records = [
        make_record(
            "energy", 1_000_000 + 1111 * n, unit="Wh", tariff=n % 3, storage=n // 3
        )
        for n in range(12)
    ]
    records += [
        make_record("power", 2310, unit="W"),
        make_record("voltage", 231.4, unit="V"),
        make_record("current", 9.87, unit="A"),
        make_record("date_time", "2026-11-24T08:00"),
    ]
    return TelegramSpec(
        manufacturer="ESY",
        meter_id="20261105",
        version=0x11,
        device_type=0x02,
        access_number=0xA0,
        ci=0x72,
        tpl_address=("ESY", "20261105", 0x11, 0x02),
        records=records,
    )


def downlink_command() -> TelegramSpec:
    """Other -> meter: SND_UD setting the meter's clock (CI 0x5A, short header)."""
    return TelegramSpec(
        manufacturer="EFE",
        meter_id="20261102",
        version=0x01,
        device_type=0x04,
        c_field=0x53,
        ci=0x5A,
        access_number=0x5F,
        records=[make_record("date_time", "2026-11-24T08:16")],
    )


def downlink_request() -> TelegramSpec:
    """Other -> meter: REQ_UD2, link layer only (a gateway asking for data)."""
    return TelegramSpec(
        manufacturer="KAM",
        meter_id="20261103",
        version=0x1B,
        device_type=0x16,
        c_field=0x5B,
        ci=0x8A,
        access_number=0x33,
    )


def example_specs() -> list[TelegramSpec]:
    """The telegrams of example_telegrams.txt, in a fixed order."""
    return [
        water_meter(),
        heat_meter(),
        kamstrup_style_meter(False),
        kamstrup_style_meter(True),
        heat_cost_allocator(),
    ]


def _frame(
    spec: TelegramSpec,
    mode: str,
    fmt: str = "A",
    direction: str = "meter",
    offset_khz: float = 0.0,
    gain_db: float = 0.0,
    gap_s: float | None = None,
) -> TxFrame:
    return TxFrame(
        encode_telegram(spec),
        mode,
        fmt,
        direction,
        carrier_offset_hz=offset_khz * 1e3,
        gain_db=gain_db,
        gap_s=gap_s,
    )


def multimode_frames() -> list[TxFrame]:
    """Every mode and direction, several meters, tens of kHz offsets, mixed levels."""
    return [
        _frame(water_meter(0x21), "S1", offset_khz=-18.0, gain_db=-4.0),
        # starts while the S1 telegram (45 ms long) is still on air, on another channel
        _frame(heat_meter(), "T1", offset_khz=24.0, gain_db=0.0, gap_s=-0.030),
        _frame(heat_cost_allocator(), "T1", offset_khz=-11.0, gain_db=-12.0),
        _frame(kamstrup_style_meter(False), "C1", "A", offset_khz=31.0, gain_db=-6.0),
        _frame(kamstrup_style_meter(True), "C1", "B", offset_khz=-9.0, gain_db=-2.0),
        _frame(electricity_meter(), "C1", "B", offset_khz=15.0, gain_db=-8.0),
        _frame(water_meter(0x22), "S1-m", offset_khz=-35.0, gain_db=-10.0),
        _frame(downlink_command(), "T2", "A", "other", offset_khz=6.0, gain_db=-3.0),
        _frame(downlink_request(), "C2", "A", "other", offset_khz=-4.0, gain_db=-5.0),
        # overlaps the C2 downlink (869.525 MHz) in time, on 868.95 MHz
        _frame(heat_meter(), "T1", offset_khz=-42.0, gain_db=-15.0, gap_s=-0.004),
    ]


def write_keys(out_dir: Path) -> None:
    ids = ("20261101", "20261102", "20261103")
    keys = "".join(
        f"{meter_id} {demo_key(meter_id).hex().upper()}\n" for meter_id in ids
    )
    (out_dir / "keys.txt").write_text(
        "# Made-up keys of the example meters (recordings/make_recordings.py)\n" + keys
    )


def write_text_examples(out_dir: Path) -> None:
    lines = [encode_telegram(spec).hex() for spec in example_specs()]
    (out_dir / "example_telegrams.txt").write_text("\n".join(lines) + "\n")


def write_multimode(out_dir: Path) -> Path:
    iq, annotations = render(
        multimode_frames(),
        sample_rate_hz=SAMPLE_RATE_HZ,
        center_freq_hz=CENTER_FREQ_HZ,
        gap_s=0.006,
        lead_s=0.01,
        tail_s=0.01,
        ebn0_db=EBN0_DB,
        seed=NOISE_SEED,
    )
    path = out_dir / IQ_NAME
    with FileSink(
        path,
        sample_rate_hz=SAMPLE_RATE_HZ,
        center_freq_hz=CENTER_FREQ_HZ,
        file_format="sigmf",
        sample_format="cu8",
        description="wmbus-sdr example: S1, S1-m, T1, C1 A/B, T2 and C2 "
        "downlink, made by recordings/make_recordings.py",
    ) as sink:
        sink.write(iq * FULL_SCALE_FRACTION)
        for annotation in annotations:
            sink.annotate(annotation)
    return path


def main(argv: list[str]) -> int:
    out_dir = Path(argv[0]) if argv else HERE
    out_dir.mkdir(parents=True, exist_ok=True)
    write_keys(out_dir)
    write_text_examples(out_dir)
    write_multimode(out_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
