"""Classify images (or array batches) with an exported model.

    python -m apps.predict saved_models/notmnist_cnn letter.png [more.png ...] [--top-k 3]
    python -m apps.predict saved_models/notmnist_cnn my_letters/ --format csv --out predictions.csv
    find scans -name '*.png' | python -m apps.predict saved_models/mnist_cnn - --format json
    python -m apps.predict saved_models/cifar_fc_net batch.npy

Loads the SavedModel with `tf.saved_model.load` only (no project model code) and prints the top-k classes with
their probabilities. Inputs are image files, folders (searched recursively for image files), glob patterns,
`-` (a list of paths on stdin, one a line) and `.npy`/`.npz` arrays of raw pixels (N, H, W[, C]) in 0..255.

Each image is made to look like the model's training images (`tfnets.experiment.images`), with a note on stderr:
a colour image becomes greyscale for a greyscale model; for letter/digit models an image whose background is
the opposite of the training images' (dark for MNIST and notMNIST) is inverted (`--invert`), and an image of
another size has its glyph cropped and framed as in the training set; other images of another size are
resized with their aspect ratio kept, padded with the background colour (`--no-resize` refuses instead).
An image already at the model's size is taken as framed. A file that cannot be read is reported on one line
and skipped; the others are classified and the exit status is non-zero. Images go through the model in
batches (one call per `--batch-size` images).

For a letter or digit model, an image with no ink (near-uniform once made model-sized: a blank page, a fully
transparent PNG, a single pixel, a large noise image) gets no class: `no glyph found` (null in JSON and CSV),
counted in the summary, and the exit status is non-zero as for a skipped file (`tfnets.experiment.glyph`).

Probabilities are calibrated: the export's logits are divided by the temperature fitted on its validation split
when it was exported (`tfnets.nn.calibration`); `--raw` reports the model's own. `--min-confidence P` reports a
prediction whose top probability is below P as `unsure` (with its top-k still listed). Calibration makes the
probability of an image like the validation images honest; it does not make the model recognise that an image is
unlike them (see docs/running.md).
"""

import argparse
import csv
import glob
import io
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

from tfnets.errors import ModelError
from tfnets.experiment.cli import ArgumentParser, exit_with, positive_int
from tfnets.experiment.image_files import DEFAULT_MAX_PIXELS, read_array, read_image

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".gif", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".pbm"}
ARRAY_SUFFIXES = {".npy", ".npz"}
PROGRESS_FROM = 300  # files; below this a run is over before a bar would help
NO_GLYPH = "no glyph found"
UNSURE = "unsure"
# An image whose border leaves its polarity open is inverted only when the model is clearly more confident
# (top probability higher by this much) on the inverted version. With a 3-epoch notMNIST CNN on the 1,426
# test images (91.4 % as they are, 6 % inverted and never re-inverted): margin 0 gave 87.7 % on both the images
# as they are and inverted; 0.1 gave 89.4 % and 84.4 %; 0.3 gave 90.5 % and 70.1 %.
INVERT_MARGIN = 0.1
NOTES = {
    "colour": "colour image converted to greyscale for this greyscale model",
    "inverted": "inverted to the training images' polarity (--invert no keeps it)",
    "inverted_by_model": "background unclear from the border; inverted because the model is clearly more "
    "confident that way (--invert no keeps it)",
    "framed": "glyph cropped and framed like the training images ({framing}); --no-resize refuses instead",
    "resized": "resized to {size}, aspect ratio kept, padded with the background colour; --no-resize refuses instead",
}


# ---------------------------------------------------------------------------------------------------------
# Finding the inputs
# ---------------------------------------------------------------------------------------------------------


def read_path_list(stdin):
    """`-`: one path a line. Bytes that are not UTF-8 stay as the file system's own (surrogate escapes, as
    `os.fsdecode`), so any name `find` prints can be opened, and none stops the run."""
    buffer = getattr(stdin, "buffer", None)
    text = os.fsdecode(buffer.read()) if buffer is not None else stdin.read()
    return [line.strip() for line in text.splitlines() if line.strip()]


def _is_dir(path):
    try:
        return path.is_dir()
    except (OSError, ValueError):  # a name too long, or with a NUL byte: reported when it is read
        return False


def expand_inputs(arguments, stdin=None):
    """Command-line inputs -> list of (path, display name). Folders recurse (image files only, sorted; symlinks
    to files are followed, to folders not), globs expand (sorted), `-` reads one path a line from stdin. A name
    that matches nothing stays, to be reported."""
    found = []
    for argument in arguments:
        if argument == "-":
            found += [(Path(line), Path(line).name) for line in read_path_list(stdin or sys.stdin)]
            continue
        path = Path(argument)
        if _is_dir(path):
            files = sorted(
                p
                for p in path.rglob("*")
                if p.is_file()
                and p.suffix.lower() in IMAGE_SUFFIXES
                and not any(part.startswith(".") for part in p.relative_to(path).parts)
            )
            # An empty folder stays in the list, to be reported like any other input that cannot be read.
            found += [(p, str(p.relative_to(path))) for p in files] or [(path, argument)]
        elif not os.path.lexists(argument) and glob.has_magic(argument):
            matches = [p for p in sorted(glob.glob(argument, recursive=True)) if Path(p).is_file()]
            found += [(Path(p), p) for p in matches] or [(path, argument)]
        else:
            found.append((path, path.name))
    return found


