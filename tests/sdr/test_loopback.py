"""Loopback: replay in chosen chunk sizes; sink -> source by a queue, across threads."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dsp.convert import bytes_to_iq, iq_to_bytes
from sdr.annotation import Annotation
from sdr.loopback import LoopbackSink, LoopbackSource, loopback_pair
from sdr.source import TruncatedError, open_source
from stack.errors import SourceError

RATE_HZ = 1.6e6


def _noise(rng, n: int) -> np.ndarray:
    return (0.3 * (rng.normal(size=n) + 1j * rng.normal(size=n))).astype(np.complex64)


def test_replay_in_chosen_chunks(rng):
    iq = _noise(rng, 1000)
    source = LoopbackSource(iq, RATE_HZ, chunk=[300, 7])
    sizes = [block.size for block in source]
    assert sizes == [300, 7, 300, 7, 300, 7, 79]
    assert source.samples_read == 1000
    assert source.read().size == 0  # stays at end of stream


@settings(max_examples=40, deadline=None)
@given(
    n=st.integers(0, 500),
    chunks=st.lists(st.integers(1, 120), min_size=1, max_size=6),
    ask=st.integers(1, 200),
)
def test_chunked_replay_equals_the_array(n, chunks, ask):
    iq = (np.arange(n) * (1 + 0.5j) / 1000).astype(np.complex64)
    source = LoopbackSource(iq, RATE_HZ, chunk=chunks)
    blocks = []
    while (block := source.read(ask)).size:
        assert block.size <= min(ask, max(chunks))
        blocks.append(block)
    got = np.concatenate(blocks) if blocks else np.zeros(0, np.complex64)
    np.testing.assert_array_equal(got, iq)


def test_replay_does_not_alias_the_input(rng):
    iq = _noise(rng, 10)
    original = iq.copy()
    block = LoopbackSource(iq, RATE_HZ).read()
    block[:] = 0  # writable, and a copy
    np.testing.assert_array_equal(iq, original)


def test_cu8_loopback_quantises_like_a_recording(rng):
    iq = _noise(rng, 500)
    got = np.concatenate(
        list(LoopbackSource(iq, RATE_HZ, sample_format="cu8", chunk=64))
    )
    np.testing.assert_array_equal(got, bytes_to_iq(iq_to_bytes(iq, "cu8"), "cu8"))
    assert not np.array_equal(got, iq)


def test_pair_carries_writes_and_annotations(rng):
    sink, source = loopback_pair(RATE_HZ, 868.3e6, chunk=100)
    assert isinstance(sink, LoopbackSink)
    assert (source.sample_rate_hz, source.center_freq_hz) == (RATE_HZ, 868.3e6)
    parts = [_noise(rng, n) for n in (250, 0, 1, 99)]
    note = Annotation(sample_start=3, sample_count=10, mode="T1")
    with sink:
        for part in parts:
            sink.write(part)
        sink.annotate(note)
    assert sink.samples_written == 350
    got = list(source)
    assert [b.size for b in got] == [100, 100, 50, 1, 99]  # a read never spans writes
    np.testing.assert_array_equal(np.concatenate(got), np.concatenate(parts))
    assert source.annotations == [note]


def test_pair_across_threads(rng):
    iq = _noise(rng, 20_000)
    sink, source = loopback_pair(RATE_HZ, sample_format="cs16", maxsize=2, timeout_s=30)

    def transmit() -> None:
        with sink:
            for start in range(0, iq.size, 1500):
                sink.write(iq[start : start + 1500])

    thread = threading.Thread(target=transmit)
    thread.start()
    got = np.concatenate([block for block in source])
    thread.join()
    np.testing.assert_array_equal(got, bytes_to_iq(iq_to_bytes(iq, "cs16"), "cs16"))


def test_unclosed_sink_times_out_instead_of_hanging(rng):
    sink, source = loopback_pair(RATE_HZ, timeout_s=0.01)
    sink.write(_noise(rng, 5))
    assert source.read().size == 5
    with pytest.raises(SourceError, match="no samples within"):
        source.read()


def test_exception_in_sink_block_still_ends_the_stream(rng):
    sink, source = loopback_pair(RATE_HZ, timeout_s=0.01)
    with pytest.raises(RuntimeError), sink:
        sink.write(_noise(rng, 4))
        raise RuntimeError("modulator failed")
    assert sink.closed
    assert [b.size for b in source] == [4]


def test_partial_sample_at_end_is_reported():
    sink, source = loopback_pair(RATE_HZ, sample_format="cu8", timeout_s=0.01)
    source._put(b"\x00\x01\x02")  # a raw stream that stops inside a sample
    sink.close()
    assert source.read().size == 1
    with pytest.raises(TruncatedError, match="1 byte"):
        source.read()


def test_open_source_loopback_and_bad_arguments(rng):
    iq = _noise(rng, 3)
    with open_source("loopback", iq=iq, sample_rate_hz=RATE_HZ) as source:
        np.testing.assert_array_equal(source.read(), iq)
    with pytest.raises(SourceError, match="iq="):
        open_source("loopback")
    with pytest.raises(ValueError, match="chunk"):
        LoopbackSource(iq, RATE_HZ, chunk=[5, 0])
    with pytest.raises(ValueError, match="chunk"):
        LoopbackSource(iq, RATE_HZ, chunk=[])
    with pytest.raises(ValueError, match="complex"):
        LoopbackSource(np.ones(3), RATE_HZ)
    with pytest.raises(ValueError, match="1-D"):
        LoopbackSource(np.ones((2, 2), np.complex64), RATE_HZ)
    with pytest.raises(SourceError, match="positive"):
        LoopbackSource(iq, 0.0)
    assert [b.size for b in LoopbackSource(iq, RATE_HZ, chunk=np.int64(2))] == [2, 1]
