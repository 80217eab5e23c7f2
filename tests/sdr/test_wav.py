"""WAV (SDR++, SDR#, HDSDR, SDR Console, SDRuno) and gqrx recordings: read and decode.

Truth is the bundled multi-mode recording (cu8 SigMF, made by our transmitter): each
WAV here holds the same samples, written as the applications write them and named
as they name them, and ``wmbus replay`` must find the same telegrams in it.  The
16-bit files are written with the stdlib ``wave`` module; the rest (8-bit, float,
EXTENSIBLE, RF64, auxi chunks, unfinished headers) by the small writer below.
"""

from __future__ import annotations

import io
import json
import logging
import shutil
import struct
import wave
from pathlib import Path

import numpy as np
import pytest

from dsp.convert import bytes_to_iq
from sdr.cli import build_parser, main
from sdr.cli_replay import replay
from sdr.filename import file_format_from_path, parse_filename
from sdr.source_file import FileSource
from sdr.wav_meta import read_wav_meta
from stack.errors import SourceError

RECORDINGS = Path(__file__).resolve().parents[2] / "recordings"
META = RECORDINGS / "multimode_868.95M_2400k.sigmf-meta"
DATA = RECORDINGS / "multimode_868.95M_2400k.sigmf-data"
RATE_HZ = 2_400_000
CENTRE_HZ = 868_950_000

# Names as the applications write them (one made-up recording time for all).
SDRPP = "baseband_868950000Hz_14-30-12_24-11-2026.wav"
SDRSHARP = "SDRSharp_20261124_143012Z_868950000Hz_IQ.wav"
HDSDR = "HDSDR_20261124_143012Z_868950kHz_RF.wav"
SDRCONSOLE = "24-Nov-2026 143012.123 868.950MHz.wav"
SDRUNO = "SDRuno_20261124_143012_868950kHz.wav"
GQRX = "gqrx_20261124_143012_868950000_2400000_fc.raw"

# Format tags (Microsoft mmreg.h) and the KSDATAFORMAT_SUBTYPE GUID tail.
PCM, FLOAT, ALAW, EXTENSIBLE = 0x0001, 0x0003, 0x0006, 0xFFFE
GUID_TAIL = bytes.fromhex("0000 1000 8000 00aa00389b71")


# -- the recording's samples in each WAV encoding -------------------------------------


def _cu8() -> bytes:
    return DATA.read_bytes()


def _as_pcm16(cu8: bytes) -> bytes:
    """(b - 127.5) * 256 exactly: the cu8 samples scaled, nothing else changed."""
    values = np.frombuffer(cu8, dtype=np.uint8).astype(np.int32)
    return ((2 * values - 255) * 128).astype("<i2").tobytes()


def _as_float32(cu8: bytes) -> bytes:
    """The very floats our cu8 reader makes of these bytes."""
    return bytes_to_iq(cu8, "cu8").view(np.float32).astype("<f4").tobytes()


_ENCODED = {8: lambda b: b, 16: _as_pcm16, 32: _as_float32}


# -- a small RIFF writer --------------------------------------------------------------


def _chunk(chunk_id: bytes, payload: bytes, size: int | None = None) -> bytes:
    declared = len(payload) if size is None else size
    pad = b"\0" if len(payload) % 2 else b""
    return chunk_id + struct.pack("<I", declared) + payload + pad


def _fmt(tag: int, bits: int, channels: int = 2) -> bytes:
    """WAVEFORMAT: tag, channels, rate, bytes/s, block align, bits per sample."""
    block = channels * bits // 8
    return struct.pack("<HHIIHH", tag, channels, RATE_HZ, RATE_HZ * block, block, bits)


def _fmt_extensible(real_tag: int, bits: int, guid_tail: bytes = GUID_TAIL) -> bytes:
    """WAVEFORMATEXTENSIBLE: cbSize 22, valid bits, channel mask, SubFormat GUID."""
    extension = struct.pack("<HHII", 22, bits, 0x3, real_tag) + guid_tail
    return _fmt(EXTENSIBLE, bits) + extension


