"""Value parsers shared by the configuration (`tfnets.experiment.config`) and the plain command lines: text (or, for
lists, a list) -> a checked value, or a `ValueError` whose message is the one line a user sees."""


def positive_int(text):
    try:
        value = int(text)
    except (TypeError, ValueError):
        raise ValueError(f"expected a positive integer, got {text!r}") from None
    if isinstance(text, float) and text != value:
        raise ValueError(f"expected a positive integer, got {text!r}")
    if value < 1:
        raise ValueError(f"expected a positive integer, got {value}")
    return value


def positive_float(text):
    try:
        value = float(text)
    except (TypeError, ValueError):
        raise ValueError(f"expected a positive number, got {text!r}") from None
    if not value > 0:
        raise ValueError(f"expected a positive number, got {value}")
    return value


def steps_per_execution(text):
    """`"epoch"` (one graph call per epoch) or `1` (one per batch)."""
    value = str(text).strip().lower()
    if value in ("epoch", "1"):
        return "epoch" if value == "epoch" else 1
    raise ValueError(f"expected 'epoch' or 1, got {text!r}")


def int_list(text):
    """`"100,500,1000"` -> `(100, 500, 1000)`, each positive (a list or tuple passes through, checked)."""
    parts = text.split(",") if isinstance(text, str) else list(text)
    return tuple(positive_int(part) for part in parts if str(part).strip())


def float_list(text):
    parts = text.split(",") if isinstance(text, str) else list(text)
    try:
        return tuple(float(part) for part in parts if str(part).strip())
    except ValueError:
        raise ValueError(f"expected comma-separated numbers, got {text!r}") from None
