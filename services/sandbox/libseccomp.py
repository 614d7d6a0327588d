"""libseccomp's own Python binding (Debian's python3-seccomp), found for this interpreter.

Debian installs the binding, a C extension, for /usr/bin/python3 into its dist-packages; the
service runs in a virtualenv that does not see that directory. Rather than putting the whole
of dist-packages on sys.path, only that one extension is loaded, and only the file built for this
interpreter's ABI (`seccomp.cpython-311-x86_64-linux-gnu.so` on CPython 3.11 on x86_64): another
Python version finds no file and gets a reason instead of a crash.
"""

from __future__ import annotations

import functools
import importlib
import importlib.machinery
import importlib.util
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

DIST_PACKAGES = (Path("/usr/lib/python3/dist-packages"),)
MODULE = "seccomp"
PACKAGE = "python3-seccomp"


@dataclass(frozen=True)
class Binding:
    """The loaded binding, or why there is none."""

    module: ModuleType | None
    origin: str | None = None
    reason: str | None = None


def abi_suffix() -> str:
    """This interpreter's tagged extension suffix (e.g. `.cpython-311-x86_64-linux-gnu.so`)."""
    return importlib.machinery.EXTENSION_SUFFIXES[0]


@functools.cache
def load() -> Binding:
    """The binding: `import seccomp` when it is on the path, else Debian's file for our ABI."""
    try:
        module = importlib.import_module(MODULE)
        return Binding(module, getattr(module, "__file__", None))
    except ImportError:
        return find(DIST_PACKAGES)


def find(directories: tuple[Path, ...]) -> Binding:
    """The binding built for this interpreter's ABI in the first of `directories` holding it."""
    name = MODULE + abi_suffix()
    for directory in directories:
        path = directory / name
        if path.is_file():
            return _load_file(path)
    where = ", ".join(str(d) for d in directories)
    return Binding(None, reason=f"{name} not found in {where} (install Debian's {PACKAGE})")


def _load_file(path: Path) -> Binding:
    """Load one extension file as the module `seccomp`."""
    loader = importlib.machinery.ExtensionFileLoader(MODULE, str(path))
    spec = importlib.util.spec_from_file_location(MODULE, path, loader=loader)
    if spec is None:
        return Binding(None, reason=f"{path} is not a loadable extension")
    try:
        module = importlib.util.module_from_spec(spec)
        loader.exec_module(module)
    except (ImportError, OSError) as exc:
        return Binding(None, reason=f"{path} did not load: {exc}")
    return Binding(module, str(path))
