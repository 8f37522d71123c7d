"""Results at a glance: the latest finished run of every assignment part, next to the original assignments' numbers.

    python -m apps.results                   # scans runs/; writes docs/results.md, docs/results.png, README's table
    python -m apps.results --runs other/runs --update-readme never   # another runs folder; README left alone

A run counts for a part when its `config.json` holds the run configuration of that part's command (the identity of
the app's `Config` for the command's flags) and the app's own `headlines(run_path)` finds the part's number in it (each
app names its sub-folders and result files itself; see `PARTS`). Quick (`--quick`) runs and runs of other settings never count. The latest such
run (by the time its result was written) wins. A part without one is listed as "not run" with the command that
makes it.

README.md carries the same table between `<!-- results:start -->` and `<!-- results:end -->`. `runs/` is not in
git, so that block is where measurements outlive a checkout: a cell with no run behind it in `--runs` keeps the
value already there, and docs/results.md says so ("recorded"). The block is rewritten when every part has a run
(`--update-readme auto`, the default), or always (`--update-readme always`; cells without a run keep their recorded
value), or never (`--update-readme never`).
"""

import dataclasses
import datetime
import importlib
import json
import math
import re
import shlex
from pathlib import Path

from tfnets import atomic
from tfnets.experiment.cli import ArgumentParser, exit_with, require
from tfnets.experiment.headline import read_json

START, END = "<!-- results:start -->", "<!-- results:end -->"
DATA_DIR = "../shared/data"


@dataclasses.dataclass(frozen=True)
class Original:
    """A number from the original assignment: one value, a range (`low`..`high`), or a bar (`low`, no `high`)."""

    text: str
    low: float = None
    high: float = None
    source: str = ""

    def delta(self, ours):
        """Points above the original (above the top of a range); negative below it (its bottom); 0 inside a range;
        None without a number."""
        if ours is None or self.low is None:
            return None
        top = self.high if self.high is not None else self.low
        if ours < self.low:
            return ours - self.low
        return ours - top if ours > top else 0.0


# The original assignments' reported numbers (percent), with where each comes from. Ranges are what the original
# reports reached; a bar ("≥") is the assignment's own target where no report's number is known.
ORIGINALS = {
    "notmnist_mlp": Original("≈ 90–92 %", 90.0, 92.0, "ECE421 reports, 1,000 hidden units, 18,724-image notMNIST"),
    "notmnist_cnn": Original("≈ 92.5–93 %", 92.5, 93.0, "ECE421 reports, the assignment's CNN, 18,724-image notMNIST"),
    "depth_width_100": Original("97.62 %", 97.62, source="CS155 report, ≤ 100 hidden units (bar ≥ 97.5 %)"),
    "depth_width_200": Original("98.06 %", 98.06, source="CS155 report, ≤ 200 hidden units (bar ≥ 98.0 %)"),
    "depth_width_1000": Original("98.32 %", 98.32, source="CS155 report, ≤ 1,000 hidden units (bar ≥ 98.3 %)"),
    "mnist_cnn_dropout": Original("97.14 %", 97.14, source="CS155 report, dropout study, rate 0, one epoch"),
    "mnist_cnn_final": Original("bar ≥ 99.3 %", 99.3, source="CS155 problem set's target (< 100k parameters)"),
    "catcar": Original("80.4 %", 80.4, source="EEE443 HW2 Q1 report, best network"),
    "trigram_sum": Original("≈ 34 %", 34.0, source="EEE443 HW2 Q2 report, (32, 256), order-free input, validation"),
    "cifar": Original("51.0 %", 51.0, source="EEE443 HW2 Q3 / CS231n A2 report, best net (52.3 % validation)"),
}
NONE = Original("—")


# -- reading a run folder ------------------------------------------------------------------------------------------
# A reader takes a run folder and returns (value, file that proves it finished), or None while it has not finished.
# Accuracies come back in percent, errors as fractions.


# -- the parts -----------------------------------------------------------------------------------------------------


