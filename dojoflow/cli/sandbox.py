"""``dojoflow sandbox run``: run a script as an agent step would run, and see exactly what happened."""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import Optional

import typer

from dojoflow.cli.common import console, fmt
from dojoflow.defaults import DEFAULT_EPISODE_SANDBOX

app = typer.Typer(help="Run code as an agent step would run it.", no_args_is_help=True)
DEFAULT_TIMEOUT_S = 60.0


@app.command("run")
def sandbox_run(script: Path = typer.Argument(..., help="Python script to run.", exists=True, dir_okay=False),
                backend: Optional[str] = typer.Option(None, help="auto, bwrap, docker, local, warm-* or a plugin "
                                                      "(default: DOJOFLOW_SANDBOX, else auto)."),
                task_id: Optional[str] = typer.Option(None, "--task", help="Mount this task's public data as data/."),
                timeout: float = typer.Option(DEFAULT_TIMEOUT_S, help="Wall-clock limit in seconds."),
                memory: int = typer.Option(4096, help="Memory limit in MB."),
                workspace: Optional[Path] = typer.Option(None, help="Workspace directory, kept afterwards "
                                                         "(default: a temporary one, removed afterwards)."),
                as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Run SCRIPT in a sandbox with limits and print exit code, timed_out, oom, duration and output."""
    import os

    from dojoflow.infra.sandbox import ExecutionLimits, ExecutionRequest, get_backend, python_command

    configured = os.environ.get("DOJOFLOW_SANDBOX")
    sandbox = get_backend(backend or (configured if configured and configured != DEFAULT_EPISODE_SANDBOX
                                      else "auto"))
    public = None
    if task_id:
        from dojoflow.config import get_settings
        from dojoflow.tasks_catalog.preparation import prepare_task
        from dojoflow.tasks_catalog.registry import get_task

        public = prepare_task(get_task(task_id), get_settings().data_dir).public
    work = workspace or Path(tempfile.mkdtemp(prefix="dojoflow-sandbox-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        shutil.copyfile(script, work / script.name)
        limits = ExecutionLimits(timeout_s=timeout, memory_mb=memory)
        try:
            result = sandbox.run(ExecutionRequest(python_command(script.name), work, public, limits))
        finally:
            sandbox.close()
    finally:
        if workspace is None:
            shutil.rmtree(work, ignore_errors=True)
    data = {"exit_code": result.exit_code, "timed_out": result.timed_out, "oom": result.oom,
            "duration_s": result.duration_s, "stdout": result.stdout, "stderr": result.stderr,
            "output_limited": result.output_limited, "cpu_s": result.cpu_s, "peak_memory_mb": result.peak_memory_mb,
            "backend": result.backend, "isolated": result.isolated, "error": result.error,
            "workspace": str(workspace) if workspace else None}
    if as_json:
        print(json.dumps(data))
    else:
        failure = result.failure_message(limits)
        console.print(f"backend {result.backend}" + ("" if result.isolated else " [yellow](not isolated)[/yellow]")
                      + f": exit code {result.exit_code}, timed out {fmt(result.timed_out)}, oom {fmt(result.oom)}, "
                      f"{result.duration_s:.2f} s wall, {result.cpu_s:.2f} s CPU, peak {result.peak_memory_mb:.0f} MB")
        if failure:
            console.print(f"[red]{failure}[/red]")
        for name in ("stdout", "stderr"):
            if data[name]:
                console.rule(name)
                console.print(data[name], markup=False, highlight=False, end="")
        if workspace:
            console.print(f"workspace: {workspace}")
    raise typer.Exit(0 if result.ok else 1)
