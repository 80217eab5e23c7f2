"""IQ files: names, units, raw formats, SigMF annotations, atomic writes, bad input."""

from __future__ import annotations

import io
import json
import os
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np
import pytest
import sigmf
from hypothesis import given, settings
from hypothesis import strategies as st
from sigmf import validate as sigmf_validate

from dsp.convert import SAMPLE_FORMATS, bytes_to_iq, iq_to_bytes
from sdr.annotation import Annotation
from sdr.filename import build_filename, file_format_from_path, parse_filename
from sdr.sigmf_meta import sigmf_paths
from sdr.sink import SINK_BACKENDS, open_sink
from sdr.sink_file import FileSink
from sdr.source import SOURCE_BACKENDS, TruncatedError, open_source
from sdr.source_file import FileSource
from sdr.units import format_frequency, parse_frequency
from stack.errors import SinkError, SourceError

RATE_HZ = 2.4e6
CENTRE_HZ = 868.95e6


def _noise(rng, n: int) -> np.ndarray:
    return (0.4 * (rng.normal(size=n) + 1j * rng.normal(size=n))).astype(np.complex64)


def _quantised(iq: np.ndarray, fmt: str) -> np.ndarray:
    return bytes_to_iq(iq_to_bytes(iq, fmt), fmt)


# --- units -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, hz",
    [
        ("868950000", 868_950_000.0),
        ("868950000Hz", 868_950_000.0),
        ("868.95M", 868_950_000.0),
        ("868.950M", 868_950_000.0),
        ("868.95MHz", 868_950_000.0),
        ("868.95m", 868_950_000.0),
        ("2.4M", 2_400_000.0),
        ("2400k", 2_400_000.0),
        ("2400K", 2_400_000.0),
        ("1M6", 1_600_000.0),
        ("2k4", 2_400.0),
        ("1.6e6", 1_600_000.0),
        ("0.9G", 900_000_000.0),
        ("-20k", -20_000.0),
        (" 250k ", 250_000.0),
        (".5M", 500_000.0),
    ],
)
def test_parse_frequency(text, hz):
    assert parse_frequency(text) == pytest.approx(hz, rel=1e-12)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "Hz",
        "M",
        "abc",
        "1.2.3",
        "1MM",
        "1M6.5",
        "nan",
        "inf",
        "1e999",
        "12x",
        "1 M",
        "--5",
        "1M-6",
    ],
)
def test_parse_frequency_rejects_junk(text):
    with pytest.raises(ValueError):
        parse_frequency(text)


@settings(max_examples=100, deadline=None)
@given(hz=st.integers(1, 6_000_000_000), prefix=st.sampled_from(["", "k", "M", "G"]))
def test_format_frequency_round_trip(hz, prefix):
    text = format_frequency(hz, prefix)
    assert text.endswith(prefix)
    assert round(parse_frequency(text)) == hz


def test_format_frequency_examples():
    assert format_frequency(868.95e6, "M") == "868.95M"
    assert format_frequency(2.4e6, "k") == "2400k"
    assert format_frequency(1_600_000, "M") == "1.6M"
    with pytest.raises(ValueError):
        format_frequency(1e6, "x")


# --- file names --------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, fmt, centre, rate",
    [
        ("g001_868.95M_2400k.cu8", "cu8", 868.95e6, 2.4e6),
        ("rtlsdr_868.950M_1M6_samples2.cu8", "cu8", 868.95e6, 1.6e6),
        ("meter_868950000Hz_2.4M.cs16", "cs16", 868.95e6, 2.4e6),
        ("dir/x-2400ksps-868.3M.cf32", "cf32", 868.3e6, 2.4e6),
        ("2024-05-01_868.625M_1.6M.complex16u", "cu8", 868.625e6, 1.6e6),
        ("cb_27M_2M.cs8", "cs8", 27e6, 2e6),  # both below 100 MHz: larger is the centre
        ("capture_868.95M_2.4M", None, 868.95e6, 2.4e6),  # no extension
        ("capture_868.95M_2.4M.raw", None, 868.95e6, 2.4e6),
        ("recording.cu8", "cu8", None, None),
        ("only_1M6.cu8", "cu8", None, 1.6e6),
        ("rec_868.95M_2400k.sigmf-meta", "sigmf", 868.95e6, 2.4e6),
    ],
)
def test_parse_filename(name, fmt, centre, rate):
    info = parse_filename(name)
    assert info.file_format == fmt
    assert info.center_freq_hz == (None if centre is None else pytest.approx(centre))
    assert info.sample_rate_hz == (None if rate is None else pytest.approx(rate))


