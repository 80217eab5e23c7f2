"""Raw IQ sample formats to and from complex64 baseband.

Signal picture: a byte stream of interleaved I/Q components, as written by SDR tools
(rtl_sdr, rtl_433, hackrf_transfer, GNU Radio), becomes a 1-D ``complex64`` array of
full-scale-normalised samples (|I|, |Q| <= 1), and back.  The sample rate is untouched:
one complex sample in, one complex sample out.

::

    format  per component            bytes/sample  value = (raw - offset) / scale
    cu8     uint8                    2             offset 127.5, scale 127.5
    cs8     int8                     2             offset 0,     scale 128
    cs16    int16, little-endian     4             offset 0,     scale 32768
    cf32    float32, little-endian   8             as stored (no scaling)

``cu8`` uses the RTL2832U convention of rtl_433 (offset 127.5, so 0 -> -1.0 and
255 -> +1.0 and no code maps to exactly 0).  ``cs8`` is HackRF's format and ``cs16``
that of SoapySDR/bladeRF/rtl_433 ``.cs16``; their scales are the full-scale code
magnitude (2**7, 2**15), so the most negative code maps to exactly -1.0.

Writing (``iq_to_bytes``) rounds to the nearest code and clips at full scale, so a
round trip ``bytes_to_iq(iq_to_bytes(iq))`` is within half a code of ``iq`` inside the
range, and ``iq_to_bytes(bytes_to_iq(data)) == data`` exactly for every byte string.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

__all__ = [
    "SAMPLE_FORMATS",
    "bytes_per_sample",
    "bytes_to_iq",
    "iq_to_bytes",
    "remove_dc",
]


@dataclass(frozen=True, slots=True)
class _IntFormat:
    """Layout of one integer IQ format: component dtype, offset and scale (codes)."""

    dtype: str
    offset: float
    scale: float
    code_min: int
    code_max: int


# Offsets and scales as in the module docstring (rtl_433's cu8 convention, full-scale
# code magnitude for the signed formats).
_INT_FORMATS: dict[str, _IntFormat] = {
    "cu8": _IntFormat("u1", 127.5, 127.5, 0, 255),
    "cs8": _IntFormat("i1", 0.0, 128.0, -128, 127),
    "cs16": _IntFormat("<i2", 0.0, 32768.0, -32768, 32767),
}

#: Raw IQ formats understood here, in order of size.
SAMPLE_FORMATS: tuple[str, ...] = ("cu8", "cs8", "cs16", "cf32")

_BYTES_PER_SAMPLE = {"cu8": 2, "cs8": 2, "cs16": 4, "cf32": 8}


def _check_format(fmt: str) -> None:
    if fmt not in _BYTES_PER_SAMPLE:
        raise ValueError(
            f"unknown sample format {fmt!r}; valid formats: {', '.join(SAMPLE_FORMATS)}"
        )


def bytes_per_sample(fmt: str) -> int:
    """Size of one complex sample (I and Q together) in bytes.

    Parameters
    ----------
    fmt : str
        One of ``SAMPLE_FORMATS``.

    Returns
    -------
    int
        2 for cu8 and cs8, 4 for cs16, 8 for cf32.

    Raises
    ------
    ValueError
        If ``fmt`` is not a known format.
    """
    _check_format(fmt)
    return _BYTES_PER_SAMPLE[fmt]


def bytes_to_iq(
    buf: bytes | bytearray | memoryview | npt.NDArray[np.uint8], fmt: str
) -> npt.NDArray[np.complex64]:
    """Convert interleaved raw IQ bytes to complex baseband samples.

    Parameters
    ----------
    buf : bytes-like or ndarray of uint8, shape (n_bytes,)
        Interleaved I/Q components, I first.  ``n_bytes`` must be a whole number of
        samples (callers holding a partial sample keep it for the next call).
    fmt : str
        One of ``SAMPLE_FORMATS``.

    Returns
    -------
    ndarray of complex64, shape (n_bytes // bytes_per_sample(fmt),)
        Normalised samples; a new, writable array (never a view of ``buf`` unless
        ``buf`` is a writable buffer in cf32, which is then reinterpreted in place).

    Raises
    ------
    ValueError
        If ``fmt`` is unknown or ``buf`` does not hold a whole number of samples.
    """
    size = bytes_per_sample(fmt)
    if isinstance(buf, np.ndarray):
        raw = np.ascontiguousarray(buf)
    else:
        raw = np.frombuffer(buf, dtype=np.uint8)
    if raw.dtype != np.uint8 or raw.ndim != 1:
        raise ValueError("bytes_to_iq expects bytes or a 1-D uint8 array")
    if raw.size % size:
        raise ValueError(
            f"{raw.size} bytes is not a whole number of {fmt} samples "
            f"({size} bytes each)"
        )
    if fmt == "cf32":
        iq = raw.view("<c8")
        # A read-only source (bytes) must not leak out as a read-only array.
        return iq.astype(np.complex64, copy=not iq.flags.writeable)
    layout = _INT_FORMATS[fmt]
    comp = raw.view(layout.dtype).astype(np.float32)
    if layout.offset:
        comp -= np.float32(layout.offset)
    # Division (not multiplication by 1/scale) keeps the end codes exactly +-1.0.
    comp /= np.float32(layout.scale)
    return comp.view(np.complex64)


def _as_iq(iq: npt.ArrayLike) -> npt.NDArray[np.complex64]:
    arr = np.asarray(iq)
    if arr.ndim != 1:
        raise ValueError(f"iq must be a 1-D array, got shape {arr.shape}")
    if arr.size and not np.iscomplexobj(arr):
        raise ValueError(
            f"iq must be complex (got dtype {arr.dtype}); pass I + 1j*Q as complex64"
        )
    return np.ascontiguousarray(arr, dtype=np.complex64)


def iq_to_bytes(iq: npt.ArrayLike, fmt: str) -> bytes:
    """Convert complex baseband samples to interleaved raw IQ bytes.

    Parameters
    ----------
    iq : array_like of complex, shape (n_samples,)
        Samples with full scale at +-1.0 per component.
    fmt : str
        One of ``SAMPLE_FORMATS``.

    Returns
    -------
    bytes
        ``n_samples * bytes_per_sample(fmt)`` bytes.  Integer formats round to the
        nearest code (half to even) and clip components outside full scale.

    Raises
    ------
    ValueError
        If ``fmt`` is unknown, ``iq`` is not a 1-D complex array, or (integer formats)
        a component is NaN or infinite, which has no code.
    """
    _check_format(fmt)
    samples = _as_iq(iq)
    if fmt == "cf32":
        return samples.astype("<c8", copy=False).tobytes()
    comp = samples.view(np.float32)
    if not np.isfinite(comp).all():
        raise ValueError(f"iq holds NaN or infinite values, which {fmt} cannot store")
    layout = _INT_FORMATS[fmt]
    codes = np.rint(comp * np.float32(layout.scale) + np.float32(layout.offset))
    np.clip(codes, layout.code_min, layout.code_max, out=codes)
    return codes.astype(layout.dtype).tobytes()


def remove_dc(
    iq: npt.ArrayLike, dc: complex | None = None
) -> npt.NDArray[np.complex64]:
    """Subtract a DC offset (the LO leakage spike of direct-conversion tuners).

    Parameters
    ----------
    iq : array_like of complex, shape (n_samples,)
        Samples.
    dc : complex, optional
        Offset to subtract, in full-scale units.  Default: the mean of ``iq``, which
        suits a block long compared with the slowest signal of interest (a streaming
        caller can pass a running estimate instead, to keep blocks consistent).

    Returns
    -------
    ndarray of complex64, shape (n_samples,)
        A new array ``iq - dc``.

    Raises
    ------
    ValueError
        If ``iq`` is not a 1-D complex array.
    """
    samples = _as_iq(iq)
    if dc is None:
        # Accumulate in complex128: a float32 sum of millions of samples drifts.
        dc = complex(samples.mean(dtype=np.complex128)) if samples.size else 0j
    return samples - np.complex64(dc)
