"""``wmbus transmit``: build telegrams, modulate them, and write a file or send them.

Only argparse is imported at module level (the parser is built for every ``wmbus``
call); numpy and the rest load when the command runs.
"""

from __future__ import annotations

import argparse
import sys
import time

from sdr.cliutil import UsageError, parse_hex_argument

__all__ = ["add_transmit_parser"]

_MODES = ("S1", "S1-m", "S2", "T1", "T2", "C1", "C2")
_MAX_FILE_SAMPLES = 1 << 28  # ~2 GB as cf32: refuse larger renders rather than swap


def add_transmit_parser(sub: argparse._SubParsersAction, add_key_options) -> None:
    parser = sub.add_parser(
        "transmit",
        help="modulate telegrams to an IQ file or a SoapySDR transmitter",
        description=(
            "Build wM-Bus telegrams (from hex, or from meter fields with --meter), "
            "modulate them for a mode, and write an IQ file or transmit them with a "
            "SoapySDR device. HEX is a telegram as receivers print it (CRCs removed, "
            "L counting the bytes after it); the transmitter adds the CRCs and sets L "
            "for the frame format."
        ),
    )
    parser.add_argument("telegrams", nargs="*", metavar="HEX", help="telegram as hex")
    parser.add_argument(
        "--meter",
        action="append",
        default=[],
        metavar="FIELDS",
        help="a telegram from fields, e.g. 'id=12345678,man=KAM,type=water,"
        "volume=12.345m3,volume/s1=11.2,security=5' (see README)",
    )
    add_key_options(parser, keys_file=False)
    parser.add_argument("--mode", required=True, choices=_MODES, help="link mode")
    parser.add_argument(
        "--format",
        dest="frame_format",
        choices=("A", "B"),
        default="A",
        help="frame format (B only in mode C); default A",
    )
    parser.add_argument(
        "--direction",
        choices=("meter", "other"),
        default="meter",
        help="meter->other (default) or other->meter (T2, S2, C2)",
    )
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument(
        "--out",
        metavar="FILE",
        help="IQ file: .cu8 .cs8 .cs16 .cf32 or .sigmf-meta (annotated)",
    )
    target.add_argument(
        "--device",
        metavar="ARGS",
        help="SoapySDR device arguments, e.g. 'driver=hackrf'",
    )
    parser.add_argument(
        "--file-format",
        choices=("cu8", "cs8", "cs16", "cf32", "sigmf"),
        help="file format when the name does not say it",
    )
    parser.add_argument("--rate", default="2.4M", help="sample rate (default 2.4M)")
    parser.add_argument(
        "--center",
        default="868.95M",
        help="centre frequency (default 868.95M: S, T, C channels fit)",
    )
    parser.add_argument(
        "--carrier-offset",
        default="0",
        help="the meter's own carrier error, e.g. 20k (default 0)",
    )
    parser.add_argument(
        "--gap",
        type=float,
        default=0.01,
        help="seconds between telegrams (default 0.01)",
    )
    parser.add_argument("--repeat", type=int, default=1, help="send everything N times")
    parser.add_argument(
        "--interval",
        type=float,
        default=1.0,
        help="seconds from one repetition to the next (default 1)",
    )
    impair = parser.add_argument_group("channel model (for test signals)")
    impair.add_argument("--ebn0", type=float, help="add white noise at this Eb/N0, dB")
    impair.add_argument("--cfo", default="0", help="frequency offset of everything, Hz")
    impair.add_argument(
        "--clock-ppm", type=float, default=0.0, help="sample-clock error, ppm"
    )
    impair.add_argument("--seed", type=int, default=0, help="noise seed (default 0)")
    impair.add_argument(
        "--chip-error-ppm",
        type=float,
        default=0.0,
        help="the meter's chip-clock error, ppm",
    )
    impair.add_argument(
        "--dc",
        type=complex,
        default=0j,
        metavar="I+Qj",
        help="receiver DC offset, e.g. 0.02-0.01j (full scale 1)",
    )
    impair.add_argument(
        "--iq-imbalance",
        nargs=2,
        type=float,
        default=(0.0, 0.0),
        metavar=("GAIN_DB", "PHASE_DEG"),
        help="receiver IQ imbalance: gain in dB and phase in degrees",
    )
    radio = parser.add_argument_group("SoapySDR transmit")
    radio.add_argument("--gain", type=float, help="TX gain, dB")
    radio.add_argument(
        "--duty-cycle",
        choices=("refuse", "delay"),
        default="refuse",
        help="past the ETSI duty-cycle limit: refuse (default) or wait",
    )
    radio.add_argument(
        "--no-duty-limit",
        action="store_true",
        help="lift the duty-cycle limit (shielded test set-ups only)",
    )
    parser.set_defaults(handler=run_transmit)


def _frequency(text: str, flag: str) -> float:
    from sdr.units import parse_frequency

    try:
        return parse_frequency(text)
    except ValueError as exc:
        raise UsageError(f"{flag}: {exc}") from None