@settings(max_examples=60, deadline=None)
@given(
    stem=st.sampled_from(["", "g001", "meter_a", "x-y"]),
    centre=st.integers(100_000_000, 6_000_000_000),
    rate=st.integers(1, 99_999_999),
    fmt=st.sampled_from([*SAMPLE_FORMATS, "sigmf"]),
)
def test_build_filename_round_trip(stem, centre, rate, fmt):
    info = parse_filename(build_filename(stem, centre, rate, fmt))
    assert (info.file_format, info.center_freq_hz, info.sample_rate_hz) == (
        fmt,
        centre,
        rate,
    )


def test_build_filename_example():
    assert build_filename("g001", 868.95e6, 2.4e6, "cu8") == "g001_868.95M_2400k.cu8"
    with pytest.raises(ValueError):
        build_filename("x", 868.95e6, 2.4e6, "wav")
    assert file_format_from_path("A.CS16") == "cs16"


# --- raw files ---------------------------------------------------------------------


@pytest.mark.parametrize("fmt", SAMPLE_FORMATS)
def test_raw_write_then_read(tmp_path, rng, fmt):
    iq = _noise(rng, 5000)
    path = tmp_path / build_filename("t", CENTRE_HZ, RATE_HZ, fmt)
    with open_sink(str(path), sample_rate_hz=RATE_HZ, center_freq_hz=CENTRE_HZ) as sink:
        sink.write(iq[:1234])
        sink.write(iq[1234:])
    assert path.stat().st_size == len(iq_to_bytes(iq, fmt))
    with open_source(f"file:{path}") as source:
        assert (source.sample_rate_hz, source.center_freq_hz) == (RATE_HZ, CENTRE_HZ)
        assert source.sample_format == fmt and source.n_samples == iq.size
        got = np.concatenate(list(source))
    np.testing.assert_array_equal(got, _quantised(iq, fmt))


@pytest.mark.parametrize("fmt", ["cu8", "cf32"])
def test_chunked_reading_equals_whole(tmp_path, rng, fmt):
    iq = _noise(rng, 3001)
    path = tmp_path / "c.raw"
    path.write_bytes(iq_to_bytes(iq, fmt))
    opts = dict(file_format=fmt, sample_rate_hz=RATE_HZ, center_freq_hz=CENTRE_HZ)
    with FileSource(path, **opts) as source:
        whole = source.read(10_000)
        assert source.read().size == 0
    parts = []
    with FileSource(path, chunk_samples=257, **opts) as source:
        while True:
            n = int(rng.integers(1, 700))
            block = source.read(n)
            assert block.size <= n
            if not block.size:
                break
            parts.append(block)
        assert source.samples_read == iq.size
    assert max(p.size for p in parts) < 700
    np.testing.assert_array_equal(np.concatenate(parts), whole)


@pytest.mark.parametrize("fmt, extra", [("cu8", 1), ("cs16", 3), ("cf32", 5)])
def test_truncated_file_delivers_then_reports(tmp_path, rng, fmt, extra):
    iq = _noise(rng, 100)
    path = tmp_path / f"t_868.95M_2400k.{fmt}"
    path.write_bytes(iq_to_bytes(iq, fmt) + bytes(extra))
    with FileSource(path, chunk_samples=30) as source:
        got = [source.read() for _ in range(4)]
        with pytest.raises(TruncatedError, match=f"{extra} byte") as info:
            source.read()
        with pytest.raises(TruncatedError):  # reported again, not swallowed
            source.read()
    np.testing.assert_array_equal(np.concatenate(got), _quantised(iq, fmt))
    assert isinstance(info.value, SourceError)
    assert info.value.n_trailing_bytes == extra and info.value.n_samples == 100