def array_examples(model, path):
    """A .npy/.npz file -> model-ready (N, ...) and its row names. Integer arrays are raw pixels; float
    arrays are raw pixels for an export that takes pixels, already preprocessed inputs for an older one."""
    array = read_array(path)
    shape = model.serving_shape if model.takes_pixels else model.input_shape
    per_example = int(np.prod(shape))
    if array.size == per_example:
        array = array.reshape((1, -1))
    if array.ndim < 2 or int(np.prod(array.shape[1:])) != per_example:
        raise ModelError(
            f"{path} has shape {array.shape}; expected (N, {', '.join(map(str, shape))}) "
            f"or one example of shape {tuple(shape)}"
        )
    array = array.reshape((len(array), -1))
    raw = model.takes_pixels or np.issubdtype(array.dtype, np.integer)
    return (model.prepare_images(array) if raw else model.reshape(array)), len(array)


def status(row, min_confidence):
    """What one result is: `NO_GLYPH` (no probabilities), `UNSURE` (top probability below `min_confidence`) or
    `"ok"`."""
    if row is None:
        return NO_GLYPH
    return UNSURE if min_confidence is not None and row.max() < min_confidence else "ok"


# ---------------------------------------------------------------------------------------------------------
# Classifying
# ---------------------------------------------------------------------------------------------------------


class Notes:
    """What was done to the inputs, one stderr line per kind at the end (naming the file when only one)."""

    def __init__(self, **context):
        self.context, self.seen = context, {}

    def add(self, kind, name, detail=""):
        count, first, first_detail = self.seen.get(kind, (0, name, detail))
        self.seen[kind] = (count + 1, first, first_detail)

    def lines(self):
        for kind, (count, first, detail) in self.seen.items():
            text = NOTES[kind].format(**self.context)
            if count == 1:
                yield f"note: {first}{f' ({detail})' if detail else ''}: {text}"
            else:
                yield f"note: {count} inputs (first {first}): {text}"


class Progress:
    """A one-line progress bar on stderr, drawn only on a terminal."""

    def __init__(self, total, stream=None):
        self.stream = stream or sys.stderr
        self.total, self.done, self.started = total, 0, time.perf_counter()
        self.active = total >= PROGRESS_FROM and hasattr(self.stream, "isatty") and self.stream.isatty()

    def update(self, n):
        self.done += n
        if self.active:
            filled = int(30 * self.done / self.total)
            rate = self.done / max(time.perf_counter() - self.started, 1e-9)
            self.stream.write(f"\r[{'#' * filled}{'.' * (30 - filled)}] {self.done}/{self.total} {rate:.0f} images/s")
            self.stream.flush()

    def close(self):
        if self.active:
            self.stream.write("\n")
            self.stream.flush()


def classify(model, inputs, spec, *, batch_size, notes, errors, progress, raw=False):
    """Yields (name, file, probabilities) in input order; unreadable inputs go to `errors` as (file, message).

    One model call per batch: each batch holds up to `batch_size` files' candidate images (two for an image
    whose polarity the border leaves open; the more confident one wins, see `INVERT_MARGIN`, judged on the
    uncalibrated probabilities the margin was chosen with). The probabilities are calibrated unless `raw`; an
    image with no glyph for a glyph model is not sent to the model and has None for probabilities."""
    from tfnets.experiment.glyph import expects_glyphs, has_glyph
    from tfnets.experiment.images import prepare

    for start in range(0, len(inputs), batch_size):
        chunk = inputs[start : start + batch_size]
        rows, owners, offset = [], [], 0  # owners: (name, file, first row, number of rows, is an array)
        for path, name in chunk:
            try:
                if path.suffix.lower() in ARRAY_SUFFIXES:
                    x, n = array_examples(model, path)
                    rows.append(x)
                    owners.append((name, str(path), offset, n, True))
                    offset += n
                    continue
                pixels, colour = read_image(path, spec.channels, spec.max_pixels)
                try:
                    candidates, done = prepare(pixels, spec)
                except ModelError as err:
                    raise ModelError(f"{path} {err}") from None
            except ModelError as err:
                errors.append((str(path), str(err)))
                continue
            if expects_glyphs(spec) and not has_glyph(candidates[0]):
                owners.append((name, str(path), offset, 0, False))
                continue
            if colour and spec.channels == 1:
                notes.add("colour", name)
            for kind, detail in done:
                notes.add(kind, name, detail)
            rows.append(model.prepare_images(np.stack(candidates)))
            owners.append((name, str(path), offset, len(candidates), False))
            offset += len(candidates)
        if rows:
            logits = model.logits(np.concatenate(rows))
            judged = model.probabilities(logits, raw=True)
            probabilities = judged if raw else model.probabilities(logits)
        for name, file, first, n, is_array in owners:
            if is_array:
                for i in range(n):
                    yield f"{name}[{i}]", f"{file}[{i}]", probabilities[first + i]
                continue
            if n == 0:
                yield name, file, None
                continue
            chosen = first
            if n == 2 and judged[first + 1].max() > judged[first].max() + INVERT_MARGIN:
                chosen = first + 1
                notes.add("inverted_by_model", name)
            yield name, file, probabilities[chosen]
        progress.update(len(chunk))


