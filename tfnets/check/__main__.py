"""`python -m tfnets.check MODULE:NAME [--input-shape 4,16] [--kwargs JSON] [--seed 0] [--format json]
[--only gradient,batch]`: exit 0 when every check passes, 1 when one fails, 2 for bad usage (one `error:` line);
`--format` is text (default) or json, `--only` a comma-separated list of check names."""

import json
import sys

from tfnets.check.report import NAMES
from tfnets.errors import TfnetsError
from tfnets.experiment.cli import ArgumentParser
from tfnets.experiment.quiet import quiet_tensorflow

EXIT_FAILED, EXIT_USAGE = 1, 2


def build_parser():
    parser = ArgumentParser(
        prog="python -m tfnets.check",
        description="Check a hand-written Keras layer or tf.custom_gradient op: forward, gradient vs numbers, "
        "variables reached, batch consistency, graph/XLA, mixed precision, two replicas, serialisation, training.",
    )
    parser.add_argument(
        "target", metavar="MODULE:NAME", help="e.g. examples/check/good_dense.py:GoodDense or tfnets.nn.ops:affine"
    )
    parser.add_argument(
        "--input-shape",
        action="append",
        metavar="SHAPE",
        help="input shape, e.g. 4,16 (the default); once per argument of an op; SHAPE:intK for int ids in [0, K), "
        "SHAPE:pos for positive floats, :const added for an argument the op does not differentiate",
    )
    parser.add_argument(
        "--kwargs", default="{}", help="JSON keyword arguments of the layer or op, e.g. '{\"units\": 8}'"
    )
    parser.add_argument(
        "--seed", type=int, default=0, help="seeds the weights, inputs and upstream gradients (default 0)"
    )
    parser.add_argument("--format", choices=("text", "json"), default="text", help="the report as a table or JSON")
    parser.add_argument("--only", default=None, metavar="CHECK,...", help=f"run only these: {', '.join(NAMES)} or 1-9")
    parser.add_argument("--debug", action="store_true", help="show tracebacks and TensorFlow's log lines")
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    quiet_tensorflow(debug=args.debug)
    try:
        kwargs = json.loads(args.kwargs)
        if not isinstance(kwargs, dict):
            raise ValueError("not a JSON object")
    except ValueError as err:
        print(f"error: --kwargs is not a JSON object ({err}): {args.kwargs!r}", file=sys.stderr)
        return EXIT_USAGE
    try:
        from tfnets.check import check, parse_only
        from tfnets.check.target import load_object

        only = parse_only(args.only)
        obj, locator = load_object(args.target)
        report = check(
            obj, args.input_shape or ["4,16"], kwargs, seed=args.seed, only=only, label=args.target, locator=locator
        )
    except TfnetsError as err:
        if args.debug:
            raise
        print(f"error: {err}", file=sys.stderr)
        return EXIT_USAGE
    print(report.to_json() if args.format == "json" else str(report))
    return 0 if report.ok else EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
