"""sdr.reception and sdr.pipeline with a stand-in receiver: CRC gate, decoding, counts.

The stand-in (``ScriptedReceiver``) hands over frames built with our own
``stack.frame.add_crcs`` from made-up telegrams or from the bundled recording's
annotations, when the stream reaches the frame's last sample; that is what the real
``dsp.receiver.Receiver`` promises, so the pipeline around it is tested on its own.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sdr.keys import load_keys
from sdr.pipeline import ReceivePipeline, run_pipeline
from sdr.reception import (
    OUTCOMES,
    PHYS,
    RxCounters,
    decode_frame,
    link_mode,
    parse_phys,
)
from sdr.source import TruncatedError
from sdr.source_file import FileSource
from stack.encode import encode_telegram
from stack.errors import (
    CrcError,
    DecryptionError,
    FrameError,
    KeyMissingError,
    UnsupportedError,
)
from stack.frame import add_crcs
from stack.security import KeyRing

RECORDINGS = Path(__file__).resolve().parents[2] / "recordings"
META = RECORDINGS / "multimode_868.95M_2400k.sigmf-meta"

# Made-up meters and keys (nothing here comes from a vector or a capture).
KEY_A = "00112233445566778899aabbccddeeff"
KEY_WRONG = "ffeeddccbbaa99887766554433221100"
RECORDS = bytes.fromhex("0c1378563412025ad200")  # volume 12345.678 m3, 21.0 °C


@dataclass(frozen=True, slots=True)
class FakeFrame:
    """Has the fields of ``dsp.receiver.RawFrame``."""

    data: bytes
    phy: str
    frame_format: str = "A"
    crc_ok: bool = True
    sample_index: int = 0
    time_s: float = 0.0
    channel_hz: float = 868.95e6
    freq_offset_hz: float = 0.0
    rssi_dbfs: float = -30.0
    snr_db: float = 20.0
    chip_errors: int = 0


class ScriptedReceiver:
    """Hands over each prepared frame once the stream has passed its last sample.

    Parameters
    ----------
    script : list of (last_sample, FakeFrame)
        Frames and the sample index at which each one is complete.
    """

    def __init__(
        self, script, sample_rate_hz, center_freq_hz, phys=None, emit_bad_crc=False
    ):
        self.script = sorted(script, key=lambda item: item[0])
        self.sample_rate_hz = sample_rate_hz
        self.center_freq_hz = center_freq_hz
        self.phys = phys
        self.emit_bad_crc = emit_bad_crc
        self.channels = [(p, 0.0) for p in (phys or PHYS)]
        self.n_fed = 0
        self.flushed = False

    def _take(self, limit):
        ready = [f for end, f in self.script if end < limit]
        self.script = [(end, f) for end, f in self.script if end >= limit]
        return [f for f in ready if f.crc_ok or self.emit_bad_crc]

    def feed(self, iq):
        self.n_fed += len(iq)
        return self._take(self.n_fed)

    def flush(self):
        self.flushed = True
        return self._take(float("inf"))


def scripted(script):
    """A receiver factory that records the receivers it made."""
    made = []

    def factory(sample_rate_hz, center_freq_hz, **options):
        receiver = ScriptedReceiver(script, sample_rate_hz, center_freq_hz, **options)
        made.append(receiver)
        return receiver

    factory.made = made
    return factory


def telegram(meter_id="31415926", access=42, **fields):
    """A made-up telegram (no-CRC form) of meter XYZ ``meter_id``."""
    fields.setdefault("payload", RECORDS)
    return encode_telegram(
        manufacturer="XYZ",
        meter_id=meter_id,
        version=1,
        device_type=7,
        access_number=access,
        **fields,
    )


def frame_for(data, phy="T", frame_format="A", **meta):
    return FakeFrame(add_crcs(data, frame_format), phy, frame_format, **meta)


def _phy_of(annotation) -> str:
    """Receiver chain that hears an annotated burst: by its carrier (reference 1.1)."""
    if abs(annotation.carrier_hz - 868.3e6) < 150e3:
        return "S"
    if abs(annotation.carrier_hz - 869.525e6) < 150e3:
        return "C2"
    return "T" if annotation.mode.startswith("T") else "C"


def script_from_annotations(annotations, rate):
    script = []
    for a in annotations:
        frame = FakeFrame(
            add_crcs(bytes.fromhex(a.telegram_hex), a.frame_format),
            _phy_of(a),
            a.frame_format,
            sample_index=a.sample_start,
            time_s=a.sample_start / rate,
            channel_hz=a.carrier_hz,
        )
        script.append((a.last_sample, frame))
    return script


# -- mode names and --modes --------------------------------------------------------


@pytest.mark.parametrize(
    ("phy", "c_field", "expected"),
    [
        ("S", 0x44, ("S1", "meter")),  # SND_NR from a meter on 868.3 MHz
        ("S", 0x46, ("S1", "meter")),  # SND_IR
        ("S", 0x53, ("T2", "other")),  # SND_UD to a meter: the T2 downlink
        ("S", 0x40, ("T2", "other")),  # SND_NKE
        ("T", 0x44, ("T1", "meter")),
        ("T", 0x7B, ("T1", "other")),  # REQ_UD2 heard on the T channel
        ("C", 0x08, ("C1", "meter")),  # RSP_UD comes from a meter
        ("C", 0x44, ("C1", "meter")),
        ("C2", 0x53, ("C2", "other")),
        ("C2", 0x44, ("C2", "meter")),
    ],
)
def test_link_mode(phy, c_field, expected):
    assert link_mode(phy, c_field) == expected


def test_link_mode_unknown_phy():
    with pytest.raises(ValueError, match="unknown receiver chain"):
        link_mode("X", 0x44)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (None, ("S", "T", "C", "C2")),
        ("", ("S", "T", "C", "C2")),
        ("S,T,C", ("S", "T", "C")),
        ("c2, t", ("T", "C2")),
        ("T,T", ("T",)),
        (["C", "S"], ("S", "C")),
    ],
)
def test_parse_phys(text, expected):
    assert parse_phys(text) == expected


@pytest.mark.parametrize("text", ["X", "S,T1", "S;T"])
def test_parse_phys_rejects_unknown(text):
    with pytest.raises(ValueError, match="use S, T, C and C2"):
        parse_phys(text)


# -- one frame -----------------------------------------------------------------------


@pytest.mark.parametrize("frame_format", ["A", "B"])
def test_decode_frame_good(frame_format):
    data = telegram()
    reception = decode_frame(frame_for(data, "C", frame_format))
    assert reception.crc_ok and reception.outcome == "decoded"
    assert reception.data == data
    assert (reception.mode, reception.direction) == ("C1", "meter")
    assert reception.error is None
    assert [r.value for r in reception.telegram.records] == [12345.678, 21.0]


@pytest.mark.parametrize("frame_format", ["A", "B"])
def test_decode_frame_bad_crc_keeps_bytes(frame_format):
    data = telegram()
    on_air = bytearray(add_crcs(data, frame_format))
    on_air[14] ^= 0x01  # a data byte of block 2 in either format
    frame = FakeFrame(bytes(on_air), "C", frame_format, crc_ok=False)
    reception = decode_frame(frame)
    assert reception.outcome == "crc_failed" and not reception.crc_ok
    assert isinstance(reception.error, CrcError)
    assert reception.telegram is None
    assert len(reception.data) == len(data)
    assert [i for i in range(len(data)) if reception.data[i] != data[i]] == [
        14 - 2 if frame_format == "A" else 14
    ]


def test_decode_frame_length_disagrees_with_l():
    on_air = add_crcs(telegram(), "A")[:-3]
    reception = decode_frame(FakeFrame(on_air, "T", crc_ok=False))
    assert reception.outcome == "crc_failed"
    assert isinstance(reception.error, FrameError)


@settings(max_examples=60, deadline=None)
@given(
    body=st.binary(min_size=11, max_size=240),
    frame_format=st.sampled_from("AB"),
    crc_byte=st.integers(0, 1000),
)
def test_bad_crc_frames_show_the_frame_without_crcs(body, frame_format, crc_byte):
    # Corrupting only a CRC byte must leave every data byte in ``data`` untouched.
    data = bytes([len(body) - 1]) + body[1:]
    on_air = bytearray(add_crcs(data, frame_format))
    crc_positions = [
        i for i in range(len(on_air)) if _is_crc_position(i, len(on_air), frame_format)
    ]
    on_air[crc_positions[crc_byte % len(crc_positions)]] ^= 0xFF
    reception = decode_frame(FakeFrame(bytes(on_air), "C", frame_format))
    assert reception.outcome == "crc_failed"
    assert reception.data == data


def _is_crc_position(index, size, frame_format):
    """Independent statement of the layouts (reference 2.2 and 2.3)."""
    if frame_format == "B":
        return index in (126, 127) or index >= size - 2
    if index < 12:
        return index >= 10
    return (index - 12) % 18 >= 16 or index >= size - 2


def test_decode_frame_outcomes_by_key():
    data = telegram(security_mode=5, key=KEY_A)
    frame = frame_for(data)
    assert decode_frame(frame).outcome == "no_key"
    assert isinstance(decode_frame(frame).error, KeyMissingError)
    good = decode_frame(frame, KeyRing.single(KEY_A))
    assert good.outcome == "decoded" and good.telegram.decrypted
    wrong = decode_frame(frame, KeyRing.single(KEY_WRONG))
    assert wrong.outcome == "decrypt_failed"
    assert isinstance(wrong.error, DecryptionError)


def test_decode_frame_unsupported_security_mode_is_not_for_us():
    data = bytearray(telegram())
    assert data[10] == 0x7A  # short TPL: CI ACC STS CFG(2)
    data[14] = 0x03  # CFG bits 12-8: security mode 3 (EN 13757-7), not ours
    reception = decode_frame(frame_for(bytes(data)))
    assert reception.crc_ok and reception.outcome == "not_for_us"
    assert isinstance(reception.error, UnsupportedError)


def test_decode_frame_rejects_unknown_frame_format():
    with pytest.raises(ValueError, match="frame format"):
        decode_frame(replace(frame_for(telegram()), frame_format="Z"))


# -- counters ------------------------------------------------------------------------


def test_counters_add_up_and_summarise():
    counters = RxCounters()
    for outcome in ("decoded", "decoded", "no_key", "crc_failed", "not_for_us"):
        counters.count(outcome)
    assert counters.as_dict() == {
        "frames": 5,
        "crc_failed": 1,
        "decoded": 2,
        "no_key": 1,
        "decrypt_failed": 0,
        "not_for_us": 1,
        "telegrams": 4,
    }
    assert counters.summary() == (
        "4 telegrams (2 decoded, 1 no key, 0 decrypt failed, 1 not for us), "
        "1 CRC failed"
    )
    assert RxCounters().summary().startswith("0 telegrams")
    with pytest.raises(ValueError, match="unknown outcome"):
        counters.count("lost")
    assert set(OUTCOMES) | {"frames", "telegrams"} == set(counters.as_dict())


# -- the pipeline over a stream ------------------------------------------------------


def _stream_script():
    """Full frame, compact frames, an encrypted one, a bad CRC, an S-chain frame."""
    full = telegram(access=1)
    compact = telegram(access=2, compact=True)
    secret = telegram(
        meter_id="27182818",
        access=3,
        security_mode=5,
        key=KEY_A,
        payload=bytes.fromhex("0c1301000000"),
    )
    bad = bytearray(add_crcs(telegram(access=4), "A"))
    bad[20] ^= 0x40
    return [
        (1_000, FakeFrame(add_crcs(compact, "A"), "T", sample_index=900)),
        (3_000, FakeFrame(add_crcs(full, "A"), "T", sample_index=2_000)),
        (5_000, FakeFrame(add_crcs(compact, "B"), "C", "B", sample_index=4_500)),
        (7_000, FakeFrame(add_crcs(secret, "A"), "T", sample_index=6_000)),
        (8_000, FakeFrame(bytes(bad), "T", crc_ok=False, sample_index=7_500)),
        (
            9_500,
            FakeFrame(add_crcs(full, "A"), "S", sample_index=9_000, channel_hz=868.3e6),
        ),
    ]


def _run(script, chunk, **options):
    factory = scripted(script)
    pipeline = ReceivePipeline(2.4e6, 868.95e6, receiver_factory=factory, **options)
    iq = np.zeros(10_000, dtype=np.complex64)
    out = []
    for start in range(0, iq.size, chunk):
        out += pipeline.feed(iq[start : start + chunk])
    out += pipeline.flush()
    return pipeline, factory.made[0], out


def test_pipeline_decodes_compact_after_full_and_counts():
    pipeline, receiver, out = _run(_stream_script(), 1_000, keys=KeyRing.single(KEY_A))
    assert receiver.emit_bad_crc is True  # always asked for, to be counted
    assert receiver.phys == list(PHYS)
    assert [r.frame.sample_index for r in out] == [900, 2_000, 4_500, 6_000, 9_000]
    first_compact, full, later_compact, secret, s_frame = out
    # Before any full frame the compact frame cannot be expanded ...
    assert first_compact.telegram.records == ()
    assert "undecodable" in first_compact.telegram.warnings[0]
    # ... after one it decodes to the same values, whatever the frame format.
    assert later_compact.telegram.records == full.telegram.records
    assert later_compact.mode == "C1" and later_compact.telegram.crc_format is None
    assert secret.telegram.decrypted and secret.outcome == "decoded"
    assert (s_frame.mode, s_frame.direction) == ("S1", "meter")
    assert pipeline.counters.as_dict() == {
        "frames": 6,
        "crc_failed": 1,
        "decoded": 5,
        "no_key": 0,
        "decrypt_failed": 0,
        "not_for_us": 0,
        "telegrams": 5,
    }


def test_pipeline_all_returns_bad_crc_frames():
    _, _, out = _run(_stream_script(), 1_000, emit_bad_crc=True)
    bad = [r for r in out if not r.crc_ok]
    assert [r.frame.sample_index for r in bad] == [7_500]
    assert bad[0].outcome == "crc_failed"


def test_pipeline_without_keys_counts_no_key():
    pipeline, _, out = _run(_stream_script(), 1_000)
    assert pipeline.counters.no_key == 1 and pipeline.counters.decoded == 4
    assert [r.outcome for r in out if r.telegram.encrypted] == ["no_key"]


def test_pipeline_mode_filter():
    pipeline, receiver, out = _run(_stream_script(), 1_000, phys=("T",))
    assert receiver.phys == ["T"]
    # The stand-in ignores phys, like a receiver whose chain covers T and C at
    # once: the pipeline drops (and does not count) the frames of other chains.
    assert {r.frame.phy for r in out} == {"T"}
    assert pipeline.counters.frames == 4


@pytest.mark.parametrize("chunk", [1, 777, 4_096, 10_000])
def test_pipeline_output_independent_of_chunk_size(chunk):
    _, _, whole = _run(_stream_script(), 10_000, emit_bad_crc=True)
    _, _, chunked = _run(_stream_script(), chunk, emit_bad_crc=True)
    assert [_view(r) for r in chunked] == [_view(r) for r in whole]
    assert len(whole) == 6


def _view(reception):
    # Exceptions compare by identity, so compare what they say.
    records = reception.telegram.records if reception.telegram else None
    return (
        reception.frame,
        reception.mode,
        reception.data,
        reception.outcome,
        str(reception.error),
        records,
    )


# -- run_pipeline with real file sources ---------------------------------------------


def test_run_pipeline_on_the_bundled_recording():
    keys = load_keys(RECORDINGS / "keys.txt")
    with FileSource(META) as source:
        annotations = source.annotations
        factory = scripted(script_from_annotations(annotations, source.sample_rate_hz))
        pipeline = ReceivePipeline(
            source.sample_rate_hz,
            source.center_freq_hz,
            keys=keys,
            receiver_factory=factory,
        )
        out = []
        counters = run_pipeline(source, pipeline, out.append)
    expected_modes = {"S1-m": "S1"}
    assert len(out) == len(annotations) == counters.decoded
    # Frames come out as they end; the long-preamble S1 burst ends last of its peers.
    out.sort(key=lambda r: r.frame.sample_index)
    for annotation, reception in zip(annotations, out, strict=True):
        assert reception.mode == expected_modes.get(annotation.mode, annotation.mode)
        assert reception.data.hex() == annotation.telegram_hex
        assert reception.outcome == "decoded"
    assert any(r.telegram.decrypted for r in out)
    assert {r.mode for r in out} >= {"S1", "T1", "C1", "T2", "C2"}


def test_run_pipeline_truncated_file_emits_then_raises(tmp_path):
    path = tmp_path / "cut_868.95M_2400k.cu8"
    path.write_bytes(bytes([128]) * 20_001)  # 10 000 samples and half of one more
    script = [
        (4_000, frame_for(telegram(access=1))),
        (9_999, frame_for(telegram(access=2))),
    ]
    factory = scripted(script)
    out = []
    progress = []
    with FileSource(path, chunk_samples=3_000) as source:
        pipeline = ReceivePipeline(
            source.sample_rate_hz, source.center_freq_hz, receiver_factory=factory
        )
        with pytest.raises(TruncatedError, match="1 byte"):
            run_pipeline(source, pipeline, out.append, progress.append)
    assert [r.telegram.access_number for r in out] == [1, 2]
    assert factory.made[0].flushed and factory.made[0].n_fed == 10_000
    assert progress == [3_000, 6_000, 9_000, 10_000]
