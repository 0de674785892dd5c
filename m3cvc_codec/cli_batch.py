"""m3v-batch: code, check and evaluate a whole corpus, on Ray when it is installed.

    m3v-batch encode INPUTS... -o OUTDIR [m3v-encode's options] [--workers N] [--address A]
    m3v-batch verify OUTDIR
    m3v-batch eval INPUTS... OUTDIR

Exit status: 0 every input done, 1 any failed (each in the manifest with its one-line error)
or the run could not start, 2 usage, 130 interrupted.
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Sequence
from typing import Any

from m3cvc_format.cli import run

from .batch import DEFAULT_CPUS_PER_WORKER
from .cli_encode import add_encode_options, encode_kwargs
from .cli_pack import add_pack_arguments, runtime_options

PROG = "m3v-batch"


def _say(text: str) -> None:
    print(f"{PROG}: {text}", file=sys.stderr)


def _quiet(text: str) -> None:
    pass


def _positive(kind: type) -> Any:
    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if not value > 0:
            raise argparse.ArgumentTypeError(f"{text} must be more than 0")
        return value

    return parse


def _add_pool_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("workers")
    g.add_argument(
        "--address",
        metavar="ADDR",
        help="the Ray cluster to run on: auto (the one this machine belongs to) or ray://HOST:10001; "
        "default: Ray started here on this machine's cores",
    )
    g.add_argument(
        "--workers",
        type=_positive(int),
        metavar="N",
        help="workers, each holding the pack once (default: as many as the CPUs allow, or the GPUs with --device cuda)",
    )
    g.add_argument(
        "--cpus-per-worker",
        type=_positive(float),
        default=DEFAULT_CPUS_PER_WORKER,
        metavar="C",
        help=f"CPUs each worker takes (default {DEFAULT_CPUS_PER_WORKER:g}: the lite pack runs 2 threads)",
    )
    g.add_argument(
        "--no-ray",
        action="store_true",
        help="code in this process, one input at a time, even where Ray is installed",
    )


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=PROG,
        description="Code, check and evaluate a corpus of videos (M3-CVC), on Ray where it is installed.",
    )
    sub = p.add_subparsers(dest="command", metavar="COMMAND", required=True)

    enc = sub.add_parser(
        "encode",
        help="code every input into OUTDIR, one .m3v each; a rerun skips what is done",
        description="Code every input into OUTDIR, one .m3v each, with m3v-encode's options (the same bytes as "
        "m3v-encode). A rerun skips the inputs whose output is there and matches the manifest.",
    )
    enc.add_argument(
        "inputs",
        nargs="+",
        metavar="INPUT",
        help="video files, folders, globs, list files (.txt: one input a line) or URLs (fsspec)",
    )
    enc.add_argument("-o", "--output", required=True, metavar="OUTDIR", help="the output folder")
    add_encode_options(enc)
    own = enc.add_argument_group("each input's own texts")
    own.add_argument(
        "--texts-dir",
        metavar="DIR",
        help="each input's description sidecar (docs/sidecar.md) in DIR, named after its output: "
        "DIR/NAME.json for OUTDIR/NAME.m3v; an input without one fails (see --texts-optional)",
    )
    own.add_argument(
        "--texts-optional",
        action="store_true",
        help="with --texts-dir, code an input that has no sidecar without texts instead of failing it",
    )
    _add_pool_options(enc)
    enc.add_argument("-q", "--quiet", action="store_true", help="no progress, notices or closing line")

    ver = sub.add_parser(
        "verify",
        help="check OUTDIR's outputs against its manifests",
        description="Check every output in OUTDIR: there, the bytes the manifest records, and a valid stream.",
    )
    ver.add_argument("outdir", metavar="OUTDIR")
    ver.add_argument("-q", "--quiet", action="store_true", help="print only the outputs that are bad")

    ev = sub.add_parser(
        "eval",
        help="decode each output and measure it against its input (bpp, PSNR, MS-SSIM)",
        description="Decode the output of each input and measure it against the input: bpp, PSNR, MS-SSIM; "
        "a table, OUTDIR/eval-RUN.jsonl and the R-D plot OUTDIR/eval-RUN.png.",
    )
    ev.add_argument("inputs", nargs="+", metavar="INPUT", help="the inputs, as given to m3v-batch encode")
    ev.add_argument("outdir", metavar="OUTDIR", help="the output folder of m3v-batch encode")
    ev.add_argument("--pad", action="store_true", help="the inputs were coded with --pad")
    ev.add_argument("--no-plot", dest="plot", action="store_false", help="no R-D plot")
    paper = ev.add_argument_group(
        "the paper's perceptual metrics (the full extra; left out, with a line, where unavailable)"
    )
    paper.add_argument("--lpips", action="store_true", help="LPIPS (v0.1, AlexNet): lower is better")
    paper.add_argument(
        "--lpips-weights",
        metavar="DIR",
        help="LPIPS's weight files (alexnet-owt-7be5be79.pth, alex.pth) in DIR; implies --lpips "
        "(default: $M3CVC_LPIPS_WEIGHTS, --models DIR, torch's cache)",
    )
    paper.add_argument("--clip-sim", action="store_true", help="CLIP-sim, the cosine of CLIP image features")
    paper.add_argument(
        "--clip-model", metavar="ID", help="the CLIP id or folder for CLIP-sim; implies --clip-sim (default ViT-B/32)"
    )
    add_pack_arguments(
        ev, pack_default=None, pack_help="refuse a stream coded with another pack (default: the pack the stream names)"
    )
    _add_pool_options(ev)
    ev.add_argument("-q", "--quiet", action="store_true", help="no progress or table")
    return p


def _pool_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    if args.no_ray and args.address:
        raise SystemExit(_usage_error("--no-ray and --address do not go together"))
    return {
        "workers": args.workers,
        "cpus_per_worker": args.cpus_per_worker,
        "address": args.address,
        "use_ray": False if args.no_ray else None,
        "progress": not args.quiet,
        "say": _quiet if args.quiet else _say,
    }


def _usage_error(message: str) -> int:
    print(f"{PROG}: error: {message}", file=sys.stderr)
    return 2


def _encode(args: argparse.Namespace) -> int:
    from .batch import encode_batch

    if args.print_prompts:
        from .prompts import default_prompts_text

        sys.stdout.write(default_prompts_text())
        return 0
    if args.describe == "vlm" or args.scorer != "pack":
        from .models.hub import quiet_model_loading

        quiet_model_loading()
    if args.texts_optional and args.texts_dir is None:
        return _usage_error("--texts-optional goes with --texts-dir")
    report = encode_batch(
        args.inputs,
        args.output,
        encode_kwargs(args),
        texts_dir=args.texts_dir,
        texts_optional=args.texts_optional,
        **_pool_kwargs(args),
    )
    if not args.quiet:
        for record in report.failed:
            _say(f"failed: {record['error']}")
        _say(report.summary())
    return 1 if report.failed else 0


def _verify(args: argparse.Namespace) -> int:
    from .batch import verify_outputs

    report = verify_outputs(args.outdir)
    rows = report.bad if args.quiet else report.rows
    if rows:
        _table(
            rows,
            [("output", "output", "s"), ("status", "status", "s"), ("bytes", "bytes", "d")]
            + [("bpp", "bpp", ".6f"), ("clips", "clips", "d"), ("frames", "frames", "d"), ("error", "error", "s")],
        )
    if not args.quiet:
        _say(f"{len(report.rows) - len(report.bad)} of {len(report.rows)} outputs good")
    return 1 if report.bad else 0


def _eval(args: argparse.Namespace) -> int:
    from .batch import evaluate_batch

    report = evaluate_batch(
        args.inputs,
        args.outdir,
        fit="pad" if args.pad else "crop",
        pack=args.pack,
        pack_config=args.pack_config,
        options=runtime_options(args),
        lpips=args.lpips or args.lpips_weights is not None,
        lpips_weights=args.lpips_weights,
        clip_sim=args.clip_sim or args.clip_model is not None,
        clip_model=args.clip_model,
        plot=args.plot,
        **_pool_kwargs(args),
    )
    if not args.quiet:
        columns = [
            ("output", "output", "s"),
            ("status", "status", "s"),
            ("bytes", "bytes", "d"),
            ("bpp", "bpp", ".6f"),
            ("frames", "frames", "d"),
            ("PSNR dB", "psnr_rgb", ".2f"),
            ("PSNR-Y dB", "psnr_y", ".2f"),
            ("MS-SSIM", "ms_ssim", ".4f"),
            ("LPIPS", "lpips", ".4f"),
            ("CLIP-sim", "clip_sim", ".4f"),
            ("error", "error", "s"),
        ]
        good = [r for r in report.records if r["status"] == "ok"]
        mean: dict[str, Any] = {"output": f"mean of {len(good)}", "status": ""}
        for _, key, _ in columns[2:-1]:
            values = [r[key] for r in good if r.get(key) is not None]
            mean[key] = sum(values) / len(values) if values and all(math.isfinite(v) for v in values) else None
        _table(report.records + [mean], columns)
        _say(f"results: {report.path}" + (f", R-D plot: {report.plot}" if report.plot else ""))
    return 1 if report.failed else 0


def _table(rows: list[dict[str, Any]], columns: list[tuple[str, str, str]]) -> None:
    """A plain-text table on standard output; empty columns left out."""

    def cell(value: Any, fmt: str) -> str:
        if value is None:
            return ""
        if fmt == "d" and isinstance(value, (int, float)):
            return f"{int(value):d}"
        return format(value, fmt) if fmt != "s" else str(value)

    used = [(title, key, fmt) for title, key, fmt in columns if any(r.get(key) not in (None, "") for r in rows)]
    cells = [[cell(r.get(key), fmt) for _, key, fmt in used] for r in rows]
    widths = [max([len(title)] + [len(row[i]) for row in cells]) for i, (title, _, _) in enumerate(used)]
    print("  ".join(title.ljust(w) for (title, _, _), w in zip(used, widths)).rstrip())
    for row in cells:
        print("  ".join(text.ljust(w) for text, w in zip(row, widths)).rstrip())


def _body(args: argparse.Namespace) -> int:
    return {"encode": _encode, "verify": _verify, "eval": _eval}[args.command](args)


def main(argv: Sequence[str] | None = None) -> int:
    return run(PROG, _parser(), _body, argv)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
