from benchmarks.bench import main
from tfnets.experiment.cli import exit_with

exit_with(main)
