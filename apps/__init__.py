"""Runnable apps, one per assignment task: `python -m apps.<name> --help`."""
import os

# TF's C++ start-up chatter is noise for a command-line user; real warnings still come through Python.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
