"""Import kubernetes-asyncio's generated client on demand instead of all at once.

`import kubernetes_asyncio` runs `client/__init__.py`, which imports every generated API class and
model (~850 modules, a large share of the pipeline's memory budget; see docs/performance.md),
for a process that uses three API classes (core/v1 and events.k8s.io/v1 Events,
coordination/v1 Leases) and a handful of models. `install()` registers the four package modules
(`kubernetes_asyncio`, `.client`, `.client.api`, `.client.models`) as lazy modules: each name the
real `__init__.py` exports is imported from its own module the first time it is read (PEP 562
`__getattr__`). The name → module map is read from those `__init__.py` files, so it always matches
the installed version; code (ours and the library's own `ApiClient.deserialize`, which looks
models up with `getattr(client.models, name)`) sees the same objects as with an eager import.
"""

from __future__ import annotations

import importlib
import importlib.machinery
import importlib.util
import re
import sys
import types
from pathlib import Path

PACKAGE = "kubernetes_asyncio"
# The generated `__init__.py` files are one `from <module> import <Name>` line per export.
_EXPORT_LINE = re.compile(r"^from (kubernetes_asyncio\.[\w.]+) import (\w+)\s*$", re.MULTILINE)
_VERSION_LINE = re.compile(r"^__version__ = \"([^\"]+)\"", re.MULTILINE)
# The packages whose `__init__.py` import everything; subpackages like `config`, `watch` and
# `stream` import only what they use and load normally on first access.
LAZY_PACKAGES = ("", ".client", ".client.api", ".client.models")


class LazyPackage(types.ModuleType):
    """A package module whose exported names are imported on first attribute access."""

    def __init__(self, name: str, directory: Path) -> None:
        super().__init__(name)
        init = directory / "__init__.py"
        source = init.read_text(encoding="utf-8")
        self._exports = {name: module for module, name in _EXPORT_LINE.findall(source)}
        self.__file__ = str(init)
        self.__path__ = [str(directory)]
        self.__package__ = name
        self.__spec__ = importlib.machinery.ModuleSpec(name, None, is_package=True)
        self.__spec__.submodule_search_locations = [str(directory)]
        self.__all__ = list(self._exports)
        version = _VERSION_LINE.search(source)
        if version:
            self.__version__ = version.group(1)

    def __getattr__(self, attr: str) -> object:
        module_name = self._exports.get(attr)
        if module_name is None:
            if attr.startswith("__"):
                raise AttributeError(attr)
            # A subpackage or module (`kubernetes_asyncio.config`, `client.rest`, ...).
            try:
                return importlib.import_module(f"{self.__name__}.{attr}")
            except ModuleNotFoundError as exc:
                if exc.name != f"{self.__name__}.{attr}":
                    raise
                missing = f"module {self.__name__!r} has no attribute {attr!r}"
                raise AttributeError(missing) from None
        value = getattr(importlib.import_module(module_name), attr)
        setattr(self, attr, value)  # later reads skip __getattr__
        return value

    def __dir__(self) -> list[str]:
        return sorted(set(super().__dir__()) | set(self._exports))


def install() -> bool:
    """Register the lazy packages, unless kubernetes_asyncio is already imported (then eager
    modules are in place and replacing them would hand out two copies of each class).
    Returns whether the lazy packages are in use."""
    if PACKAGE in sys.modules:
        return isinstance(sys.modules[PACKAGE], LazyPackage)
    spec = importlib.util.find_spec(PACKAGE)  # locates the package without running it
    if spec is None or not spec.submodule_search_locations:
        return False
    root = Path(next(iter(spec.submodule_search_locations)))
    for suffix in LAZY_PACKAGES:
        name = PACKAGE + suffix
        module = LazyPackage(name, root.joinpath(*suffix.split(".")[1:]))
        sys.modules[name] = module
        parent, _, child = name.rpartition(".")
        if parent:
            setattr(sys.modules[parent], child, module)
    return True
