"""`python -m apps.bench`: an alias of `python -m benchmarks` (the training-throughput benchmark).

See `benchmarks/` for what it measures and `docs/bench.md` for results.
"""

from benchmarks.bench import build_parser, main  # noqa: F401 - re-exported for `python -m apps.bench`
from tfnets.experiment.cli import exit_with

if __name__ == "__main__":
    exit_with(main)
