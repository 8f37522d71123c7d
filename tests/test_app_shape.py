"""Every app has the same shape (docs/design.md): a declared `Config`, `build_model`, its trainings' `declare`, `run`,
`headlines`, `main`, and no classes but dataclasses. The apps are discovered (`apps.discover()`), never listed by hand."""

import dataclasses
import importlib
import inspect
from pathlib import Path

import pytest

import apps
from tfnets.experiment.config import CommonConfig

APPS = apps.discover()
# The modules of apps/ that train nothing (any exported model, the results page); `apps/_*.py` are an app's helpers.
TOOLS = {"__init__", "predict", "results"}


def test_every_module_of_apps_is_an_app_or_a_tool():
    modules = {p.stem for p in (Path(apps.__file__).parent).glob("*.py") if not p.stem.startswith("_")}
    assert modules - TOOLS == set(APPS), "a module of apps/ that is not discovered must be a tool (TOOLS)"
    assert len(APPS) >= 8


@pytest.mark.parametrize("app", APPS)
def test_an_app_has_config_build_model_declare_run_headlines_and_main(app):
    module = importlib.import_module(f"apps.{app}")
    assert module.__doc__ and "python -m apps." + app in module.__doc__  # the docstring shows how to run it
    assert issubclass(module.Config, CommonConfig) and module.Config.APP == app
    for name in ("build_model", "declare", "run", "headlines", "main"):
        assert inspect.isfunction(getattr(module, name, None)), f"apps.{app} has no function {name}()"
    assert list(inspect.signature(module.run).parameters) == ["config", "overrides"]
    assert list(inspect.signature(module.main).parameters) == ["argv"]
    classes = [obj for obj in vars(module).values() if inspect.isclass(obj) and obj.__module__ == module.__name__]
    assert all(dataclasses.is_dataclass(cls) for cls in classes), (
        f"apps.{app} defines {[c.__name__ for c in classes if not dataclasses.is_dataclass(c)]}: pass (exp, data, config)"
    )