# ---------------------------------------------------------------------------------------------------------
# Output
# ---------------------------------------------------------------------------------------------------------


def top_k(row, class_names, k):
    return [(class_names[i], float(row[i])) for i in np.argsort(-row, kind="stable")[:k]]


def format_results(results, errors, class_names, k, fmt, model_dir, min_confidence=None, calibration=None):
    """results: (name, file, probabilities or None) -> the text of the whole output in `fmt`.

    A result without probabilities (no glyph) is `no glyph found` in text and null in JSON (`top_k`) and CSV
    (empty cells); `status` (JSON, and CSV's last column) says `ok`, `unsure` or `no glyph found`.
    `calibration`: the temperature the probabilities were divided by (None: the model's own)."""
    if fmt == "text":
        lines = []
        for name, _, row in results:
            state = status(row, min_confidence)
            ranked = "" if row is None else ", ".join(f"{c} ({p:.3f})" for c, p in top_k(row, class_names, k))
            lines.append(f"{name}: {NO_GLYPH if row is None else ranked if state == 'ok' else f'{state}: {ranked}'}\n")
        return "".join(lines)
    if fmt == "json":
        document = {
            "model": str(model_dir),
            "top_k": k,
            "calibrated": calibration is not None,
            "temperature": calibration,
            "min_confidence": min_confidence,
            "predictions": [
                {
                    "file": file,
                    "status": status(row, min_confidence),
                    "top_k": None
                    if row is None
                    else [{"class": c, "probability": p} for c, p in top_k(row, class_names, k)],
                }
                for _, file, row in results
            ],
            "errors": [{"file": file, "error": message} for file, message in errors],
        }
        return json.dumps(document, indent=2) + "\n"
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    columns = [f"{column}_{i}" for i in range(1, k + 1) for column in ("class", "probability")]
    writer.writerow(["file", *columns, "status"])
    for _, file, row in results:
        cells = (
            [""] * len(columns) if row is None else [v for c, p in top_k(row, class_names, k) for v in (c, f"{p:.6f}")]
        )
        writer.writerow([file, *cells, status(row, min_confidence)])
    return buffer.getvalue()


def summary_error(inputs, errors, results):
    """The closing `error:` line when some inputs were not classified (unreadable, or no glyph), else None."""
    blank = [file for _, file, row in results if row is None]
    failed = len(errors) + len(blank)
    if not failed:
        return None
    if len(inputs) == 1 and blank:
        return f"{blank[0]}: {NO_GLYPH} (a near-uniform image: nothing to classify)"
    if failed >= len(inputs):
        return f"none of the {len(inputs)} inputs could be classified (see above)"
    why = f": {len(errors)} unreadable, {len(blank)} with {NO_GLYPH}" if errors and blank else ""
    if blank and not errors:
        why = f": {NO_GLYPH}"
    return (
        f"{failed} of {len(inputs)} inputs could not be classified (see above{why}); "
        f"the other {len(inputs) - failed} were"
    )


def unit_interval(text):
    """`--min-confidence`: a probability in [0, 1]."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a probability between 0 and 1, got {text!r}") from None
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"expected a probability between 0 and 1, got {value:g}")
    return value


def max_pixels(text):
    """`--max-pixels`: a positive integer no larger than Pillow's own limit (Pillow refuses larger images anyway)."""
    value = positive_int(text.replace(",", "").replace("_", ""))
    if value > DEFAULT_MAX_PIXELS:
        raise argparse.ArgumentTypeError(f"at most {DEFAULT_MAX_PIXELS:,} (Pillow's limit), got {value:,}")
    return value


