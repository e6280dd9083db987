"""Package re-exports imported on first use (PEP 562).

A package lists the names it re-exports by module; `lazy_exports` gives it the
`__getattr__`, `__dir__` and `__all__` that import each module only when one of its names
is first asked for. So `from storylab.runner import ParameterError` in a notebook's first
cell does not pay for papermill, and `from storylab.transformer import ModelConfig` does
not pay for TransformerLens.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any, Callable


def lazy_exports(package: str, exports: dict[str, list[str]], namespace: dict[str, Any]
                 ) -> tuple[Callable[[str], Any], Callable[[], list[str]], list[str]]:
    """`(__getattr__, __dir__, __all__)` for `package`, whose `exports` map a submodule to the
    names it defines; `namespace` is the package's `globals()` (each name is cached there)."""
    module_of = {name: module for module, names in exports.items() for name in names}
    public = sorted(module_of)

    def __getattr__(name: str):
        module = module_of.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(import_module(f"{package}.{module}"), name)
        namespace[name] = value  # later lookups skip this function
        return value

    def __dir__() -> list[str]:
        return sorted({*namespace, *public})

    return __getattr__, __dir__, public