def test_missing_empty_and_directory(tmp_path):
    with pytest.raises(SourceError, match="no such file"):
        open_source(str(tmp_path / "none_868.95M_2400k.cu8"))
    with pytest.raises(SourceError, match="no such file"):
        open_source(str(tmp_path / "none.raw"))
    empty = tmp_path / "e_868.95M_2400k.cu8"
    empty.write_bytes(b"")
    with pytest.raises(SourceError, match="empty"):
        open_source(str(empty))
    folder = tmp_path / "d_868.95M_2400k.cu8"
    folder.mkdir()
    with pytest.raises(SourceError, match="cannot open"):
        open_source(str(folder))


def test_format_rate_and_centre_must_be_known(tmp_path):
    raw = tmp_path / "capture.raw"
    raw.write_bytes(bytes(8))
    with pytest.raises(SourceError, match="--format"):
        open_source(str(raw))
    with pytest.raises(SourceError, match="unknown format 'flac'"):
        open_source(str(raw), file_format="flac")
    with pytest.raises(SourceError, match="--rate"):
        open_source(str(raw), file_format="cu8", center_freq_hz=CENTRE_HZ)
    with pytest.raises(SourceError, match="--center"):
        open_source(str(raw), file_format="cu8", sample_rate_hz=RATE_HZ)
    with pytest.raises(SourceError, match="positive"):
        open_source(str(raw), file_format="cu8", sample_rate_hz=0, center_freq_hz=1.0)
    archive = tmp_path / "x.sigmf"
    archive.write_bytes(b"")
    with pytest.raises(SourceError, match="archive"):
        open_source(str(archive))


def test_flags_override_the_name(tmp_path):
    path = tmp_path / "t_868.95M_2400k.cs8"
    path.write_bytes(bytes(4))
    with open_source(str(path), sample_rate_hz=1e6, center_freq_hz=868.3e6) as source:
        assert (source.sample_rate_hz, source.center_freq_hz) == (1e6, 868.3e6)
        assert source.duration_s == pytest.approx(2e-6)


def test_standard_input(monkeypatch, rng):
    iq = _noise(rng, 50)
    stdin = io.TextIOWrapper(io.BytesIO(iq_to_bytes(iq, "cs16")))
    monkeypatch.setattr(sys, "stdin", stdin)
    with pytest.raises(SourceError, match="--format"):
        open_source("-")
    opts = dict(file_format="cs16", sample_rate_hz=RATE_HZ, center_freq_hz=CENTRE_HZ)
    with open_source("-", **opts) as source:
        assert source.n_samples is None
        got = np.concatenate(list(source))
    np.testing.assert_array_equal(got, _quantised(iq, "cs16"))
    assert not stdin.closed  # closing the source leaves stdin to its owner


def test_read_after_close_and_bad_sizes(tmp_path):
    path = tmp_path / "t_868.95M_2400k.cu8"
    path.write_bytes(bytes(10))
    source = open_source(str(path))
    with pytest.raises(ValueError):
        source.read(0)
    source.close()
    source.close()
    assert source.closed
    with pytest.raises(SourceError, match="closed"):
        source.read()


# --- atomic writes -----------------------------------------------------------------


def test_nothing_appears_before_commit_and_nothing_stays_on_error(tmp_path, rng):
    final = tmp_path / "out_868.95M_2400k.cu8"
    with (
        pytest.raises(RuntimeError),
        FileSink(final, sample_rate_hz=RATE_HZ, center_freq_hz=CENTRE_HZ) as sink,
    ):
        sink.write(_noise(rng, 100))
        assert not final.exists()
        assert len(list(tmp_path.iterdir())) == 1  # the hidden temporary
        raise RuntimeError("transmitter failed half-way")
    assert list(tmp_path.iterdir()) == []


def test_commit_replaces_and_keeps_normal_permissions(tmp_path, rng):
    final = tmp_path / "out.cf32"
    final.write_bytes(b"old")
    iq = _noise(rng, 10)
    with FileSink(final, sample_rate_hz=RATE_HZ, center_freq_hz=CENTRE_HZ) as sink:
        sink.write(iq)
    assert [p.name for p in tmp_path.iterdir()] == ["out.cf32"]
    assert final.read_bytes() == iq_to_bytes(iq, "cf32")
    umask = os.umask(0)
    os.umask(umask)
    assert final.stat().st_mode & 0o777 == 0o666 & ~umask
    with pytest.raises(SinkError, match="exists"):
        FileSink(
            final, sample_rate_hz=RATE_HZ, center_freq_hz=CENTRE_HZ, overwrite=False
        )