def _auxi(centre_hz: int) -> bytes:
    """SpectraVue's auxi: start and stop SYSTEMTIME, then the centre in Hz, ..."""
    start = struct.pack("<8H", 2026, 11, 2, 24, 14, 30, 12, 0)
    stop = struct.pack("<8H", 2026, 11, 2, 24, 14, 30, 13, 0)
    # CenterFreq, ADFrequency, IFFrequency, Bandwidth, IQOffset, 4 unused DWORDs
    return start + stop + struct.pack("<9I", centre_hz, RATE_HZ, 0, 0, 0, 0, 0, 0, 0)


def _riff(
    *chunks: bytes, magic: bytes = b"RIFF", riff_size: int | None = None
) -> bytes:
    body = b"WAVE" + b"".join(chunks)
    size = len(body) if riff_size is None else riff_size
    return magic + struct.pack("<I", size) + body


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def _wav(
    path: Path,
    bits: int,
    *,
    tag: int | None = None,
    centre_hz: int | None = None,
    extensible: bool = False,
) -> Path:
    """The recording as a WAV file: fmt, [auxi], data, like SDR# and HDSDR write it."""
    real_tag = tag if tag is not None else (FLOAT if bits == 32 else PCM)
    fmt = _fmt_extensible(real_tag, bits) if extensible else _fmt(real_tag, bits)
    chunks = [_chunk(b"fmt ", fmt)]
    if centre_hz is not None:
        chunks.append(_chunk(b"auxi", _auxi(centre_hz)))
    chunks.append(_chunk(b"data", _ENCODED[bits](_cu8())))
    return _write(path, _riff(*chunks))


def _wav_stdlib(path: Path, n_channels: int = 2, width: int = 2) -> Path:
    """16-bit (or other) PCM through the standard library, as a reference writer."""
    if width == 2 and n_channels == 2:
        frames = _as_pcm16(_cu8())
    else:
        frames = bytes(n_channels * width * 1000)
    with wave.open(str(path), "wb") as out:
        out.setnchannels(n_channels)
        out.setsampwidth(width)
        out.setframerate(RATE_HZ)
        out.writeframes(frames)
    return path


# -- replay ---------------------------------------------------------------------------


def _replay(capsys, argv: list[str]) -> tuple[int, list[dict], str]:
    status = main(["replay", *argv, "--output", "jsonl"])
    out, err = capsys.readouterr()
    return status, [json.loads(line) for line in out.splitlines()], err


def _telegrams(records: list[dict]) -> list[tuple]:
    return [
        (r["sample"], r["mode"], r["frame_format"], r["telegram"], r["crc_ok"])
        for r in records
    ]


@pytest.fixture(scope="module")
def receiver_module():
    return pytest.importorskip("dsp.receiver", reason="dsp/receiver.py not written yet")


@pytest.fixture(scope="module")
def expected(receiver_module) -> list[tuple]:
    """What replay finds in the original SigMF recording (its 10 annotated bursts)."""
    capture = io.StringIO()
    args = build_parser().parse_args(["replay", str(META), "--output", "jsonl"])
    assert replay(args, stdout=capture, stderr=io.StringIO()) == 0
    records = [json.loads(line) for line in capture.getvalue().splitlines()]
    n_annotations = len(json.loads(META.read_text())["annotations"])
    assert len(records) == n_annotations == 10
    return _telegrams(records)


def _one_line_error(capsys, argv: list[str], *needles: str) -> None:
    status = main(["replay", *argv])
    out, err = capsys.readouterr()
    assert status == 1 and out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("wmbus: ") and "Traceback" not in err
    for needle in needles:
        assert needle in lines[0], lines[0]


@pytest.mark.parametrize(
    "name, bits, auxi, extensible",
    [
        (SDRPP, 32, False, False),  # SDR++ float baseband, centre from the name
        (SDRSHARP, 8, True, False),  # SDR# 8-bit PCM (RTL-SDR) with auxi
        (SDRSHARP, 32, True, False),
        (HDSDR, 16, True, False),
        (SDRUNO, 16, True, False),
        (SDRCONSOLE, 32, False, True),  # float in WAVE_FORMAT_EXTENSIBLE
        (SDRPP, 16, False, True),
    ],
)
def test_replay_wav_as_the_applications_write_it(
    expected, capsys, tmp_path, name, bits, auxi, extensible
):
    path = _wav(
        tmp_path / name,
        bits,
        centre_hz=CENTRE_HZ if auxi else None,
        extensible=extensible,
    )
    status, records, err = _replay(capsys, [str(path)])
    assert status == 0, err
    assert _telegrams(records) == expected


