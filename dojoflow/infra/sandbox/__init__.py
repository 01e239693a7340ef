"""Sandboxes run one agent step's code in the episode workspace, with limits, and report what happened.

Layers, each its own module:

- ``base``: the contract - :class:`ExecutionRequest` in, :class:`ExecutionResult` out, the
  :class:`SandboxBackend` protocol and the optional :class:`ProcessHost` hooks of the warm mode;
- ``registry``: backends by name (built-in, registered, ``dojoflow.sandboxes`` entry points, ``warm-*``);
- ``process`` (command, clean environment, rlimits, wall-clock kill), ``workspace`` (layout, ownership,
  the after-step check), ``capture`` (bounded output): shared by the backends;
- the backends: ``local``, ``bwrap``, ``docker``; ``warm`` composes any ``ProcessHost``;
- ``inside/``: the programs that run inside a sandbox (the warm worker, the rlimits), standard library only.

Nothing the agent's code does may raise out of ``run``.
"""

from dojoflow.infra.sandbox.base import (
    ExecutionLimits,
    ExecutionRequest,
    ExecutionResult,
    Mount,
    ProcessHost,
    SandboxBackend,
)
from dojoflow.infra.sandbox.process import python_command
from dojoflow.infra.sandbox.registry import backend_names, get_backend, register_backend

__all__ = ["ExecutionLimits", "ExecutionRequest", "ExecutionResult", "Mount", "ProcessHost", "SandboxBackend",
           "backend_names", "get_backend", "python_command", "register_backend"]