def test_sink_errors(tmp_path, rng):
    opts = dict(sample_rate_hz=RATE_HZ, center_freq_hz=CENTRE_HZ)
    with pytest.raises(SinkError, match="--format"):
        FileSink(tmp_path / "x.raw", **opts)
    with pytest.raises(SinkError, match="cannot create"):
        FileSink(tmp_path / "no" / "dir.cu8", **opts)
    with pytest.raises(SinkError, match="cannot hold"):
        FileSink(tmp_path / "x.cu8", sample_format="cs16", **opts)
    with FileSink(tmp_path / "x.cu8", **opts) as sink:
        assert not sink.supports_annotations
        with pytest.raises(SinkError, match="SigMF"):
            sink.annotate(Annotation(sample_start=0))
        with pytest.raises(ValueError, match="NaN"):
            sink.write(np.array([np.nan], dtype=np.complex64))
    with pytest.raises(SinkError, match="closed"):
        sink.write(_noise(rng, 1))
    assert (tmp_path / "x.cu8").stat().st_size == 0


def test_sink_dropped_without_close_leaves_nothing(tmp_path, rng):
    sink = FileSink(
        tmp_path / "x.cu8", sample_rate_hz=RATE_HZ, center_freq_hz=CENTRE_HZ
    )
    sink.write(_noise(rng, 10))
    del sink
    assert list(tmp_path.iterdir()) == []


# --- registry ----------------------------------------------------------------------


def test_registry_errors(tmp_path, monkeypatch):
    with pytest.raises(SourceError, match="unknown backend 'hackrf'.*file"):
        open_source("hackrf:0")
    with pytest.raises(SinkError, match="unknown backend 'hackrf'"):
        open_sink("hackrf:0", sample_rate_hz=1e6, center_freq_hz=1e6)
    with pytest.raises(SourceError, match="needs a path"):
        open_source("file:")
    # A backend whose optional library is missing: name the package and the command.
    (tmp_path / "fake_backend_mod.py").write_text("import wmbus_no_such_pkg_x\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setitem(SOURCE_BACKENDS, "fakeradio", "fake_backend_mod:Radio")
    with pytest.raises(SourceError, match="wmbus_no_such_pkg_x.*pip install"):
        open_source("fakeradio:0")
    monkeypatch.setitem(SINK_BACKENDS, "fakesink", "wmbus_absent_module:Sink")
    with pytest.raises(SinkError, match="not available in this build"):
        open_sink("fakesink:1")


def test_colon_in_an_existing_file_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("take:2_868.95M_2400k.cu8").write_bytes(bytes(4))
    with open_source("take:2_868.95M_2400k.cu8") as source:
        assert source.read().size == 2


# --- SigMF -------------------------------------------------------------------------


def _telegram(first: int, last: int, **kw) -> Annotation:
    return Annotation.for_telegram(
        first,
        last,
        mode=kw.pop("mode", "T1"),
        frame_format=kw.pop("frame_format", "A"),
        carrier_hz=CENTRE_HZ + kw.pop("offset_hz", 0.0),
        telegram_hex="0A0B0C0D",
        bandwidth_hz=200e3,
        **kw,
    )


def _write_sigmf(path, iq, annotations, **opts):
    with FileSink(
        path, sample_rate_hz=RATE_HZ, center_freq_hz=CENTRE_HZ, **opts
    ) as sink:
        sink.write(iq)
        for item in annotations:
            sink.annotate(item)


@pytest.mark.parametrize("fmt", SAMPLE_FORMATS)
def test_sigmf_round_trip_and_validation(tmp_path, rng, fmt):
    iq = _noise(rng, 4000)
    notes = [
        _telegram(
            2500,
            3999,
            mode="C1",
            frame_format="B",
            offset_hz=-650e3,
            frame_hex="0a0b0c0d1234",
            extra={"wmbus:ebn0_db": 11.5},
        ),
        _telegram(100, 1999, comment="meter 1", offset_hz=25e3),
        Annotation(sample_start=0, label="noise only"),
    ]
    meta_path = tmp_path / "rec_868.95M_2400k.sigmf-meta"
    _write_sigmf(meta_path, iq, notes, sample_format=fmt, description="made-up test")
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "rec_868.95M_2400k.sigmf-data",
        "rec_868.95M_2400k.sigmf-meta",
    ]
    # The sigmf package's own reader and validator (schema, extensions, SHA-512).
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        recording = sigmf.fromfile(str(meta_path))
        recording.validate()
        sigmf_validate.validate(json.loads(meta_path.read_text()))
    assert recording.get_global_field("core:sample_rate") == RATE_HZ
    assert recording.get_captures()[0]["core:frequency"] == CENTRE_HZ
    assert recording.sample_count == iq.size
    for spelling in (meta_path, tmp_path / "rec_868.95M_2400k.sigmf-data"):
        with open_source(str(spelling)) as source:
            assert source.annotations == sorted(notes, key=lambda a: a.sample_start)
            assert (source.sample_rate_hz, source.center_freq_hz) == (
                RATE_HZ,
                CENTRE_HZ,
            )
            assert source.sample_format == fmt
            np.testing.assert_array_equal(
                np.concatenate(list(source)), _quantised(iq, fmt)
            )
    with open_source(
        str(tmp_path / "rec_868.95M_2400k"), file_format="sigmf"
    ) as source:
        assert source.n_samples == iq.size