def headline(name, scale=100.0):
    """A number an app's own `headlines(run_path)` names (the app knows its folders), scaled (percent by default)."""

    def read(run, app):
        hit = importlib.import_module(f"apps.{app}").headlines(run).get(name)
        return None if hit is None else (scale * hit[0], hit[1])

    return read


@dataclasses.dataclass(frozen=True)
class Measure:
    """Where one number comes from: the command's flags (`args`, on top of the app's defaults) and the reader of its
    run folder (`headline(...)`: a number the app's own `headlines()` names)."""

    args: tuple
    read: object

    def command(self, app):
        return " ".join(["python -m", f"apps.{app}", *map(shlex.quote, self.args), "--data-dir", DATA_DIR])


@dataclasses.dataclass(frozen=True)
class Part:
    key: str
    label: str
    app: str
    original: Original
    assignment: tuple = ()  # Measures of "ours, assignment recipe": the latest finished of any of them counts
    improved: tuple = ()  # Measures of "ours, improved recipe"
    unit: str = "%"  # "%": accuracy in percent; "error": a fraction


PARTS = (
    Part(
        "notmnist_mlp",
        "ECE421 part 1: notMNIST MLP, test accuracy",
        "notmnist_mlp",
        ORIGINALS["notmnist_mlp"],
        assignment=(Measure((), headline("test_accuracy")),),
    ),
    Part(
        "notmnist_cnn",
        "ECE421 part 2: notMNIST CNN, test accuracy",
        "notmnist_cnn",
        ORIGINALS["notmnist_cnn"],
        assignment=(Measure((), headline("test_accuracy")),),
        improved=(
            Measure(("--recipe", "improved"), headline("test_accuracy")),
            Measure(("--study", "all"), headline("improved_test_accuracy")),
        ),
    ),
    *(
        Part(
            f"depth_width_{b}",
            f"CS155: MNIST MLP ≤ {b:,} hidden units, test accuracy",
            "mnist_depth_width",
            ORIGINALS[f"depth_width_{b}"],
            improved=(Measure((), headline(f"budget_{b}_test_accuracy")),),
        )
        for b in (100, 200, 1000)
    ),
    Part(
        "mnist_cnn_dropout",
        "CS155: MNIST CNN dropout study, rate 0 after 1 epoch, test accuracy",
        "mnist_cnn",
        ORIGINALS["mnist_cnn_dropout"],
        improved=(Measure((), headline("dropout_0_test_accuracy")),),
    ),
    Part(
        "mnist_cnn_final",
        "CS155: MNIST CNN < 100k parameters, test accuracy",
        "mnist_cnn",
        ORIGINALS["mnist_cnn_final"],
        improved=(Measure((), headline("final_test_accuracy")),),
    ),
    Part(
        "dl_principles_a",
        "CS155: ReLU net with zero init (part A), test error",
        "dl_principles",
        NONE,
        assignment=(Measure((), headline("zero_init_relu_test_error", scale=1.0)),),
        unit="error",
    ),
    Part(
        "dl_principles_c",
        "CS155: examples sorted by class, batch 1 (part C), test error",
        "dl_principles",
        NONE,
        assignment=(Measure((), headline("sorted_order_test_error", scale=1.0)),),
        unit="error",
    ),
    Part(
        "catcar",
        "EEE443 Q1: cat vs car MLP chosen on validation, test accuracy",
        "catcar_mlp",
        ORIGINALS["catcar"],
        assignment=(Measure((), headline("test_accuracy")),),
        improved=(Measure(("--inputs", "zca"), headline("test_accuracy")),),
    ),
    Part(
        "trigram_sum",
        "EEE443 Q2: trigram (32, 256), order-free, validation accuracy",
        "trigram_embedding",
        ORIGINALS["trigram_sum"],
        assignment=(
            Measure(
                ("--merge", "sum", "--configs", "32x256", "--extra", "none"),
                headline("valid_accuracy"),
            ),
        ),
    ),
    Part(
        "trigram",
        "EEE443 Q2: trigram (32, 256), word order kept, validation accuracy",
        "trigram_embedding",
        NONE,
        assignment=(Measure((), headline("valid_accuracy")),),
        improved=(Measure((), headline("ensemble_valid_accuracy")),),
    ),
    Part(
        "cifar",
        "CS231n A2: CIFAR-10 best fully-connected net, test accuracy",
        "cifar_fc_net",
        ORIGINALS["cifar"],
        improved=(
            Measure(
                (
                    "--part",
                    "best",
                    "--epochs",
                    "60",
                    "--trial-epochs",
                    "2",
                    "--sweep",
                    "learning_rate=1e-3",
                    "--sweep",
                    "keep=0.7,0.85",
                ),
                headline("test_accuracy"),
            ),
        ),
    ),
)


