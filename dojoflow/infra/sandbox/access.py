"""The harness's side of the access audit: run a step's script under the audit runner, read its log back.

:func:`audited` turns ``<python> -u step.py`` into ``<python> -u .dojoflow/audit.py .dojoflow/access-<token>.jsonl
step.py`` with the runner (``inside/audit.py``) written into the workspace before each step (so code that
overwrote it in an earlier step does not disable it), which works with every backend and with the warm mode
(still a relative Python script). :func:`read_access` reads the log back after the step - never following a
link the code put in its place, at most :data:`MAX_LOG_BYTES` - summarises it (``ExecutionResult.access``)
and removes the folder, so the next step's code does not see it.
"""

from __future__ import annotations

import json
import os
import secrets
import stat
from pathlib import Path
from typing import Any

from dojoflow.infra.sandbox.process import is_python_script
from dojoflow.infra.sandbox.workspace import kind_of, remove_any

AUDIT_DIR = ".dojoflow"
RUNNER = Path(__file__).parent / "inside" / "audit.py"
MAX_LOG_BYTES = 1024 * 1024
KINDS = ("forbidden_reads", "forbidden_writes", "forbidden_lists", "network", "exec", "data_reads")


def audited(command: tuple[str, ...], workspace: Path) -> tuple[tuple[str, ...], str] | None:
    """``(command under the audit runner, log name)``, or None for a command that is not a workspace Python
    script (or where the runner cannot be written: the step then runs unaudited, and says so)."""
    script = is_python_script(command)
    if script is None:
        return None
    folder = workspace / AUDIT_DIR
    try:
        if kind_of(folder) not in (None, "directory"):
            remove_any(folder)
        folder.mkdir(exist_ok=True)
        folder.chmod(0o777)  # the sandbox's uid appends to the log
        runner = folder / "audit.py"
        if kind_of(runner) not in (None, "file"):
            remove_any(runner)
        fd = os.open(runner, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o644)
        with os.fdopen(fd, "w") as fh:
            fh.write(RUNNER.read_text())
        os.chmod(runner, 0o644)
    except OSError:
        return None
    log = f"{AUDIT_DIR}/access-{secrets.token_hex(8)}.jsonl"
    return (command[0], "-u", f"{AUDIT_DIR}/audit.py", log, script[0], *script[1]), log


def read_access(workspace: Path, log: str) -> dict[str, Any]:
    """The step's access summary: lists of distinct targets per kind, and whether the log was readable."""
    summary: dict[str, Any] = {kind: [] for kind in KINDS}
    summary["audited"] = False
    path = workspace / log
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise OSError("not a regular file")
            text = os.read(fd, MAX_LOG_BYTES).decode(errors="replace")
        finally:
            os.close(fd)
        summary["audited"] = True
    except OSError:
        text = ""
    for line in text.splitlines():
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if not isinstance(event, dict):
            continue
        kind, target = str(event.get("kind", "")), str(event.get("target", ""))
        if kind == "read":
            key = "data_reads" if event.get("data") else "forbidden_reads"
        elif kind == "write":
            key = "forbidden_writes"
        elif kind == "list":
            key = "forbidden_lists"
        else:
            key = kind
        if key in summary and target not in summary[key]:
            summary[key].append(target)
    remove_any(workspace / AUDIT_DIR)
    return summary


def merge_access(summaries: list[dict[str, Any] | None]) -> dict[str, Any]:
    """Several steps' summaries as one (distinct targets, in order of first appearance)."""
    merged: dict[str, Any] = {kind: [] for kind in KINDS}
    merged["audited_steps"] = 0
    for summary in summaries:
        if not summary:
            continue
        merged["audited_steps"] += int(bool(summary.get("audited")))
        for kind in KINDS:
            for target in summary.get(kind, []):
                if target not in merged[kind]:
                    merged[kind].append(target)
    return merged
