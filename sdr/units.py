"""Frequencies and rates as people type them: ``868950000``, ``868.95M``, ``1M6``.

Every command-line option that takes a frequency or a sample rate goes through
``parse_frequency``; file names are built with ``format_frequency``.

Accepted forms (an optional ``Hz`` may follow any of them, and a sign may lead)::

    868950000      plain number, Hz
    868.95M 2.4M   decimal number with an SI prefix k, M or G (either case)
    2400k
    1.6e6          scientific notation, with or without a prefix
    1M6  2k4       rtl-sdr/rtl-wmbus style: the prefix letter is the decimal point
"""

from __future__ import annotations

import math
import re
from decimal import Decimal

__all__ = ["parse_frequency", "format_frequency"]

_PREFIX = {"": 1, "k": 1000, "m": 1_000_000, "g": 1_000_000_000}

# Decimal number, optional exponent, optional SI prefix: "868.95M", "1.6e6", "2400".
_DECIMAL_RE = re.compile(
    r"(?P<num>[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?)(?P<prefix>[kKmMgG]?)"
)
# Prefix letter as the decimal point: "1M6" = 1.6 M, "2k4" = 2.4 k.
_INFIX_RE = re.compile(r"(?P<sign>[+-]?)(?P<int>\d+)(?P<prefix>[kKmMgG])(?P<frac>\d+)")
_HZ_SUFFIX_RE = re.compile(r"hz$", re.IGNORECASE)


def parse_frequency(text: str) -> float:
    """Parse a frequency or rate in Hz from its text form.

    Parameters
    ----------
    text : str
        For example ``"868950000"``, ``"868.95M"``, ``"868.95MHz"``, ``"2.4M"``,
        ``"2400k"``, ``"1M6"`` or ``"-20k"`` (a signed offset).

    Returns
    -------
    float
        The value in Hz (or samples per second for a rate).

    Raises
    ------
    ValueError
        If ``text`` is not one of the accepted forms, or not finite.

    Examples
    --------
    >>> parse_frequency("868.95M")
    868950000.0
    >>> parse_frequency("1M6")
    1600000.0
    """
    if not isinstance(text, str):
        raise ValueError(f"frequency must be text, got {type(text).__name__}")
    body = _HZ_SUFFIX_RE.sub("", text.strip())
    match = _DECIMAL_RE.fullmatch(body)
    if match:
        number = match["num"]
    else:
        match = _INFIX_RE.fullmatch(body)
        if not match:
            raise ValueError(
                f"not a frequency: {text!r} (examples: 868950000, 868.95M, 2400k, 1M6)"
            )
        number = f"{match['sign']}{match['int']}.{match['frac']}"
    # Decimal arithmetic: float("32.767") * 1e3 would give 32767.000000000004.
    value = float(Decimal(number) * _PREFIX[match["prefix"].lower()])
    if not math.isfinite(value):
        raise ValueError(f"frequency out of range: {text!r}")
    return value


def format_frequency(value_hz: float, prefix: str = "M") -> str:
    """Write a frequency exactly (to the Hz) with an SI prefix, as rtl_433 names files.

    Parameters
    ----------
    value_hz : float
        Frequency or rate in Hz; rounded to a whole Hz.
    prefix : {"", "k", "M", "G"}
        SI prefix to express the value in.

    Returns
    -------
    str
        Shortest exact decimal with the prefix appended, e.g. ``"868.95M"`` or
        ``"2400k"``; ``parse_frequency`` of it gives back ``round(value_hz)``.

    Raises
    ------
    ValueError
        If ``prefix`` is not one of the accepted ones or ``value_hz`` is not finite.
    """
    if prefix.lower() not in _PREFIX or len(prefix) > 1:
        raise ValueError(f"unknown SI prefix {prefix!r}; use '', 'k', 'M' or 'G'")
    if not math.isfinite(value_hz):
        raise ValueError(f"frequency must be finite, got {value_hz}")
    scaled = Decimal(round(value_hz)) / _PREFIX[prefix.lower()]
    return f"{scaled.normalize():f}{prefix}"