# -- finding runs --------------------------------------------------------------------------------------------------


@dataclasses.dataclass
class Found:
    value: float
    run: Path  # the run folder
    finished: Path  # the file that shows it finished
    config: dict

    @property
    def date(self):
        return datetime.datetime.fromtimestamp(self.finished.stat().st_mtime, datetime.timezone.utc).strftime(
            "%Y-%m-%d"
        )


def _plain(value):
    """JSON's view of a value (tuples and lists compare equal; numbers as JSON writes them)."""
    return json.loads(json.dumps(value, default=str))


def expected_config(app, measure):
    """The run configuration a run of `measure` has: the identity of the app's `Config` for the command's flags."""
    config = importlib.import_module(f"apps.{app}").Config.from_argv(list(measure.args))
    return {k: _plain(v) for k, v in {"app": app, **config.identity()}.items()}


def matches(config, expected):
    """True when every setting both hold agrees (a setting an app keeps out of its config is not compared)."""
    return all(_plain(config[k]) == v for k, v in expected.items() if k in config)


def find(runs, app, measure):
    """The latest finished run of `measure` under `runs/<app>/`, or None."""
    expected = expected_config(app, measure)
    best = None
    for config_path in sorted((Path(runs) / app).glob("*/config.json")):
        config = read_json(config_path)
        if not isinstance(config, dict) or config.get("quick") or not matches(config, expected):
            continue
        found = measure.read(config_path.parent, app)
        if found is None:
            continue
        candidate = Found(found[0], config_path.parent, Path(found[1]), config)
        if best is None or candidate.finished.stat().st_mtime > best.finished.stat().st_mtime:
            best = candidate
    return best


def latest(runs, app, measures):
    """(measure, Found) of the latest finished run among `measures`, else (first measure, None); (None, None) if
    the part has no such column."""
    if not measures:
        return None, None
    hits = [(m, f) for m in measures if (f := find(runs, app, m)) is not None]
    if not hits:
        return measures[0], None
    return max(hits, key=lambda hit: hit[1].finished.stat().st_mtime)


# -- the README block, read back ------------------------------------------------------------------------------------


def recorded_cells(readme_text):
    """{part label: [cells]} from the README's results block (what earlier measurements left there)."""
    if START not in readme_text or END not in readme_text:
        return {}
    block = readme_text.split(START, 1)[1].split(END, 1)[0]
    cells = {}
    for line in block.splitlines():
        if line.startswith("| ") and not line.startswith("| ---"):
            row = [cell.strip() for cell in line.strip().strip("|").split(" | ")]
            cells[row[0]] = row
    return cells


def number(text):
    match = re.match(r"^\s*(-?\d+(?:\.\d+)?)", text or "")
    return float(match.group(1)) if match else None


# -- writing -------------------------------------------------------------------------------------------------------


def fmt(value, unit):
    if value is None:
        return "—"
    return f"{value:.2f} %" if unit == "%" else f"{value:.3f}"


def fmt_delta(original, value, unit):
    delta = original.delta(value) if unit == "%" else None
    if delta is None:
        return "—"
    return "within" if delta == 0 else f"{delta:+.2f}"


