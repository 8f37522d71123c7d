"""Every app has the same shape (docs/design.md): the same entry points, and no classes but settings dataclasses."""

import dataclasses
import importlib
import inspect
from pathlib import Path

import pytest

import apps
from tfnets.experiment.config import CommonConfig

# Every module in apps/ but the ones that train nothing (any exported model, the results page, the benchmark alias)
# and an app's helper modules (`apps/_<app>_<job>.py`: a leading underscore says "not an app").
NOT_TRAINING = {"__init__", "predict", "results", "bench"}
DECLARED = apps.discover()
APPS = sorted(
    p.stem
    for p in (Path(__file__).parent.parent / "apps").glob("*.py")
    if p.stem not in NOT_TRAINING and p.stem not in DECLARED and not p.stem.startswith("_")
)
ENTRY_POINTS = ("build_parser", "build_model", "get_config", "main")


@pytest.mark.parametrize("app", APPS)
def test_an_app_has_the_shared_entry_points_and_only_dataclasses(app):
    module = importlib.import_module(f"apps.{app}")
    assert module.__doc__ and "python -m apps." + app in module.__doc__  # the docstring shows how to run it
    for name in ENTRY_POINTS:
        assert inspect.isfunction(getattr(module, name, None)), f"apps.{app} has no function {name}()"
    classes = [obj for obj in vars(module).values() if inspect.isclass(obj) and obj.__module__ == module.__name__]
    assert all(dataclasses.is_dataclass(cls) for cls in classes), (
        f"apps.{app} defines {[c.__name__ for c in classes if not dataclasses.is_dataclass(c)]}: pass (exp, data, args)"
    )
    assert list(inspect.signature(module.main).parameters)[:1] == ["argv"]


def test_there_are_eight_training_apps():
    assert len(APPS) + len(DECLARED) == 8, APPS  # a new module in apps/ is an app of this shape or in NOT_TRAINING


@pytest.mark.parametrize("app", DECLARED)
def test_a_declared_app_has_config_build_model_run_and_main(app):
    module = importlib.import_module(f"apps.{app}")
    assert module.__doc__ and "python -m apps." + app in module.__doc__  # the docstring shows how to run it
    assert issubclass(module.Config, CommonConfig) and module.Config.APP == app
    for name in ("build_model", "run", "main"):
        assert inspect.isfunction(getattr(module, name, None)), f"apps.{app} has no function {name}()"
    assert list(inspect.signature(module.run).parameters) == ["config", "overrides"]
    assert list(inspect.signature(module.main).parameters) == ["argv"]
    classes = [obj for obj in vars(module).values() if inspect.isclass(obj) and obj.__module__ == module.__name__]
    assert all(dataclasses.is_dataclass(cls) for cls in classes)
