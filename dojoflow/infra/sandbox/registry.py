"""Sandbox backends by name: the built-in ones, third-party ones, and the warm mode over any of them.

Names:

- ``bwrap``, ``docker``, ``local``: the built-in backends;
- ``auto`` (the default, ``DOJOFLOW_SANDBOX``): ``bwrap`` where it works here, else ``local`` with a warning;
- ``warm``: the warm mode over ``auto``; ``warm-<name>``: the warm mode over backend ``<name>`` (which must
  implement :class:`~dojoflow.infra.sandbox.base.ProcessHost`);
- anything registered with :func:`register_backend`, or installed as an entry point of the
  ``dojoflow.sandboxes`` group (``[project.entry-points."dojoflow.sandboxes"] mybox = "mypkg:MyBackend"``;
  the object is called with no arguments and returns a backend). A third-party backend is one package.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable
from importlib import import_module
from importlib.metadata import EntryPoint, entry_points

from dojoflow.errors import SandboxError, UnknownNameError
from dojoflow.infra.sandbox.base import SandboxBackend

ENTRY_POINT_GROUP = "dojoflow.sandboxes"
DEFAULT_BACKEND = "auto"
WARM_PREFIX = "warm"
BackendFactory = Callable[[], SandboxBackend]

BUILTIN: dict[str, str] = {
    "bwrap": "dojoflow.infra.sandbox.bwrap:BwrapBackend",
    "docker": "dojoflow.infra.sandbox.docker_backend:DockerBackend",
    "local": "dojoflow.infra.sandbox.local:LocalBackend",
}
_REGISTERED: dict[str, BackendFactory] = {}


def register_backend(name: str, factory: BackendFactory) -> None:
    """Make ``get_backend(name)`` return ``factory()`` (for backends defined in code rather than a package)."""
    if name in BUILTIN or name == DEFAULT_BACKEND or name.startswith(WARM_PREFIX):
        raise UnknownNameError(f"'{name}' is a reserved sandbox backend name")
    _REGISTERED[name] = factory


def _plugins() -> dict[str, EntryPoint]:
    return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}


def backend_names() -> list[str]:
    """Every name :func:`get_backend` accepts, built-ins first (``warm-<name>`` for each host backend)."""
    plain = list(BUILTIN) + sorted(set(_REGISTERED) | set(_plugins()))
    return [DEFAULT_BACKEND, *plain, WARM_PREFIX, "warm-bwrap", "warm-local"]


def _factory(name: str) -> BackendFactory | None:
    if name in BUILTIN:
        module, _, attr = BUILTIN[name].partition(":")
        return getattr(import_module(module), attr)
    if name in _REGISTERED:
        return _REGISTERED[name]
    plugin = _plugins().get(name)
    if plugin is None:
        return None
    try:
        return plugin.load()
    except Exception as exc:  # noqa: BLE001 - say which plugin is broken, not a bare ImportError
        raise SandboxError(f"sandbox backend plugin '{name}' ({plugin.value}) failed to load: "
                           f"{type(exc).__name__}: {exc}") from exc


def auto_backend_name() -> str:
    """``bwrap`` where it works here, else ``local`` (with a warning: it is not isolated)."""
    from dojoflow.infra.sandbox.bwrap import bwrap_available

    ok, reason = bwrap_available()
    if not ok:
        warnings.warn(f"bubblewrap sandbox unavailable ({reason}); using the NON-isolated local sandbox",
                      RuntimeWarning, stacklevel=3)
    return "bwrap" if ok else "local"


def get_backend(name: str | None = None) -> SandboxBackend:
    """A new backend by name (default ``DOJOFLOW_SANDBOX``, else ``auto``); see the module docstring."""
    name = name or os.environ.get("DOJOFLOW_SANDBOX", DEFAULT_BACKEND)
    if name == WARM_PREFIX or name.startswith(WARM_PREFIX + "-"):
        from dojoflow.infra.sandbox.warm import WarmBackend

        return WarmBackend(get_backend(name[len(WARM_PREFIX) + 1:] or DEFAULT_BACKEND))
    if name == DEFAULT_BACKEND:
        name = auto_backend_name()
    factory = _factory(name)
    if factory is None:
        raise UnknownNameError(f"unknown sandbox backend '{name}'; available: {', '.join(backend_names())}")
    return factory()