@dataclasses.dataclass
class Cell:
    """One "ours" cell: a value from a run, a value recorded earlier, "not run", or "—" (no such column)."""

    part: Part
    column: str
    measure: Measure = None
    found: Found = None
    recorded: str = None

    @property
    def value(self):
        if self.found is not None:
            return self.found.value
        return number(self.recorded) if self.recorded else None

    @property
    def text(self):
        if self.measure is None:
            return "—"
        if self.found is not None:
            return fmt(self.found.value, self.part.unit)
        return self.recorded or "not run"


def collect(runs, recorded):
    """Every part's two cells."""
    table = []
    for part in PARTS:
        row = []
        for index, (column, measures) in enumerate(
            (("assignment recipe", part.assignment), ("improved recipe", part.improved))
        ):
            measure, found = latest(runs, part.app, measures)
            old = recorded.get(part.label, [None] * 6)[2 + index]
            keep = old if old not in (None, "", "—", "not run") and found is None else None
            row.append(Cell(part, column, measure, found, keep))
        table.append((part, row))
    return table


def readme_block(table):
    lines = [
        "| assignment part | original | ours: assignment recipe | ours: improved recipe | reproduce | details |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for part, cells in table:
        commands = " <br> ".join(
            dict.fromkeys(f"`{c.measure.command(part.app)}`" for c in cells if c.measure is not None)
        )
        lines.append(
            f"| {part.label} | {part.original.text} | {cells[0].text} | {cells[1].text} | {commands} | "
            f"[{part.app}](docs/{part.app}.md) |"
        )
    return "\n".join(lines)


def results_markdown(table, runs_label, figure_name):
    lines = [
        "# Results",
        "",
        "Generated by `python -m apps.results` (`make results`) from the run folders in "
        f"`{runs_label}`; do not edit by hand. Every number was measured on the project's data folder "
        f"(`{DATA_DIR}`, see [data.md](data.md) for how it differs from the assignments' data) with the seed "
        "listed. Accuracies in percent; Δ = points above the original (above the top of its range, or the "
        'bar), negative below it. "Assignment recipe" is the app\'s default command, which follows the '
        'assignment\'s network and training; "improved recipe" is our extra configuration, or our own design '
        "where the assignment fixes only a target.",
        "",
        "| assignment part | original | ours: assignment recipe | Δ | ours: improved recipe | Δ | details |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for part, cells in table:
        deltas = [fmt_delta(part.original, c.value, part.unit) for c in cells]
        lines.append(
            f"| {part.label} | {part.original.text} | {cells[0].text} | {deltas[0]} | {cells[1].text} | "
            f"{deltas[1]} | [{part.app}]({part.app}.md) |"
        )
    lines += [
        "",
        f"![ours vs the originals]({figure_name})",
        "",
        "## Where each number comes from",
        "",
        "| assignment part | column | run folder | date (UTC) | data | seed | command |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for part, cells in table:
        for cell in cells:
            if cell.measure is None:
                continue
            command = f"`{cell.measure.command(part.app)}`"
            if cell.found is not None:
                config = cell.found.config
                folder = cell.found.run.relative_to(cell.found.run.parent.parent).as_posix()
                data = _data_label(config.get("settings", {}).get("data_dir"))  # (a flag, not configuration)
                lines.append(
                    f"| {part.label} | {cell.column} | `{folder}` | {cell.found.date} | {data} | "
                    f"{config.get('seed', '')} | {command} |"
                )
            elif cell.recorded:
                lines.append(
                    f"| {part.label} | {cell.column} | not run here: the value recorded in README.md "
                    f"({DATA_DIR}, seed 0) | — | {DATA_DIR} | 0 | {command} |"
                )
            else:
                lines.append(f"| {part.label} | {cell.column} | **not run** | — | — | — | {command} |")
    lines += ["", "## The original numbers", "", "| assignment part | original | source |", "| --- | --- | --- |"]
    lines += [f"| {part.label} | {part.original.text} | {part.original.source or '—'} |" for part, _ in table]
    return "\n".join(lines) + "\n"


def _data_label(data_dir):
    """The data folder as the command gave it; of an absolute path only its last two parts (no machine paths)."""
    if not data_dir:
        return "`$TFNETS_DATA_DIR`"
    path = Path(data_dir)
    return f"`{data_dir}`" if not path.is_absolute() else f"`…/{'/'.join(path.parts[-2:])}`"


def plot(table, path):
    """Grouped horizontal bars per part (accuracy rows only): the original (its range as an error bar) and ours."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [(part, cells) for part, cells in table if part.unit == "%"]
    fig, ax = plt.subplots(figsize=(8, 0.45 * len(rows) + 1.2), dpi=80)
    height = 0.26
    for i, (part, cells) in enumerate(rows):
        y = len(rows) - 1 - i
        original = part.original
        if original.low is not None:
            top = original.high if original.high is not None else original.low
            ax.barh(
                y + height,
                (original.low + top) / 2,
                height,
                color="0.7",
                xerr=[[(top - original.low) / 2], [(top - original.low) / 2]],
                label="original" if i == 0 else None,
            )
        for offset, cell, color, label in (
            (0, cells[0], "tab:blue", "ours: assignment recipe"),
            (-height, cells[1], "tab:orange", "ours: improved recipe"),
        ):
            if cell.value is not None:
                ax.barh(y + offset, cell.value, height, color=color, label=label)
    ax.set_yticks(range(len(rows)))
    ax.set_yticklabels([part.label.rsplit(", ", 1)[0] for part, _ in reversed(rows)], fontsize=7)
    values = [v for _, cells in rows for v in (c.value for c in cells) if v is not None]
    values += [p.original.low for p, _ in rows if p.original.low is not None]
    ax.set_xlim(max(0.0, math.floor(min(values, default=0) / 10) * 10), 100)
    ax.set_xlabel("accuracy (%)")
    handles, labels = ax.get_legend_handles_labels()
    unique = dict(zip(labels, handles))
    ax.legend(unique.values(), unique.keys(), fontsize=7, loc="lower right")
    fig.tight_layout()
    with atomic.atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)


def replace_block(readme_text, block):
    require(
        START in readme_text and END in readme_text,
        f"README has no {START} ... {END} block to write the results table into",
    )
    before, rest = readme_text.split(START, 1)
    return before + START + "\n" + block + "\n" + END + rest.split(END, 1)[1]


def build_parser():
    parser = ArgumentParser(
        prog="python -m apps.results",
        description="Collect the latest finished run of every assignment part into docs/results.md "
        "and README's results table.",
    )
    parser.add_argument("--runs", default="runs", help="the runs folder to scan (default runs/)")
    parser.add_argument(
        "--out",
        default="docs/results.md",
        help="the page to write (default docs/results.md); the figure goes next to it as results.png",
    )
    parser.add_argument("--readme", default="README.md", help="the README holding the results block")
    parser.add_argument(
        "--update-readme",
        choices=("auto", "always", "never"),
        default="auto",
        help="auto (default): rewrite README's block when every part has a run; always; never",
    )
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    runs, out, readme = Path(args.runs), Path(args.out), Path(args.readme)
    readme_text = readme.read_text() if readme.exists() else ""
    table = collect(runs, recorded_cells(readme_text))
    figure = out.with_name("results.png")
    plot(table, figure)
    atomic.write_text(out, results_markdown(table, _data_label(args.runs).strip("`"), figure.name))
    cells = [c for _, row in table for c in row if c.measure is not None]
    missing = [c for c in cells if c.found is None]
    print(f"{out}: {len(cells) - len(missing)} of {len(cells)} numbers from runs in {runs}")
    for cell in missing:
        print(f"  not run: {cell.part.label} ({cell.column}): {cell.measure.command(cell.part.app)}")
    if args.update_readme == "always" or (args.update_readme == "auto" and not missing):
        atomic.write_text(readme, replace_block(readme_text, readme_block(table)))
        print(f"{readme}: results table rewritten")
    elif args.update_readme == "auto":
        print(
            f"{readme}: results table left as it is ({len(missing)} numbers have no run here; "
            "--update-readme always rewrites it, keeping their recorded values)"
        )
    return table


if __name__ == "__main__":
    exit_with(main)
