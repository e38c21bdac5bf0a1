"""Pickle the submitter's own code by value: the evaluation image has none of their modules.

cloudpickle already does this for ``__main__`` (notebooks); classes and functions imported from
the submitter's own files (``from my_features import add_ratios``) would otherwise be pickled by
reference and fail to import in the sandbox.
"""

from __future__ import annotations

import inspect
import sys
import sysconfig
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from types import ModuleType


def user_modules(objects: Iterable[object]) -> list[ModuleType]:
    """Importable modules defining these functions/objects' classes that are neither libraries nor __main__."""
    found: dict[str, ModuleType] = {}
    for obj in objects:
        module = inspect.getmodule(obj if inspect.isroutine(obj) or inspect.isclass(obj) else type(obj))
        if module is not None and module.__name__ != "__main__" and not is_library(module):
            found.setdefault(module.__name__, module)
    return list(found.values())


@contextmanager
def pickled_by_value(modules: list[ModuleType]) -> Iterator[None]:
    import cloudpickle

    for module in modules:
        cloudpickle.register_pickle_by_value(module)
    try:
        yield
    finally:
        for module in modules:
            cloudpickle.unregister_pickle_by_value(module)


def is_library(module: ModuleType) -> bool:
    """Installed packages and the standard library (Podium included): present in the evaluator too."""
    if module.__name__.split(".")[0] in {*sys.stdlib_module_names, "podium", "builtins"}:
        return True
    location = getattr(module, "__file__", None) or ""
    roots = {sysconfig.get_paths()[key] for key in ("purelib", "platlib", "stdlib")}
    return not location or "site-packages" in location or any(location.startswith(root) for root in roots)