def build_parser():
    from tfnets.experiment.images import INVERT_CHOICES

    parser = ArgumentParser(prog="python -m apps.predict", description=__doc__.split("\n\n")[0])
    parser.add_argument("model_dir", help="an exported model folder, e.g. saved_models/notmnist_cnn")
    parser.add_argument(
        "inputs", nargs="+", help="image files, folders, glob patterns, '-' (paths on stdin), or .npy/.npz arrays"
    )
    parser.add_argument("--top-k", type=positive_int, default=3)
    parser.add_argument(
        "--format",
        choices=("text", "json", "csv"),
        default="text",
        help="text (default), json or csv (file, the top-k classes and probabilities, then the status: ok, unsure "
        "or no glyph found)",
    )
    parser.add_argument("--out", default=None, help="write the predictions to this file (atomically) instead of stdout")
    parser.add_argument(
        "--no-resize",
        dest="resize",
        action="store_false",
        help="refuse images whose size differs from the model's instead of resizing/framing them",
    )
    parser.add_argument(
        "--invert",
        choices=INVERT_CHOICES,
        default="auto",
        help="auto (default): invert greyscale images whose background is the opposite of the "
        "training images'; yes: invert every image; no: never",
    )
    parser.add_argument("--batch-size", type=positive_int, default=256, help="images per model call (default 256)")
    parser.add_argument(
        "--raw",
        action="store_true",
        help="report the model's own probabilities, not those calibrated by the temperature fitted at export",
    )
    parser.add_argument(
        "--min-confidence",
        type=unit_interval,
        default=None,
        metavar="P",
        help="report a prediction whose top probability is below P (0..1) as 'unsure'",
    )
    parser.add_argument(
        "--max-pixels",
        type=max_pixels,
        default=DEFAULT_MAX_PIXELS,
        help=f"skip images with more pixels than this (default and most {DEFAULT_MAX_PIXELS:,}, Pillow's limit): "
        "decompression bombs, and a bound on the memory one image takes",
    )
    parser.add_argument("--debug", action="store_true")
    return parser


def main(argv=None, stdin=None):
    """Returns the probabilities (N, num_classes) of the inputs that were classified, in input order."""
    args = build_parser().parse_args(argv)

    from tfnets import atomic
    from tfnets.experiment.export import ServedModel
    from tfnets.experiment.images import InputSpec

    model = ServedModel(args.model_dir)
    inputs = expand_inputs(args.inputs, stdin)
    if not inputs:
        raise ModelError(f"no image files found in {' '.join(args.inputs)}")
    if not any(p.suffix.lower() in ARRAY_SUFFIXES for p, _ in inputs) and len(model.pixel_shape) not in (2, 3):
        raise ModelError(f"this model takes arrays of shape {model.input_shape}, not images; pass a .npy file")
    spec = InputSpec.from_metadata(
        model.metadata, model.pixel_shape, resize=args.resize, invert=args.invert, max_pixels=args.max_pixels
    )
    notes = Notes(size=f"{spec.width}x{spec.height}", framing=model.metadata.get("framing"))
    errors, progress = [], Progress(len(inputs))
    results = list(
        classify(
            model,
            inputs,
            spec,
            batch_size=args.batch_size,
            notes=notes,
            errors=errors,
            progress=progress,
            raw=args.raw,
        )
    )
    progress.close()
    if errors and not results and len(errors) == 1:
        raise ModelError(errors[0][1])
    for _, message in errors:
        print(f"error: {message}; skipped", file=sys.stderr)
    calibration = None if args.raw or model.temperature is None else model.temperature
    text = format_results(
        results,
        errors,
        model.class_names,
        min(args.top_k, len(model.class_names)),
        args.format,
        args.model_dir,
        args.min_confidence,
        calibration,
    )
    classified = [row for _, _, row in results if row is not None]
    if args.out:
        atomic.write_text(args.out, text)
        print(f"wrote {len(results)} predictions to {args.out}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    for line in notes.lines():
        print(line, file=sys.stderr)
    for line in summary_notes(model, args, classified):
        print(line, file=sys.stderr)
    failure = summary_error(inputs, errors, results)
    if failure:
        raise ModelError(failure)
    return np.stack(classified) if classified else np.zeros((0, len(model.class_names)))


def summary_notes(model, args, classified):
    """What the probabilities are (calibrated or not) and how many were unsure, when there is anything to say."""
    if classified and not args.raw:
        if model.temperature is None:
            yield (
                "note: this export has no fitted temperature (exported without validation data, or before "
                "calibration): the probabilities are the model's own, often overconfident"
            )
        else:
            yield (
                f"note: probabilities calibrated by the temperature {model.temperature:.3f} fitted on the "
                "validation split at export (--raw for the model's own)"
            )
    if args.min_confidence is not None:
        unsure = sum(row.max() < args.min_confidence for row in classified)
        if unsure:
            yield f"note: {unsure} of {len(classified)} predictions below --min-confidence {args.min_confidence:g}: unsure"


if __name__ == "__main__":
    exit_with(main)
