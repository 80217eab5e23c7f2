"""The ``wmbus`` command line.

Only argparse is imported at start-up so that ``wmbus --help`` is instant; each
subcommand imports what it needs (numba-compiled code only where a radio is involved).

Exit status: 0 success, 1 a telegram or input failed (one line on stderr each),
2 bad usage.  Tracebacks appear only with ``--debug``.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from sdr.cli_bench import add_bench_parser
from sdr.cli_collect import add_collect_parser
from sdr.cli_listen import add_listen_parser
from sdr.cli_replay import add_replay_parser
from sdr.cli_serve import add_serve_parser
from sdr.cli_transmit import add_transmit_parser
from sdr.cliutil import InputError, UsageError, parse_hex_argument

__all__ = ["main", "build_parser"]

_PROG = "wmbus"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=_PROG,
        description=(
            "Wireless M-Bus (EN 13757-4 / OMS) receiver, transmitter and decoder."
        ),
    )
    parser.add_argument(
        "--debug", action="store_true", help="show tracebacks and debug logging"
    )
    parser.add_argument(
        "--version",
        action=_VersionAction,
        help="show the version and how the receiver's kernels are compiled",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    _add_decode(sub)
    add_transmit_parser(sub, _add_key_options)
    add_collect_parser(sub)
    add_serve_parser(sub)
    add_replay_parser(sub, _add_key_options)
    add_listen_parser(sub, _add_key_options)
    add_bench_parser(sub)
    return parser


class _VersionAction(argparse.Action):
    """``--version``: the package version and the kernels' mode (``dsp.kernels``),
    worked out only when asked (it loads numpy, which ``wmbus decode`` never needs)."""

    def __init__(self, option_strings: list[str], dest: str, **kwargs: Any) -> None:
        super().__init__(option_strings, dest, nargs=0, **kwargs)

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: Any,
        option_string: str | None = None,
    ) -> None:
        from importlib import metadata

        try:
            version = metadata.version("wmbus-sdr")
        except metadata.PackageNotFoundError:
            version = "unknown (not installed)"
        from dsp import kernels

        how = kernels.MODE_NAMES[kernels.MODE]
        print(f"wmbus-sdr {version}\nkernels: {how} ({kernels.MODE_DETAIL})")
        parser.exit(0)


def _add_key_options(parser: argparse.ArgumentParser, keys_file: bool = True) -> None:
    group = parser.add_mutually_exclusive_group()
    group.add_argument(
        "--key",
        metavar="HEX",
        help="AES-128 key (32 hex digits) used for every telegram",
    )
    if keys_file:
        group.add_argument(
            "--keys",
            metavar="FILE",
            help="key file: one 'ID KEYHEX' per line, '#' comments, '*' for any",
        )


def _add_decode(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "decode",
        help="decode telegrams given as hex",
        description=(
            "Decode wM-Bus telegrams given as hex (link layer from L on). '-' reads "
            "one telegram per line from standard input; lines in rtl_wmbus format "
            "(fields separated by ';', hex last) are understood too."
        ),
    )
    parser.add_argument(
        "telegrams",
        nargs="+",
        metavar="HEX",
        help="telegram as hex, or '-' for standard input",
    )
    _add_key_options(parser)
    parser.add_argument(
        "--crc",
        choices=("auto", "A", "B", "none"),
        default="auto",
        help="block CRCs in the hex: auto (default: detect), A or B (frame format), "
        "none (already removed, L = length - 1)",
    )
    parser.add_argument(
        "--json",
        action="store_true",
        help="one JSON object per telegram instead of text",
    )
    parser.set_defaults(handler=_run_decode)


def _telegram_inputs(
    items: Sequence[str], stdin: Iterable[str]
) -> Iterator[tuple[str, str]]:
    """(label, text) per telegram: the arguments, and stdin lines where '-' is given."""
    for index, item in enumerate(items, 1):
        if item != "-":
            yield f"telegram {index}", item
            continue
        for line_no, line in enumerate(stdin, 1):
            stripped = line.strip()
            if stripped and not stripped.startswith("#"):
                yield f"stdin line {line_no}", stripped


def _run_decode(args: argparse.Namespace) -> int:
    from sdr.keys import keyring_from_options
    from sdr.output import format_json, format_text
    from stack.errors import DecodeError
    from stack.telegram import FormatCache, decode_telegram

    keys = keyring_from_options(args.key, args.keys)
    formats = FormatCache()
    failures = 0
    out = sys.stdout
    for label, text in _telegram_inputs(args.telegrams, sys.stdin):
        try:
            data = parse_hex_argument(text, label)
            telegram = decode_telegram(data, keys, crc=args.crc, formats=formats)
        except (InputError, DecodeError) as exc:
            failures += 1
            _error(f"{label}: {exc}" if isinstance(exc, DecodeError) else str(exc))
            if args.json:
                print(
                    json.dumps(
                        {
                            "input": text,
                            "error": str(exc),
                            "error_type": type(exc).__name__,
                        }
                    ),
                    file=out,
                    flush=True,
                )
            continue
        print(
            format_json(telegram) if args.json else format_text(telegram),
            file=out,
            flush=True,
        )
        if telegram.error is not None:
            failures += 1
            _error(
                f"{label} ({telegram.link.manufacturer} {telegram.link.id}): "
                f"{telegram.error}"
            )
    return 1 if failures else 0


def _error(message: str) -> None:
    print(f"{_PROG}: {message}", file=sys.stderr, flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``wmbus`` command; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.debug else logging.WARNING,
        format=f"{_PROG}: %(message)s",
    )
    from stack.errors import WmbusError

    try:
        return args.handler(args)
    except UsageError as exc:
        parser.error(str(exc))
    except (WmbusError, InputError) as exc:
        if args.debug:
            raise
        _error(str(exc))
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # stdout closed by the reader (e.g. `| head`): not an error of ours.
        sys.stderr.close()
        return 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