def test_sigmf_annotation_fields(tmp_path, rng):
    note = _telegram(10, 19, mode="S1", offset_hz=-650e3)
    assert note.last_sample == 19 and note.sample_count == 10
    assert note.freq_upper_edge_hz - note.freq_lower_edge_hz == pytest.approx(200e3)
    meta_path = tmp_path / "a.sigmf-meta"
    _write_sigmf(meta_path, _noise(rng, 20), [note])
    item = json.loads(meta_path.read_text())["annotations"][0]
    assert item["core:sample_start"] == 10 and item["core:sample_count"] == 10
    assert item["core:label"] == "wM-Bus S1 A" and len(item["core:label"]) <= 20
    assert item["wmbus:telegram"] == "0a0b0c0d"
    assert item["wmbus:carrier_hz"] == CENTRE_HZ - 650e3
    ext = json.loads(meta_path.read_text())["global"]["core:extensions"]
    assert ext == [{"name": "wmbus", "version": "1.0.0", "optional": True}]


def test_sigmf_written_twice_is_identical(tmp_path, rng):
    iq = _noise(rng, 300)
    for name in ("one", "two"):
        _write_sigmf(tmp_path / f"{name}.sigmf-meta", iq, [_telegram(5, 50)])
    for ext in (".sigmf-meta", ".sigmf-data"):
        assert (tmp_path / f"one{ext}").read_bytes() == (
            tmp_path / f"two{ext}"
        ).read_bytes()


def test_sigmf_annotation_past_the_end_aborts(tmp_path, rng):
    with pytest.raises(SinkError, match="only 100"):
        _write_sigmf(tmp_path / "x.sigmf-meta", _noise(rng, 100), [_telegram(50, 100)])
    assert list(tmp_path.iterdir()) == []


def test_sigmf_bad_extra_value_aborts(tmp_path, rng):
    note = _telegram(0, 5, extra={"wmbus:obj": object()})
    with pytest.raises(SinkError, match="SigMF"):
        _write_sigmf(tmp_path / "x.sigmf-meta", _noise(rng, 10), [note])
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(sample_start=-1),
        dict(sample_start=0, sample_count=-2),
        dict(sample_start=0, freq_lower_edge_hz=1.0),
        dict(sample_start=0, telegram_hex="xyz"),
        dict(sample_start=0, extra={"wmbus:mode": "T1"}),
    ],
)
def test_annotation_rejects_bad_fields(kwargs):
    with pytest.raises(ValueError):
        Annotation(**kwargs)