def _telegrams(args: argparse.Namespace) -> list[bytes]:
    from sdr.meterspec import MeterSpecError, parse_meter_fields
    from stack.encode import encode_telegram

    out = [
        parse_hex_argument(text, f"telegram {i}")
        for i, text in enumerate(args.telegrams, 1)
    ]
    for number, fields in enumerate(args.meter, 1):
        spec = parse_meter_fields(fields, args.key)
        try:
            out.append(encode_telegram(spec))
        except ValueError as exc:  # e.g. too much data for one telegram (L > 255)
            # Numbered, not echoed: the fields may hold a key.
            raise MeterSpecError(f"--meter #{number}: {exc}") from None
    if not out:
        raise UsageError("give telegrams as HEX or with --meter")
    return out


def _render(
    args: argparse.Namespace, telegrams: list[bytes], rate: float, center: float
):
    from sdr.transmit import TxFrame, render

    offset = _frequency(args.carrier_offset, "--carrier-offset")
    repeats = args.repeat if args.out else 1
    period_gap = None
    if repeats > 1:  # silence that makes one repetition start every --interval
        period_gap = max(args.interval - _span_s(telegrams, args, rate), args.gap)
    frames = []
    for repetition in range(repeats):
        for index, data in enumerate(telegrams):
            gap = period_gap if repetition and index == 0 else None
            frames.append(
                TxFrame(
                    data,
                    args.mode,
                    args.frame_format,
                    args.direction,
                    carrier_offset_hz=offset,
                    gap_s=gap,
                    chip_rate_error_ppm=args.chip_error_ppm,
                )
            )
    estimate = rate * (args.interval * args.repeat + 1) if args.out else 0
    if estimate > _MAX_FILE_SAMPLES:
        raise UsageError(
            f"{args.repeat} repetitions every {args.interval} s at "
            f"{rate:g} S/s make a file too large; lower --repeat, "
            "--interval or --rate"
        )
    return render(
        frames,
        sample_rate_hz=rate,
        center_freq_hz=center,
        gap_s=args.gap,
        ebn0_db=args.ebn0,
        cfo_hz=_frequency(args.cfo, "--cfo"),
        clock_ppm=args.clock_ppm,
        seed=args.seed,
        dc_offset=args.dc,
        iq_imbalance=tuple(args.iq_imbalance),
    )


def _span_s(telegrams: list[bytes], args: argparse.Namespace, rate: float) -> float:
    # From the first burst's start to the last burst's end of one repetition, s: the
    # next repetition starts `interval` after the first, so the gap is what remains.
    from sdr.transmit import TxFrame, render

    _, annotations = render(
        [TxFrame(t, args.mode, args.frame_format, args.direction) for t in telegrams],
        sample_rate_hz=rate,
        center_freq_hz=_frequency(args.center, "--center"),
        gap_s=args.gap,
    )
    last = annotations[-1]
    return (
        last.sample_start + (last.sample_count or 0) - annotations[0].sample_start
    ) / rate


def _write_file(args, iq, annotations, rate: float, center: float) -> None:
    from sdr.sink_file import FileSink

    with FileSink(
        args.out,
        sample_rate_hz=rate,
        center_freq_hz=center,
        file_format=args.file_format,
        description="wM-Bus telegrams made by wmbus transmit",
    ) as sink:
        sink.write(iq)
        if sink.supports_annotations:
            for annotation in annotations:
                sink.annotate(annotation)
    print(
        f"wrote {len(annotations)} telegrams, {iq.size} samples "
        f"({iq.size / rate:.3f} s) to {args.out}",
        file=sys.stderr,
    )


def _send(args, iq, rate: float, center: float) -> None:
    from sdr.dutycycle import DutyCycleLimiter
    from sdr.sink import open_sink

    limiter = DutyCycleLimiter(policy=args.duty_cycle, enabled=not args.no_duty_limit)
    with open_sink(
        f"soapy:{args.device}",
        sample_rate_hz=rate,
        center_freq_hz=center,
        gain_db=args.gain,
        duty_cycle=limiter,
    ) as sink:
        for repetition in range(args.repeat):
            started = time.monotonic()
            sink.write(iq)
            print(f"sent repetition {repetition + 1}/{args.repeat}", file=sys.stderr)
            if repetition + 1 < args.repeat:
                time.sleep(max(0.0, args.interval - (time.monotonic() - started)))


def run_transmit(args: argparse.Namespace) -> int:
    if args.repeat < 1 or args.interval < 0 or args.gap < 0:
        raise UsageError("--repeat must be >= 1, --interval and --gap >= 0")
    rate = _frequency(args.rate, "--rate")
    center = _frequency(args.center, "--center")
    telegrams = _telegrams(args)
    iq, annotations = _render(args, telegrams, rate, center)
    if args.out:
        _write_file(args, iq, annotations, rate, center)
    else:
        _send(args, iq, rate, center)
    return 0
