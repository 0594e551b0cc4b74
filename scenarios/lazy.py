"""Packages whose public names are imported from their modules on first use (PEP 562)."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping
from typing import Any


class LazyExports:
    """A package's public names, each imported from its module when first asked for."""

    def __init__(self, package: str, modules: Mapping[str, tuple[str, ...]]) -> None:
        #: the package whose attributes these are
        self.package = package
        #: each public name -> the module that defines it
        self.exports = {name: module for module, names in modules.items() for name in names}

    def getattr(self, name: str) -> Any:
        """The public name ``name``, imported from its module (and kept in the package)."""
        module = self.exports.get(name)
        if module is None:
            raise AttributeError(f"module {self.package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        setattr(sys.modules[self.package], name, value)
        return value

    def dir(self) -> list[str]:
        """The package's names: those already imported and every public one."""
        return sorted(set(vars(sys.modules[self.package])) | set(self.exports))

    def hooks(self) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
        """The package's ``__getattr__`` and ``__dir__``."""
        return self.getattr, self.dir
