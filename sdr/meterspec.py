"""``--meter FIELDS``: a meter and its readings as text, for ``wmbus transmit``.

FIELDS is a comma-separated list of ``name=value``:

- header: ``id`` (8 hex digits, required), ``man`` (3 letters, required), ``type``
  (device type: number, or a name such as ``water``, ``heat``, ``cold_water``), ``ver``,
  ``c`` (C-field), ``ci`` (TPL CI, default 7a), ``acc`` (access number), ``status``;
- security: ``security`` (0, 5 or 7), ``key`` (32 hex digits; else ``--key``), ``ell``
  (8c, 8d, 8e, 8f), ``ell_encrypt`` (0/1, AES-CTR), ``session`` (ELL session number),
  ``counter`` (AFL message counter, mode 7), ``compact`` (0/1);
- readings: ``QUANTITY[/sN][/tN][/uN][/min|/max|/err]=VALUE[UNIT]``, e.g.
  ``volume=12.345m3``, ``volume/s1=11.2``, ``flow_temperature/min=9°C``,
  ``date/s1=2026-10-31``.  Storage, tariff and subunit by ``/s``, ``/t``, ``/u``.

Numbers are decimal, or hex with ``0x`` (hex also without prefix for ``ci``, ``c``,
``ell``, ``type``).
"""

from __future__ import annotations

import re

from stack.encode import TelegramSpec
from stack.errors import WmbusError
from stack.link import DEVICE_TYPES
from stack.records import Record, make_record

__all__ = ["parse_meter_fields", "MeterSpecError"]

_NUMBER_UNIT = re.compile(r"^([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*(\S*)$")
_FUNCTIONS = {"min": "minimum", "max": "maximum", "err": "error"}
_HEX_FIELDS = ("ci", "c", "ell", "type")
_INT_FIELDS = {
    "ver": "version",
    "acc": "access_number",
    "status": "status",
    "security": "security_mode",
    "session": "ell_session",
    "counter": "afl_counter",
    "c": "c_field",
    "ci": "ci",
    "ell": "ell_ci",
    "type": "device_type",
}
_BOOL_FIELDS = {"compact": "compact", "ell_encrypt": "ell_encrypt"}


class MeterSpecError(WmbusError, ValueError):
    """A ``--meter`` field that cannot be understood."""


def _int(name: str, text: str) -> int:
    try:
        if name in _HEX_FIELDS and not text.lower().startswith("0x"):
            return int(text, 16)
        return int(text, 0)
    except ValueError:
        raise MeterSpecError(f"--meter {name}={text}: not a number") from None


def _device_type(text: str) -> int:
    names = {
        name.lower().replace(" ", "_").replace("/", "_"): code
        for code, name in DEVICE_TYPES.items()
    }
    if text.lower() in names:
        return names[text.lower()]
    try:
        return _int("type", text)
    except MeterSpecError:
        raise MeterSpecError(
            f"--meter type={text}: unknown device type; give a number (hex) or a "
            "name such as water, heat, gas, electricity, cold_water"
        ) from None


def _value(name: str, text: str) -> tuple[int | float | str, str | None]:
    match = _NUMBER_UNIT.match(text)
    if match is None or re.match(r"^\d{4}-\d{2}", text):
        return text, None  # a date, time or text value
    number, unit = match.groups()
    value: int | float = (
        float(number) if any(c in number for c in ".eE") else int(number)
    )
    return value, (unit or None)


def _record(name: str, text: str) -> Record:
    quantity, *options = name.split("/")
    function = "instantaneous"
    numbers = {"storage": 0, "tariff": 0, "subunit": 0}
    given: set[str] = set()
    for option in options:
        if option in _FUNCTIONS:
            key, function = "function", _FUNCTIONS[option]
        elif option[:1] in ("s", "t", "u") and option[1:].isdigit():
            key = {"s": "storage", "t": "tariff", "u": "subunit"}[option[0]]
            numbers[key] = int(option[1:])
        else:
            raise MeterSpecError(
                f"--meter {name}: unknown option /{option} "
                "(use /sN, /tN, /uN, /min, /max, /err)"
            )
        if key in given:  # "/s1/s2" or "/min/max": which one was meant?
            raise MeterSpecError(f"--meter {name}: {key} given twice")
        given.add(key)
    value, unit = _value(name, text)
    try:
        return make_record(
            quantity,
            value,
            unit=unit,
            storage=numbers["storage"],
            tariff=numbers["tariff"],
            subunit=numbers["subunit"],
            function=function,
        )
    except (WmbusError, ValueError) as exc:
        raise MeterSpecError(f"--meter {name}={text}: {exc}") from None


def _redacted(text: str) -> str:
    # Error messages echo the fields; a key must not end up in logs or terminals.
    return re.sub(r"(\bkey\s*=)[^,]*", r"\1...", text)


def _header_field(name: str, value: str, fields: dict[str, object]) -> bool:
    """Store a header/security field in ``fields``; False if ``name`` is a reading."""
    setting: str | int | bool
    if name == "id":
        key, setting = "meter_id", value
    elif name == "man":
        key, setting = "manufacturer", value.upper()
    elif name == "key":
        key, setting = "key", value
    elif name == "type":
        key, setting = "device_type", _device_type(value)
    elif name in _INT_FIELDS:
        key, setting = _INT_FIELDS[name], _int(name, value)
    elif name in _BOOL_FIELDS:
        key, setting = _BOOL_FIELDS[name], value not in ("0", "no", "false")
    else:
        return False
    if key in fields:
        raise MeterSpecError(f"--meter: {name} given twice")
    fields[key] = setting
    return True


def parse_meter_fields(text: str, default_key: str | None = None) -> TelegramSpec:
    """Turn a ``--meter`` FIELDS string into a TelegramSpec (see the module docstring).

    Raises
    ------
    MeterSpecError
        For a malformed field, a missing ``id``/``man``, or a spec the encoder refuses.
    """
    fields: dict[str, object] = {}
    records: list[Record] = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, sep, value = item.partition("=")
        name, value = name.strip(), value.strip()
        if not sep or not name or not value:
            raise MeterSpecError(f"--meter: '{_redacted(item)}' is not name=value")
        if not _header_field(name, value, fields):
            records.append(_record(name, value))
    fields.setdefault("ci", 0x7A)
    for required, label in (("meter_id", "id"), ("manufacturer", "man")):
        if required not in fields:
            raise MeterSpecError(f"--meter needs {label}=...")
    # Whatever needs a key (TPL or ELL encryption, the AFL's MAC) takes --key.
    encrypted = fields.get("security_mode") or fields.get("ell_encrypt")
    if encrypted or "afl_counter" in fields:  # a counter of 0 is still an AFL
        fields.setdefault("key", default_key)
    try:
        return TelegramSpec(records=records, **fields)  # type: ignore[arg-type]
    except (WmbusError, ValueError, TypeError) as exc:
        raise MeterSpecError(f"--meter {_redacted(text)}: {exc}") from None
