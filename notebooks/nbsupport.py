"""What the notebooks here share: the run size and folders they pass to the apps, and showing tables and figures.

Each notebook sets `QUICK` from `TFNETS_QUICK=1` and calls `app_options(QUICK, app)` for its `run(...)` keywords:
quick runs use the apps' `--quick` scale (a tiny real subset); full runs use the apps' defaults and the same
`runs/` and `saved_models/` folders as the command line, so a finished `python -m apps.<app>` is found (same
configuration, same run folder) and only evaluated. `TFNETS_NOTEBOOK_OUT` and `TFNETS_NOTEBOOK_EXPORT` move the run
and export folders elsewhere (the tests point them at a temporary folder so nothing is written into the checkout).
"""

import io
import os
import re
from pathlib import Path

from IPython.display import Image, Markdown, display

from tfnets.experiment.report import markdown_table


def repo_root(start=None):
    """The checkout this notebook belongs to: the first folder at or above `start` (default the working directory)
    that holds `apps/`. A notebook built into `build/notebooks/` and opened there still finds it."""
    here = Path(start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / "apps" / "__init__.py").is_file():
            return folder
    raise FileNotFoundError(f"no tfnets checkout (a folder with apps/) at or above {here}")


def app_options(quick, app, **quick_overrides):
    """The keywords every `apps.<app>.run(...)` call of a notebook takes: `quick=True` plus `quick_overrides` (a
    smaller part of the app, fewer epochs) when `quick`; the run and export folders when the environment moves them.
    Full runs get no overrides at all: the command line's configuration, hence its run folder."""
    options = {"quick": True, **quick_overrides} if quick else {}
    if os.environ.get("TFNETS_NOTEBOOK_OUT"):
        options["out"] = os.environ["TFNETS_NOTEBOOK_OUT"]
    if os.environ.get("TFNETS_NOTEBOOK_EXPORT"):
        options["export_dir"] = str(Path(os.environ["TFNETS_NOTEBOOK_EXPORT"]) / app)
    return options


def scale_note(quick):
    """The sentence that qualifies every number of a quick run."""
    if quick:
        return (
            "These numbers come from a quick run (a tiny real subset, one or two epochs): they only show the code runs."
        )
    return "These numbers come from the full run (the apps' default configuration)."


def table(rows, columns=None, floatfmt=".4f"):
    """A list of dicts shown as a markdown table."""
    display(Markdown(markdown_table(rows, columns, floatfmt=floatfmt)))


def figure(path):
    """A PNG an app wrote into its run folder, shown inline."""
    display(Image(filename=str(path)))


def show(fig):
    """A matplotlib figure shown inline. The apps switch matplotlib to its Agg backend (no display on servers), so
    the figure is rendered to PNG here rather than through the notebook's own backend."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    fig.clf()
    display(Image(data=buffer.getvalue()))


def section(run_path, heading):
    """Shows the section(s) of a run's `report.md` whose heading starts with `heading`: the app's own tables as a
    table, then its figures inline (the report links them relative to the run folder)."""
    run_path = Path(run_path)
    text = (run_path / "report.md").read_text()
    found = False
    for part in re.split(r"^## ", text, flags=re.M)[1:]:
        title, _, body = part.partition("\n")
        if not title.startswith(heading):
            continue
        found = True
        images = re.findall(r"^!\[.*\]\((.*)\)\s*$", body, flags=re.M)
        body = re.sub(r"^!\[.*\]\(.*\)\s*$", "", body, flags=re.M).strip()
        display(Markdown(f"**{title}**" + (f"\n\n{body}" if body else "")))
        for image in images:
            figure(run_path / image)
    if not found:
        raise KeyError(f"no section starting {heading!r} in {run_path / 'report.md'}")


def run_folder(result, app):
    """The app's own run folder (`<out>/<app>/<run-id>/`, where its report.md is) from a result whose `run_path` may
    be a part's or a trial's sub-folder of it."""
    path = Path(result.run_path).resolve()
    for folder in (path, *path.parents):
        if folder.parent.name == app:
            return folder
    raise FileNotFoundError(f"{path} is not inside a run folder of {app}")
