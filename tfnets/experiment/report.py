"""`report.md`: the tables and figures of a run, rewritten atomically whenever something is added."""

import contextlib
import csv
import io
from pathlib import Path

from tfnets import atomic


def markdown_table(rows, columns=None, floatfmt=".4f"):
    """A GitHub markdown table from a list of dicts."""
    if not rows:
        return "_(no rows)_\n"
    columns = columns or list(dict.fromkeys(k for row in rows for k in row))

    def cell(value):
        if isinstance(value, float):
            return format(value, floatfmt)
        return str(value)

    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(row.get(c, "")) for c in columns) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def write_csv(path, rows, columns=None):
    columns = columns or list(dict.fromkeys(k for row in rows for k in row))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    atomic.write_text(path, buffer.getvalue())


class Report:
    """Sections of markdown under a title; images are linked relative to the report's folder."""

    def __init__(self, path, title, writing=contextlib.nullcontext):
        """`writing`: a context manager around each save (a run's `Run.writing`, which words a full disk's error)."""
        self.path = Path(path)
        self.title = title
        self.sections = []
        self.writing = writing

    def add(self, heading, body=""):
        self.sections.append(f"## {heading}\n\n{body.rstrip()}\n")
        self.save()

    def add_table(self, heading, rows, columns=None, note=""):
        self.add(heading, (note + "\n\n" if note else "") + markdown_table(rows, columns))

    def add_image(self, heading, image_path, note=""):
        relative = Path(image_path).resolve().relative_to(self.path.parent.resolve())
        self.add(heading, (note + "\n\n" if note else "") + f"![{heading}]({relative.as_posix()})")

    def save(self):
        with self.writing():
            atomic.write_text(self.path, f"# {self.title}\n\n" + "\n".join(self.sections))
