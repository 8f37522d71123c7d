"""The result of `tfnets.check.check`: one `CheckResult` per check, a text table and JSON."""

import dataclasses
import json
import math
import re

import numpy as np

PASS, FAIL, SKIP = "PASS", "FAIL", "SKIP"

# (name, title) in the order they run; `--only` takes the names or the numbers.
CHECKS = (
    ("forward", "forward"),
    ("gradient", "gradient vs numbers"),
    ("variables", "variables reached"),
    ("batch", "batch consistency"),
    ("graph", "graph and XLA"),
    ("precision", "mixed precision"),
    ("replicas", "two replicas"),
    ("serialization", "serialisation"),
    ("trains", "it trains"),
)
NAMES = tuple(name for name, _ in CHECKS)
TITLES = dict(CHECKS)


@dataclasses.dataclass
class CheckResult:
    """One check: PASS/FAIL/SKIP, the number it measured against its bound (None where it measures none), a one-line
    hint or reason, and details (per-weight numbers) for the JSON."""

    name: str
    status: str
    value: float = None
    bound: float = None
    hint: str = ""
    details: dict = dataclasses.field(default_factory=dict)
    seconds: float = 0.0

    @property
    def number(self):
        return NAMES.index(self.name) + 1

    def to_dict(self):
        return {
            "check": self.name,
            "number": self.number,
            "title": TITLES[self.name],
            "status": self.status,
            "value": _json_number(self.value),
            "bound": _json_number(self.bound),
            "hint": self.hint,
            "details": _jsonable(self.details),
            "seconds": round(self.seconds, 2),
        }


@dataclasses.dataclass
class Report:
    """Every check's result for one layer or op. `ok`: no check failed (skipped ones do not count)."""

    target: str
    checks: list
    seconds: float = 0.0

    @property
    def ok(self):
        return all(c.status != FAIL for c in self.checks)

    @property
    def failed(self):
        return [c.name for c in self.checks if c.status == FAIL]

    def __getitem__(self, name):
        for c in self.checks:
            if c.name == name:
                return c
        raise KeyError(name)

    def to_dict(self):
        return {
            "target": self.target,
            "ok": self.ok,
            "seconds": round(self.seconds, 2),
            "checks": [c.to_dict() for c in self.checks],
        }

    def to_json(self, indent=2):
        return json.dumps(self.to_dict(), indent=indent)

    def __str__(self):
        lines = [f"tfnets.check: {self.target}", f"  {'check':<24} {'status':<6} {'measured':>9} {'bound':>9}  note"]
        for c in self.checks:
            title = f"{c.number} {TITLES[c.name]}"
            lines.append(f"  {title:<24} {c.status:<6} {_fmt(c.value):>9} {_fmt(c.bound):>9}  {c.hint}".rstrip())
        verdict = "all checks pass" if self.ok else f"FAILED: {', '.join(self.failed)}"
        skipped = sum(c.status == SKIP for c in self.checks)
        lines.append(f"{verdict}{f' ({skipped} skipped)' if skipped else ''}; {self.seconds:.1f} s")
        return "\n".join(lines)


def _fmt(value):
    if value is None:
        return "-"
    if isinstance(value, float) and math.isinf(value):
        return "inf"
    if isinstance(value, int):
        return str(value)
    return f"{value:.1e}"


def _json_number(value):
    if value is None or isinstance(value, int):
        return value
    value = float(value)
    return value if math.isfinite(value) else str(value)


def _jsonable(value):
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return _json_number(value)
    if hasattr(value, "item"):
        return _jsonable(value.item())
    return value


def error_line(err, limit=160):
    """`Type: first line of the message`, cut to `limit` characters: a hint stays one line. Keras's wrapper line
    ("Exception encountered when calling ...") and its terminal colour codes are left out."""
    text = re.sub(r"\x1b\[[0-9;]*m|\{\{function_node [^}]*\}\}\s*", "", str(err))
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    lines = [line for line in lines if not line.startswith("Exception encountered when calling")] or lines
    text = f"{type(err).__name__}: {lines[0] if lines else ''}".rstrip(": ")
    return text if len(text) <= limit else text[: limit - 3] + "..."


def norm_error(a, b):
    """||a - b|| / ||b|| (inf when the shapes differ): how far a result is from its reference, as a whole."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.shape != b.shape:
        return float("inf")
    return float(np.linalg.norm(a - b)) / max(float(np.linalg.norm(b)), 1e-300)


def join_hints(pairs):
    """[(name, hint), ...] -> one line; names that share a hint share its text ("kernel, bias: ...")."""
    grouped = {}
    for name, hint in pairs:
        grouped.setdefault(hint, []).append(name)
    return "; ".join(f"{', '.join(names)}: {hint}" for hint, names in grouped.items())


def with_shape_hint(text):
    """An update that fails on shapes is almost always a gradient shaped unlike its weight: say so."""
    shapes = ("Incompatible shapes", "Cannot update variable with shape", "shape mismatch")
    if any(word in text for word in shapes):
        return text + " (a gradient shaped unlike its weight: see check 2)"
    return text
