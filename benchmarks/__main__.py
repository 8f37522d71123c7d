from benchmarks.bench import main
from tfnets.cli import exit_with

exit_with(main)
