"""``wmbus bench``: throughput and sensitivity benchmarks, from the command line.

The benchmark code lives in the repository's ``benchmarks/`` directory (scripts that
run without the CLI too); this module only finds it, parses the options and prints.
``benchmarks/`` sits beside ``sdr/`` in a source checkout (``make install`` is an
editable install of one); a wheel without it gets one line saying so.

Subcommands::

    wmbus bench throughput [--rate 2.4M] [--seconds 60] [--modes ...] [--compare X]
    wmbus bench sensitivity [--modes ...] [--points ...] [--telegrams N] [--out DIR]

Exit status: 0 done; 1 the benchmarks are not installed, a peer is missing or a
peer command failed; 2 bad options.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from types import ModuleType

from sdr.cliutil import InputError, UsageError

__all__ = ["add_bench_parser", "run_bench", "load_benchmark", "parse_bench_options"]

_ROOT = Path(__file__).resolve().parent.parent


def load_benchmark(name: str) -> ModuleType:
    """Import ``benchmarks.<name>`` from the source tree beside this package.

    Raises
    ------
    InputError
        When ``benchmarks/`` is not there (an installed wheel).
    """
    import importlib

    if not (_ROOT / "benchmarks" / f"{name}.py").exists():
        raise InputError(
            f"wmbus bench needs the benchmarks/ directory of a source checkout "
            f"(looked in {_ROOT}); clone the repository and run 'make install'"
        )
    if str(_ROOT) not in sys.path:
        sys.path.insert(0, str(_ROOT))
    return importlib.import_module(f"benchmarks.{name}")


def add_bench_parser(sub: argparse._SubParsersAction) -> None:
    """Add ``bench throughput`` and ``bench sensitivity`` to the ``wmbus`` parser.

    Each benchmark's options are defined by its script (``add_arguments``), so the
    CLI and the scripts cannot drift apart; they are parsed when the command runs,
    which keeps numpy and numba out of every other ``wmbus`` call's start-up.
    """
    parser = sub.add_parser(
        "bench",
        help="benchmark receiver throughput and sensitivity",
        description="Measure our receiver's speed on one core and its frame success "
        "against Eb/N0, carrier offset and clock error (optionally beside rtl_433). "
        "'wmbus bench throughput --help' lists a benchmark's options.",
    )
    kinds = parser.add_subparsers(dest="bench", metavar="BENCHMARK")
    kinds.required = True
    for name, text in _KINDS.items():
        # "+" as the only prefix: every word, --flags included, is left for the
        # benchmark's own parser (which also answers --help)
        child = kinds.add_parser(name, help=text, add_help=False, prefix_chars="+")
        child.add_argument("options", nargs="*")
        child.set_defaults(handler=run_bench)


_KINDS = {
    "throughput": "decode speed on one core, memory, telegrams found",
    "sensitivity": "frame success against Eb/N0, offset, clock: CSV, JSON, PNG",
}


def parse_bench_options(
    kind: str, options: list[str]
) -> tuple[ModuleType, argparse.Namespace]:
    """The benchmark module of ``kind`` and its options parsed (exits 2 if bad)."""
    module = load_benchmark(f"bench_{kind}")
    parser = argparse.ArgumentParser(
        prog=f"wmbus bench {kind}", description=_KINDS[kind]
    )
    module.add_arguments(parser)
    return module, parser.parse_args(options)


def run_bench(args: argparse.Namespace) -> int:
    """Run the chosen benchmark and print its report."""
    module, options = parse_bench_options(args.bench, args.options)
    try:
        if args.bench == "throughput":
            from sdr.units import parse_frequency

            result = module.run_from_args(options, _frequency_parser(parse_frequency))
            print(module.format_throughput(result), flush=True)
        else:
            rows, paths = module.run_from_args(options)
            print(module.summary(rows), flush=True)
            print("wrote " + ", ".join(str(p) for p in paths), flush=True)
    except ImportError as exc:  # matplotlib (the bench extra) for the plots
        raise InputError(
            f"{exc.name or exc} is needed here: pip install -e '.[bench]' (or give "
            "--no-plots)"
        ) from None
    except FileNotFoundError as exc:  # a peer decoder that is not installed
        raise InputError(str(exc)) from None
    except RuntimeError as exc:  # a peer command that failed
        raise InputError(str(exc)) from None
    except ValueError as exc:  # options that parse but make no sense
        raise UsageError(str(exc)) from None
    return 0


def _frequency_parser(parse_frequency):
    def parse(text: str) -> float:
        try:
            return parse_frequency(text)
        except ValueError as exc:
            raise UsageError(f"{text!r}: {exc}") from None

    return parse
