"""Reading a finished run folder's numbers back: what an app's `headlines(run_path)` is written with.

Each app says, next to the code that writes its folders, which numbers of a finished run the results page quotes
(`headlines(run_path) -> {name: (value, file)}`), so no other module names an app's sub-folders or files. A reader
returns None while the file that proves the training finished is missing or unreadable.
"""

import csv
import json
from pathlib import Path


def read_json(path):
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None


def csv_rows(path):
    """The rows of a CSV table as dicts, or None when it cannot be read."""
    try:
        with open(path, newline="") as handle:
            return list(csv.DictReader(handle))
    except OSError:
        return None


def metric(folder, key="test_accuracy", where="final"):
    """`(metrics.json[where][key], metrics.json's path)` of a run folder, or None."""
    path = Path(folder) / "metrics.json"
    value = ((read_json(path) or {}).get(where) or {}).get(key)
    return None if value is None else (value, path)


def collect(**found):
    """The headlines that were found: `collect(a=metric(...), b=None)` -> `{"a": (value, path)}`."""
    return {name: hit for name, hit in found.items() if hit is not None}
