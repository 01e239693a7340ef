"""``counting-local``: dojoflow's local backend that also counts the steps it ran.

A sandbox backend is any object with ``name``, ``isolated``, ``run(request) -> ExecutionResult`` and
``close()`` (:class:`~dojoflow.api.SandboxBackend`); this one inherits the local backend's
:class:`~dojoflow.api.ProcessHost` hooks too, so ``warm-counting-local`` works as well.
"""

from __future__ import annotations

from dojoflow.api import ExecutionRequest, ExecutionResult
from dojoflow.infra.sandbox.local import LocalBackend


class CountingLocalBackend(LocalBackend):
    """The local backend, counting steps (``steps_run``)."""

    name = "counting-local"

    def __init__(self) -> None:
        self.steps_run = 0

    def run(self, request: ExecutionRequest) -> ExecutionResult:
        """Run as the local backend does; count it."""
        self.steps_run += 1
        result = super().run(request)
        result.backend = self.name
        return result
