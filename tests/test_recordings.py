"""The bundled recordings: regenerate bit-identically, their annotations tell the truth.

The multi-mode SigMF file's annotations are our ground truth for the receiver, so they
are checked against the signal itself: inside each annotated span there is a burst at
the annotated carrier (band-limited power far above the noise), and outside every span
there is only noise.  Each annotated telegram decodes with the bundled keys.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from sdr.keys import load_keys
from sdr.source_file import FileSource
from stack.frame import add_crcs
from stack.telegram import FormatCache, decode_telegram

RECORDINGS = Path(__file__).resolve().parent.parent / "recordings"
META = RECORDINGS / "multimode_868.95M_2400k.sigmf-meta"
BUNDLED = (
    "keys.txt",
    "example_telegrams.txt",
    "multimode_868.95M_2400k.sigmf-meta",
    "multimode_868.95M_2400k.sigmf-data",
)


def _script():
    spec = importlib.util.spec_from_file_location(
        "make_recordings", RECORDINGS / "make_recordings.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_regenerates_bit_identically(tmp_path):
    assert _script().main([str(tmp_path)]) == 0
    for name in BUNDLED:
        assert (tmp_path / name).read_bytes() == (RECORDINGS / name).read_bytes(), name


def test_bundled_size_is_small():
    total = sum((RECORDINGS / name).stat().st_size for name in BUNDLED)
    assert total < 5_000_000


@pytest.fixture(scope="module")
def recording():
    with FileSource(META) as source:
        iq = source.read(source.n_samples)
        return iq, source.annotations, source.sample_rate_hz, source.center_freq_hz


def test_annotations_match_the_script(recording):
    _, annotations, rate, center = recording
    frames = _script().multimode_frames()
    assert rate == 2.4e6 and center == 868.95e6
    assert len(annotations) == len(frames)
    for annotation, frame in zip(annotations, frames, strict=True):
        assert annotation.mode == frame.mode
        assert annotation.frame_format == frame.frame_format
        assert bytes.fromhex(annotation.telegram_hex) == frame.telegram
        assert bytes.fromhex(annotation.frame_hex) == add_crcs(
            frame.telegram, frame.frame_format
        )
    modes = {(a.mode, a.frame_format) for a in annotations}
    assert {
        ("S1", "A"),
        ("T1", "A"),
        ("C1", "A"),
        ("C1", "B"),
        ("T2", "A"),
        ("C2", "A"),
    } <= modes


def test_annotated_telegrams_decode_with_the_bundled_keys(recording):
    _, annotations, _, _ = recording
    keys = load_keys(RECORDINGS / "keys.txt")
    formats = FormatCache()
    encrypted = 0
    for annotation in annotations:
        telegram = decode_telegram(
            bytes.fromhex(annotation.telegram_hex), keys, formats=formats
        )
        assert telegram.error is None, (annotation.mode, telegram.error)
        assert not telegram.warnings, telegram.warnings
        encrypted += telegram.encrypted and telegram.decrypted
    assert encrypted >= 4  # mode 5, mode 7 and ELL-CTR telegrams are in there


def _band_power(iq, rate, offset_hz, half_band_hz):
    """Power in a band around offset_hz: mix down, then a moving-average low-pass."""
    n = np.arange(iq.size)
    mixed = iq * np.exp(-2j * np.pi * offset_hz / rate * n)
    width = max(int(rate / (2 * half_band_hz)), 1)
    kernel = np.ones(width) / width
    return np.abs(np.convolve(mixed, kernel, mode="same")) ** 2


def test_bursts_are_where_the_annotations_say(recording):
    iq, annotations, rate, center = recording
    on_air = np.zeros(iq.size, dtype=bool)
    for annotation in annotations:
        on_air[
            annotation.sample_start : annotation.sample_start + annotation.sample_count
        ] = True
    assert np.max(np.abs(iq)) < 0.99  # no clipping in the 8-bit file
    for annotation in annotations:
        start, count = annotation.sample_start, annotation.sample_count
        assert start >= 0 and start + count <= iq.size
        power = _band_power(iq, rate, annotation.carrier_hz - center, 60e3)
        noise = np.median(power[~on_air])  # the same band, where nothing is on air
        inside = np.median(power[start + count // 4 : start + 3 * count // 4])
        assert inside > 4 * noise, (annotation.mode, inside, noise)
    # nothing but noise outside the spans: no chunk stands out
    quiet = np.abs(iq[~on_air]) ** 2
    chunks = quiet[: quiet.size // 2400 * 2400].reshape(-1, 2400).mean(axis=1)
    assert chunks.max() < 2 * np.median(chunks)
