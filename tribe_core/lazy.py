"""Public names of a package that load on first use (PEP 562), so light submodules stay light.

The workflow imports light modules such as ``tribe_core.features.spec`` when it
builds the DAG; importing one runs its package's ``__init__``, which must then not
import torch. Such a package lists its public names as ordinary imports under
``if TYPE_CHECKING:`` (what mypy and editors read) and in ``__all__``, and gets its
``__getattr__`` / ``__dir__`` from :func:`lazy_exports`: each name is imported from
its module the first time it is asked for.
"""

from __future__ import annotations

import ast
import importlib
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any


def lazy_exports(package: str) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``(__getattr__, __dir__)`` of ``package``, from the imports its ``__init__`` guards.

    Parameters
    ----------
    package
        The package's ``__name__``; its ``__init__`` has run up to this call.

    Raises
    ------
    ImportError
        ``__all__`` and the ``if TYPE_CHECKING:`` imports name different things.
    """
    namespace = sys.modules[package].__dict__
    homes = _type_checking_imports(Path(namespace["__file__"]).read_text(encoding="utf-8"))
    if set(homes) != set(namespace.get("__all__", ())):
        raise ImportError(
            f"{package}: __all__ and the TYPE_CHECKING imports differ: "
            f"{sorted(set(homes) ^ set(namespace.get('__all__', ())))}"
        )

    def __getattr__(name: str) -> Any:
        if name not in homes:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(homes[name]), name)
        namespace[name] = value  # later look-ups are plain attribute reads
        return value

    def __dir__() -> list[str]:
        return sorted({*namespace, *homes})

    return __getattr__, __dir__


def _type_checking_imports(source: str) -> dict[str, str]:
    """Name -> module of each ``from module import name`` under ``if TYPE_CHECKING:``."""
    homes: dict[str, str] = {}
    for node in ast.parse(source).body:
        if isinstance(node, ast.If) and ast.unparse(node.test) == "TYPE_CHECKING":
            for stmt in node.body:
                if isinstance(stmt, ast.ImportFrom) and stmt.module:
                    homes.update({a.asname or a.name: stmt.module for a in stmt.names})
    return homes
