"""Packages whose public names are imported on first use (``scenarios.lazy``)."""

from __future__ import annotations

import importlib
from types import ModuleType

import pytest

import scenarios
import solvers.allocation

#: every package whose names :class:`~scenarios.lazy.LazyExports` imports
LAZY_PACKAGES = [scenarios, solvers.allocation]


@pytest.mark.parametrize("package", LAZY_PACKAGES, ids=lambda p: p.__name__)
def test_every_public_name_is_the_one_its_module_defines(package: ModuleType) -> None:
    exports = package._LAZY.exports
    for name in package.__all__:
        module = importlib.import_module(exports[name])
        assert getattr(package, name) is getattr(module, name), name
    assert sorted(exports) == sorted(package.__all__)  # no name left out
    assert set(package.__all__) <= set(dir(package))


@pytest.mark.parametrize("package", LAZY_PACKAGES, ids=lambda p: p.__name__)
def test_an_unknown_name_is_an_attribute_error(package: ModuleType) -> None:
    with pytest.raises(AttributeError, match=f"'{package.__name__}' has no attribute 'Nope'"):
        _ = package.Nope