def test_replay_pcm16_from_the_stdlib_writer(expected, capsys, tmp_path):
    path = _wav_stdlib(tmp_path / SDRPP)
    status, records, err = _replay(capsys, [str(path)])
    assert status == 0, err
    assert _telegrams(records) == expected


def test_replay_rf64(expected, capsys, tmp_path):
    """RF64 (EBU Tech 3306): sizes all ones, the real ones in ds64."""
    samples = _as_float32(_cu8())
    ds64 = struct.pack("<QQQI", 0, len(samples), len(samples) // 8, 0)
    chunks = [
        _chunk(b"ds64", ds64),
        _chunk(b"fmt ", _fmt_extensible(FLOAT, 32)),
        _chunk(b"data", samples, size=0xFFFFFFFF),
        _chunk(b"LIST", b"INFOISFT\x05\0\0\0test\0"),  # after the samples: not data
    ]
    body_size = 4 + sum(len(c) for c in chunks)
    chunks[0] = _chunk(b"ds64", struct.pack("<Q", body_size) + ds64[8:])
    path = _write(
        tmp_path / SDRCONSOLE, _riff(*chunks, magic=b"RF64", riff_size=0xFFFFFFFF)
    )
    info = read_wav_meta(path)
    assert (info.sample_format, info.trailing_bytes) == ("cf32", len(chunks[3]))
    status, records, err = _replay(capsys, [str(path)])
    assert status == 0, err
    assert _telegrams(records) == expected


def test_auxi_centre_beats_the_file_name(expected, capsys, tmp_path):
    # The name says 433.92 MHz; the auxi chunk is the receiver's own record.
    path = _wav(
        tmp_path / "SDRSharp_20261124_143012Z_433920000Hz_IQ.wav",
        16,
        centre_hz=CENTRE_HZ,
    )
    status, records, err = _replay(capsys, [str(path)])
    assert status == 0, err
    assert _telegrams(records) == expected


def test_auxi_alone_gives_the_centre(tmp_path):
    path = _wav(tmp_path / "recording.wav", 16, centre_hz=CENTRE_HZ)
    with FileSource(path) as source:
        assert (source.center_freq_hz, source.sample_rate_hz) == (CENTRE_HZ, RATE_HZ)
        assert source.sample_format == "cs16"
        assert source.n_samples == DATA.stat().st_size // 2


def test_flags_beat_the_header(tmp_path):
    path = _wav(tmp_path / SDRSHARP, 16, centre_hz=CENTRE_HZ)
    with FileSource(path, sample_rate_hz=1.2e6, center_freq_hz=868.3e6) as source:
        assert (source.sample_rate_hz, source.center_freq_hz) == (1.2e6, 868.3e6)
    with FileSource(path) as source:
        assert (source.sample_rate_hz, source.center_freq_hz) == (RATE_HZ, CENTRE_HZ)


def test_no_centre_anywhere_names_the_flag(capsys, tmp_path):
    path = _wav(tmp_path / "recording.wav", 16)
    _one_line_error(capsys, [str(path)], "give --center")


def test_format_wav_reads_any_extension(expected, capsys, tmp_path):
    path = _wav(tmp_path / "capture.bin", 16, centre_hz=CENTRE_HZ)
    status, records, err = _replay(capsys, [str(path), "--format", "wav"])
    assert status == 0, err
    assert _telegrams(records) == expected


def test_same_samples_as_the_raw_recording(tmp_path):
    """Float WAV samples are the cu8 reader's own floats; 8-bit WAV the same bytes."""
    with FileSource(META) as source:
        reference = np.concatenate(list(source))
    assert len(reference) == DATA.stat().st_size // 2
    for bits in (8, 32):
        with FileSource(_wav(tmp_path / f"b{bits}_{SDRSHARP}", bits)) as source:
            np.testing.assert_array_equal(np.concatenate(list(source)), reference)


# -- recordings the recorder never finished -------------------------------------------


@pytest.mark.parametrize("data_size", [0, 0xFFFFFFFF])
def test_unfinished_header_reads_to_the_end(
    expected, capsys, caplog, tmp_path, data_size
):
    """A recorder killed before it wrote the sizes back: RIFF and data sizes unset."""
    samples = _as_pcm16(_cu8())
    data = _riff(
        _chunk(b"fmt ", _fmt(PCM, 16)),
        _chunk(b"data", samples, size=data_size),
        riff_size=0,
    )
    # ... and killed inside an I/Q pair: the last 3 bytes of a pair are there.
    path = _write(tmp_path / SDRPP, data + b"\1\2\3")
    with caplog.at_level(logging.WARNING, logger="sdr.wav_meta"):
        status, records, err = _replay(capsys, [str(path)])
    assert status == 0, err
    assert _telegrams(records) == expected
    warned = [r.getMessage() for r in caplog.records if r.name == "sdr.wav_meta"]
    assert len(warned) == 1 and f"reading the {len(samples)} bytes" in warned[0]


def test_data_size_past_the_end(tmp_path, caplog):
    samples = _as_pcm16(_cu8())
    full = _riff(_chunk(b"fmt ", _fmt(PCM, 16)), _chunk(b"data", samples))
    path = _write(tmp_path / SDRPP, full[:-6])  # cut 1.5 I/Q pairs short
    with caplog.at_level(logging.WARNING, logger="sdr.wav_meta"):
        info = read_wav_meta(path)
    assert info.header_bytes == 44
    assert info.trailing_bytes == 2  # the half pair is dropped
    assert any("unfinished" in r.getMessage() for r in caplog.records)


# -- header layout --------------------------------------------------------------------


def test_chunks_are_word_aligned_and_trailing_chunks_skipped(tmp_path):
    odd = _chunk(b"JUNK", b"abc")  # 3 bytes + 1 pad byte
    samples = bytes(range(8)) * 4
    path = _write(
        tmp_path / "x.wav",
        _riff(
            odd,
            _chunk(b"fmt ", _fmt(PCM, 8)),
            _chunk(b"auxi", _auxi(433_920_000)),
            _chunk(b"data", samples),
            _chunk(b"LIST", b"INFO"),
        ),
    )
    info = read_wav_meta(path)
    header = 12 + (8 + 4) + (8 + 16) + (8 + 68) + 8
    assert info.header_bytes == header
    assert info.trailing_bytes == 12
    assert (info.sample_format, info.sample_rate_hz, info.center_freq_hz) == (
        "cu8",
        RATE_HZ,
        433_920_000,
    )
    assert path.read_bytes()[header : header + len(samples)] == samples


def test_auxi_after_the_data_is_found(tmp_path):
    path = _write(
        tmp_path / "x.wav",
        _riff(
            _chunk(b"fmt ", _fmt(PCM, 16)),
            _chunk(b"data", bytes(400)),
            _chunk(b"auxi", _auxi(868_300_000)),
        ),
    )
    assert read_wav_meta(path).center_freq_hz == 868_300_000


def test_empty_data_in_a_finished_file_is_not_read_past(tmp_path):
    # data size 0 and a RIFF size that covers the file: finished, and empty.
    path = _write(
        tmp_path / "x.wav",
        _riff(
            _chunk(b"fmt ", _fmt(PCM, 16)),
            _chunk(b"data", b""),
            _chunk(b"LIST", b"INFO" * 25),
        ),
    )
    with pytest.raises(SourceError, match="data chunk is empty"):
        read_wav_meta(path)


# -- files that cannot be used: one line, exit 1 --------------------------------------


def test_mono_is_not_iq(capsys, tmp_path):
    path = _wav_stdlib(tmp_path / SDRPP, n_channels=1)
    _one_line_error(capsys, [str(path)], "not an IQ recording (1 channel")


def test_24_bit_pcm(capsys, tmp_path):
    path = _wav_stdlib(tmp_path / SDRPP, width=3)
    _one_line_error(capsys, [str(path)], "24-bit PCM", "16-bit PCM", "32-bit float")


@pytest.mark.parametrize(
    "fmt, needle",
    [
        (_fmt(PCM, 32), "32-bit PCM"),
        (_fmt(FLOAT, 64), "64-bit float"),
        (_fmt(ALAW, 8), "A-law"),
        (_fmt_extensible(PCM, 24), "24-bit PCM"),
        (
            _fmt_extensible(PCM, 16, guid_tail=bytes(12)),
            "SubFormat 00000001-0000-0000-0000-000000000000",
        ),
        (_fmt(PCM, 16)[:14], "fmt chunk too short"),
    ],
)
def test_unsupported_encodings(capsys, tmp_path, fmt, needle):
    path = _write(
        tmp_path / SDRPP, _riff(_chunk(b"fmt ", fmt), _chunk(b"data", bytes(64)))
    )
    _one_line_error(capsys, [str(path)], needle)


def test_not_a_wav(capsys, tmp_path):
    path = _write(tmp_path / SDRPP, _cu8()[:1000])
    _one_line_error(capsys, [str(path)], "not a WAV file")
    riff_avi = _write(tmp_path / "movie.wav", b"RIFF\x04\0\0\0AVI ")
    _one_line_error(capsys, [str(riff_avi)], "not WAVE")


def test_truncated_header(capsys, tmp_path):
    whole = _wav(tmp_path / "whole.wav", 16, centre_hz=CENTRE_HZ)
    for n_bytes in (8, 30, 60):  # in the RIFF header, in fmt, in auxi
        cut = _write(tmp_path / f"cut{n_bytes}_{SDRPP}", whole.read_bytes()[:n_bytes])
        _one_line_error(capsys, [str(cut)], "ends inside its header")


def test_missing_chunks(capsys, tmp_path):
    no_data = _write(tmp_path / "a.wav", _riff(_chunk(b"fmt ", _fmt(PCM, 16))))
    _one_line_error(capsys, [str(no_data)], "no data chunk")
    no_fmt = _write(tmp_path / "b.wav", _riff(_chunk(b"data", bytes(64))))
    _one_line_error(capsys, [str(no_fmt)], "no fmt chunk")


def test_empty_data(capsys, tmp_path):
    path = tmp_path / SDRPP
    with wave.open(str(path), "wb") as out:
        out.setnchannels(2)
        out.setsampwidth(2)
        out.setframerate(RATE_HZ)
    assert path.stat().st_size == 44
    _one_line_error(capsys, [str(path)], "empty")


def test_empty_and_missing_file(capsys, tmp_path):
    _one_line_error(capsys, [str(tmp_path / SDRPP)], "no such file")
    _one_line_error(capsys, [str(_write(tmp_path / SDRPP, b""))], "empty")


def test_standard_input_needs_the_file(capsys):
    _one_line_error(
        capsys,
        ["-", "--format", "wav", "--rate", "2.4M", "--center", "868.95M"],
        "WAV cannot be read from standard input",
    )


# -- gqrx -----------------------------------------------------------------------------


def test_replay_gqrx_without_flags(expected, capsys, tmp_path):
    path = _write(tmp_path / GQRX, _as_float32(_cu8()))
    status, records, err = _replay(capsys, [str(path)])
    assert status == 0, err
    assert _telegrams(records) == expected


def test_other_raw_files_still_need_the_format(capsys, tmp_path):
    path = tmp_path / "capture_868.95M_2400k.raw"
    shutil.copyfile(DATA, path)
    _one_line_error(capsys, [str(path)], "give --format")


# -- names ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, fmt, centre, rate",
    [
        (SDRPP, "wav", 868.95e6, None),
        (SDRSHARP, "wav", 868.95e6, None),
        (HDSDR, "wav", 868.95e6, None),
        (SDRUNO, "wav", 868.95e6, None),
        (SDRCONSOLE, "wav", 868.95e6, None),
        ("dir/REC.WAV", "wav", None, None),
        (GQRX, "cf32", 868.95e6, 2.4e6),
        ("dir/gqrx_20120409_133611_144500000_2000000_fc.raw", "cf32", 144.5e6, 2e6),
        ("gqrx_20261124_143012_868950000_2400000.raw", None, None, None),  # not fc
        ("gqrx_notes_868950000_2400000_fc.raw", None, None, None),
    ],
)
def test_application_file_names(name, fmt, centre, rate):
    info = parse_filename(name)
    assert (info.file_format, info.center_freq_hz, info.sample_rate_hz) == (
        fmt,
        centre,
        rate,
    )
    assert file_format_from_path(name) == fmt