def _hand_meta(tmp_path, global_extra=None, captures=None, annotations=None, data=8):
    """A made-up SigMF pair written without our sink."""
    meta = {
        "global": {
            "core:datatype": "ci16_le",
            "core:version": "1.2.0",
            "core:sample_rate": 1e6,
            **(global_extra or {}),
        },
        "captures": captures
        if captures is not None
        else [{"core:sample_start": 0, "core:frequency": 868.3e6}],
        "annotations": annotations or [],
    }
    (tmp_path / "h.sigmf-meta").write_text(json.dumps(meta))
    if data is not None:
        (tmp_path / "h.sigmf-data").write_bytes(bytes(data))
    return tmp_path / "h.sigmf-meta"


@pytest.mark.parametrize(
    "datatype", ["ri16_le", "cu16_le", "cf64_le", "ci16_be", "ci32_le"]
)
def test_sigmf_unsupported_datatype_is_named(tmp_path, datatype):
    path = _hand_meta(tmp_path, {"core:datatype": datatype})
    with pytest.raises(SourceError, match=f"'{datatype}' is not supported"):
        open_source(str(path))


def test_sigmf_foreign_file_reads(tmp_path):
    path = _hand_meta(
        tmp_path,
        {"core:datatype": "cu8_le"},
        annotations=[
            {
                "core:sample_start": 1,
                "core:sample_count": 2,
                "core:label": "burst",
                "other:snr": 3,
            }
        ],
        data=6,
    )
    with open_source(str(path)) as source:
        assert source.sample_format == "cu8" and source.center_freq_hz == 868.3e6
        assert source.annotations == [
            Annotation(
                sample_start=1, sample_count=2, label="burst", extra={"other:snr": 3}
            )
        ]
        assert source.read().size == 3


def test_sigmf_bad_metadata(tmp_path):
    path = _hand_meta(tmp_path, data=None)
    with pytest.raises(SourceError, match="missing"):
        open_source(str(path))
    path = _hand_meta(tmp_path, captures=[])
    with pytest.raises(SourceError, match="--center"):
        open_source(str(path))
    with open_source(str(path), center_freq_hz=868.3e6) as source:
        assert source.read().size == 2
    path = _hand_meta(tmp_path, {"core:num_channels": 2})
    with pytest.raises(SourceError, match="single-channel"):
        open_source(str(path))
    path = _hand_meta(tmp_path, annotations=[{"core:sample_start": "zero"}])
    with pytest.raises(SourceError, match="bad annotation"):
        open_source(str(path))
    path.write_text("{not json")
    with pytest.raises(SourceError, match="not readable SigMF"):
        open_source(str(path))
    with pytest.raises(SourceError, match="no such SigMF"):
        open_source(str(tmp_path / "absent.sigmf-meta"))


_FREQ_AT_0 = {"core:sample_start": 0, "core:frequency": 868.3e6}


@pytest.mark.parametrize(
    ("global_extra", "captures", "annotations", "needle"),
    [
        ({"core:datatype": None}, None, None, "no core:datatype"),
        ({"core:sample_rate": "fast"}, None, None, "core:sample_rate must be a number"),
        ({"core:sample_rate": True}, None, None, "core:sample_rate must be a number"),
        (None, [{"core:frequency": "868.3M"}], None, "core:frequency must be a number"),
        ({"core:offset": -1}, None, None, "core:offset must be an integer >= 0"),
        (
            None,
            [{**_FREQ_AT_0, "core:header_bytes": 1.5}],
            None,
            "core:header_bytes must be an integer >= 0",
        ),
        ({"core:trailing_bytes": "2"}, None, None, "core:trailing_bytes must be an"),
        (None, {"core:frequency": 868.3e6}, None, "malformed captures"),
        (None, [_FREQ_AT_0, 5], None, "malformed captures"),
        (None, None, {"core:sample_start": 0}, "bad annotations: not a list"),
        (None, None, [5], "bad annotation"),
        (
            {"core:dataset": "absent.bin"},
            None,
            None,
            "absent.bin named in core:dataset",
        ),
        ({"core:dataset": 7}, None, None, "core:dataset must be a file name"),
    ],
)
def test_sigmf_bad_field_is_named(
    tmp_path, global_extra, captures, annotations, needle
):
    path = _hand_meta(tmp_path, global_extra, captures, annotations)
    with pytest.raises(SourceError, match=needle) as info:
        open_source(str(path))
    assert str(info.value).startswith(f"{path}: ")


