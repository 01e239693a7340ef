"""The ``local`` backend: a subprocess with rlimits, a scrubbed environment and a wall-clock kill.

It is NOT isolated: the code can read any file the harness user can (including prepared private
answers) and can reach the network. It is the fallback for platforms without bubblewrap or docker and
says so (``isolated = False``). What it does enforce: wall time (the whole process group is killed),
CPU time, address space, file size, process count, output size, and an environment with no host secrets.
Leftover processes are killed with the step's process group; a process that starts a session of its own
(``setsid``) escapes that kill here - the bubblewrap backend's PID namespace is what stops it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from dojoflow.infra.sandbox.base import ExecutionRequest, ExecutionResult, HostedProcess, StepContext
from dojoflow.infra.sandbox.inside import rlimits
from dojoflow.infra.sandbox.process import run_limited, sandbox_environment
from dojoflow.infra.sandbox.workspace import DATA_DIR, TMP_DIR, ensure_directory, kind_of, remove_any


class LocalBackend:
    """Subprocess in its own session and process group; see the module docstring for what it cannot stop."""

    name = "local"
    isolated = False
    pid_namespace = False
    signal_exit_base = None

    def close(self) -> None:
        """Nothing is held between steps."""

    def prepare_workspace(self, request: ExecutionRequest) -> None:
        """Expose the public data as ``data/`` (a symlink: not read-only here) and a private tmp dir."""
        ensure_directory(request.workspace / TMP_DIR)
        link = request.workspace / DATA_DIR
        kind = kind_of(link)
        if kind == "directory" and not any(link.iterdir()):
            link.rmdir()  # the empty mount point a bwrap step left behind
        elif kind not in (None, "directory") and not (kind == "symlink" and request.public_dir is not None
                                                       and os.readlink(link) == str(request.public_dir)):
            remove_any(link)  # a file, a FIFO or a stale link in data/'s place
        if request.public_dir is not None and kind_of(link) is None:
            link.symlink_to(request.public_dir, target_is_directory=True)

    def run(self, request: ExecutionRequest) -> ExecutionResult:
        """Run the request's command on the host with its limits."""
        self.prepare_workspace(request)
        return run_limited(list(request.command), request, sandbox_environment(request, str(request.workspace)),
                           backend=self.name, isolated=self.isolated)

    # -- ProcessHost (warm mode) ------------------------------------------------------------------------------
    def workspace_inside(self, request: ExecutionRequest) -> str:
        """The code sees the host path."""
        return str(request.workspace)

    def prepare_step(self, request: ExecutionRequest) -> StepContext:
        """As before a cold step."""
        self.prepare_workspace(request)
        return StepContext()

    def check_step(self, request: ExecutionRequest, context: StepContext) -> str | None:
        """Nothing to check: the local backend hides nothing, so nothing can be smuggled."""
        return None

    def start_process(self, request: ExecutionRequest, program: Path, args: Sequence[str],
                      pass_fds: Sequence[int], context: StepContext) -> HostedProcess:
        """``python program args`` on the host, in its own session, with the step's clean environment."""
        max_file_mb = request.limits.max_file_mb
        proc = subprocess.Popen([sys.executable, str(program), *args], cwd=request.workspace,
                                env=sandbox_environment(request, str(request.workspace)), stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, pass_fds=tuple(pass_fds),
                                start_new_session=True, preexec_fn=lambda: rlimits.apply_file_size_only(max_file_mb))
        return HostedProcess(proc)
