"""Optional dependencies: import one for a feature, or fail with the pip command that installs its extra."""

from __future__ import annotations

import importlib
from types import ModuleType


class MissingExtra(ImportError):
    """A feature needs a package that is not installed; the message names `pip install 'distdqn[extra]'`."""


def require(module: str, extra: str, feature: str) -> ModuleType:
    """`import module`, or a `MissingExtra` saying that `feature` needs it and which extra provides it."""
    try:
        return importlib.import_module(module)
    except ImportError as error:
        raise MissingExtra(
            f"{feature} needs {module.split('.')[0]} ({error}): pip install 'distdqn[{extra}]'"
        ) from error
