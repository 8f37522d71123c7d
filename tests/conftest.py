"""Shared fixtures.

Real-data tests read `TFNETS_DATA_DIR`. Without it they skip with a reason; `.ci/run` sets
`TFNETS_REQUIRE_DATA=1` so that a missing dataset fails CI instead of silently skipping.
"""

import contextlib
import io
import os
import sys
from pathlib import Path

import pytest

from tfnets.experiment.quiet import quiet_tensorflow

# As for the apps: TF's C++ log lines hidden (unless TF_CPP_MIN_LOG_LEVEL is set), set up before TF is imported.
quiet_tensorflow()


def _data_dir():
    value = os.environ.get("TFNETS_DATA_DIR")
    return Path(value).resolve() if value else None


@pytest.fixture(scope="session")
def data_dir():
    path = _data_dir()
    if path is None or not path.is_dir():
        reason = f"real data not available (TFNETS_DATA_DIR={os.environ.get('TFNETS_DATA_DIR')!r})"
        if os.environ.get("TFNETS_REQUIRE_DATA") == "1":
            pytest.fail(reason + " but TFNETS_REQUIRE_DATA=1")
        pytest.skip(reason)
    return path


def require_file(data_dir, relative):
    """Return data_dir/relative, skipping (or failing under TFNETS_REQUIRE_DATA=1) when absent."""
    path = data_dir / relative
    if not path.exists():
        reason = f"{path} not found"
        if os.environ.get("TFNETS_REQUIRE_DATA") == "1":
            pytest.fail(reason + " but TFNETS_REQUIRE_DATA=1")
        pytest.skip(reason)
    return path


def run_script_here(script, *argv):
    """Run a `python -c` script in this process (a TensorFlow start-up less than a child process) with `argv` as its
    arguments; returns what it printed."""
    printed, saved_argv = io.StringIO(), sys.argv
    sys.argv = ["-c", *map(str, argv)]
    try:
        with contextlib.redirect_stdout(printed):
            exec(compile(script, "<script>", "exec"), {"__name__": "__main__"})
    finally:
        sys.argv = saved_argv
    return printed.getvalue()


@pytest.fixture(autouse=True)
def _release_folder_locks():
    """Tests call apps' `main` in-process many times: free the run/export folder locks after each test, as the
    end of a real command does, so a later subprocess on the same folder is not refused."""
    yield
    from tfnets.experiment import distribute, locks

    locks.release_all()
    distribute.reset()


def onednn_capped_below_avx512():
    """True when `ONEDNN_MAX_CPU_ISA` caps oneDNN below AVX-512 on a CPU that has it: a developer's stand-in for an
    older CPU. TensorFlow still chooses oneDNN's bfloat16 kernels from what the CPU reports, and the capped oneDNN
    then aborts the process. A real CPU without AVX-512 gets TensorFlow's Eigen bfloat16 kernels instead."""
    isa = os.environ.get("ONEDNN_MAX_CPU_ISA", "").upper()
    if not isa or isa in ("ALL", "DEFAULT") or "AVX512" in isa or "AVX10" in isa:
        return False
    if os.environ.get("TF_ENABLE_ONEDNN_OPTS") == "0":
        return False
    try:
        return "avx512f" in Path("/proc/cpuinfo").read_text().split()
    except OSError:
        return False


@pytest.hookimpl(tryfirst=True)  # before xdist reads the groups
def pytest_collection_modifyitems(config, items):
    """With pytest-xdist's `--dist loadgroup` (`make test`): the tests that share a module-scoped fixture (a quick
    run of an app, a reference training) go to one worker together, so that fixture runs once, not once per worker
    that happens to get one of them (tens of seconds each). Under an emulated older CPU (see
    `onednn_capped_below_avx512`) the bf16 tests are skipped with the reason."""
    if onednn_capped_below_avx512():
        reason = (
            f"ONEDNN_MAX_CPU_ISA={os.environ['ONEDNN_MAX_CPU_ISA']} on an AVX-512 CPU aborts in oneDNN's bf16 "
            "kernels; run `-m bf16` with TF_ENABLE_ONEDNN_OPTS=0 for the Eigen kernels of a CPU without AVX-512"
        )
        for item in items:
            if item.get_closest_marker("bf16"):
                item.add_marker(pytest.mark.skip(reason=reason))
    for item in items:
        fixtures = getattr(item, "_fixtureinfo", None)
        shared = fixtures and any(defs[-1].scope == "module" for defs in fixtures.name2fixturedefs.values())
        if shared:
            item.add_marker(pytest.mark.xdist_group(item.module.__name__))