def test_sigmf_non_conforming_dataset_and_offset(tmp_path):
    """core:dataset names the samples file; header/trailing bytes and core:offset."""
    iq = np.array([1 + 2j, -3 + 4j, 5 - 6j], dtype=np.complex64)
    body = iq_to_bytes(iq, "cs16")
    (tmp_path / "capture.raw").write_bytes(b"HEAD" + body + b"TA")
    path = _hand_meta(
        tmp_path,
        {"core:dataset": "capture.raw", "core:offset": 100, "core:trailing_bytes": 2},
        captures=[{**_FREQ_AT_0, "core:sample_start": 100, "core:header_bytes": 4}],
        annotations=[{"core:sample_start": 102, "core:label": "last"}],
        data=None,
    )
    with open_source(str(path)) as source:
        assert source.path == tmp_path / "capture.raw"
        assert source.n_samples == 3
        assert source.annotations == [Annotation(sample_start=2, label="last")]
        np.testing.assert_array_equal(source.read(), _quantised(iq, "cs16"))
    path = _hand_meta(
        tmp_path, {"core:dataset": "capture.raw", "core:metadata_only": True}
    )
    with pytest.raises(SourceError, match="metadata_only"):
        open_source(str(path))


@pytest.mark.parametrize(
    "spelling",
    [
        "rec.sigmf-meta",
        "rec.sigmf-data",
        "dir/rec.sigmf",
        "rec.sigmf-collection",
        "dir/rec_868.95M_2400k",
        "a.b.c",
        "/abs/x.cu8",
    ],
)
def test_sigmf_paths_agree_with_the_sigmf_package(spelling):
    """We name the pair ourselves (reading must not import sigmf): same as sigmf."""
    names = sigmf.sigmffile.get_sigmf_filenames(spelling)
    assert sigmf_paths(spelling) == (names["meta_fn"], names["data_fn"])


def test_sigmf_truncated_data_reports(tmp_path):
    path = _hand_meta(tmp_path, data=9)  # ci16: 2 samples and 1 stray byte
    with open_source(str(path)) as source:
        assert source.read().size == 2
        with pytest.raises(TruncatedError, match="1 byte"):
            source.read()


@settings(max_examples=15, deadline=None)
@given(
    starts=st.lists(st.integers(0, 180), max_size=5),
    modes=st.lists(
        st.sampled_from(["S1", "T1", "T2", "C1", "C2"]), min_size=5, max_size=5
    ),
    payload=st.binary(min_size=1, max_size=40),
)
def test_sigmf_annotations_round_trip_property(starts, modes, payload):
    iq = np.zeros(200, dtype=np.complex64)
    notes = [
        Annotation.for_telegram(
            s,
            s + 19,
            mode=m,
            frame_format="B" if m[0] == "C" else "A",
            carrier_hz=CENTRE_HZ + 1000 * s,
            telegram_hex=payload.hex(),
        )
        for s, m in zip(starts, modes, strict=False)
    ]
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "p.sigmf-meta"
        _write_sigmf(path, iq, notes)
        with open_source(str(path)) as source:
            assert source.annotations == sorted(notes, key=lambda a: a.sample_start)


# --- the shared real capture -------------------------------------------------------


def test_shared_capture_reads_rate_and_centre_from_its_name(shared):
    path = shared / "recordings" / "rtlsdr_868.950M_1M6_samples2.cu8"
    if not path.is_file():
        pytest.skip(f"{path} not present")
    with open_source(str(path)) as source:
        assert source.sample_rate_hz == 1.6e6
        assert source.center_freq_hz == 868.95e6
        assert source.sample_format == "cu8"
        assert source.n_samples == path.stat().st_size // 2
        assert source.duration_s == pytest.approx(0.655, abs=0.001)  # README: 0.655 s
        total, peak = 0, 0.0
        for block in source:
            total += block.size
            peak = max(peak, float(np.abs(block.view(np.float32)).max()))
    assert total == source.n_samples
    assert 0 < peak <= 1.0
