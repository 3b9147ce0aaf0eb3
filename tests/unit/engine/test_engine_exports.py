"""The engine package's names load on first use; each is the object of the module it lives in."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest
import segmentation.engine as engine


@pytest.mark.parametrize("name", engine.__all__)
def test_every_exported_name_is_its_home_modules_object(name: str) -> None:
    home = importlib.import_module(f"segmentation.engine.{engine._HOMES[name]}")
    assert getattr(engine, name) is getattr(home, name)


def test_an_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no_such_name"):
        engine.no_such_name  # noqa: B018


def test_reading_timestamps_does_not_load_the_compiler() -> None:
    """The authorizer's path (values -> engine.timestamps) stays clear of the evaluator."""
    probe = "import sys, segmentation.values; print('segmentation.engine.compiler' in sys.modules)"
    done = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONPATH": "layers/segmentation"},
    )
    assert done.stdout.strip() == "False"
