"""Runnable apps, one per assignment task: `python -m apps.<name> --help`.

Every app parses its arguments before importing TensorFlow (heavy modules are bound with
`tfnets.experiment.lazy.lazy_import` or imported inside the functions that use them), and runs through
`tfnets.experiment.cli.exit_with`, which keeps TensorFlow's C++ log lines quiet unless `--debug` is given.
"""
