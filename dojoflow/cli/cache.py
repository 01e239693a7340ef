"""``dojoflow cache``: inspect and clean the prepared-data cache."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from dojoflow.cli.common import console
from dojoflow.dojo.layout import human_size

app = typer.Typer(help="Inspect and clean the prepared-data cache.", no_args_is_help=True)


def current_cache_keys() -> dict[str, str]:
    """Cache key of every registered task whose spec loads (a broken spec has no current key)."""
    from dojoflow.errors import DojoflowError
    from dojoflow.tasks_catalog.preparation import cache_key
    from dojoflow.tasks_catalog.registry import task_folders
    from dojoflow.tasks_catalog.spec import load_spec

    keys = {}
    for task_id, folder in task_folders().items():
        try:
            keys[task_id] = cache_key(load_spec(folder))
        except (DojoflowError, OSError):
            continue
    return keys


def _data_dir(data_dir: Optional[Path]) -> Path:
    if data_dir:
        return data_dir
    from dojoflow.config import get_settings

    return get_settings().data_dir


@app.command("ls")
def cache_ls(as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
             data_dir: Optional[Path] = typer.Option(None, "--data-dir", help="Cache root (default "
                                                     "$DOJOFLOW_HOME/data).")) -> None:
    """List cache entries: task, key, size, created, and whether the key is the task's current one."""
    from dojoflow.tasks_catalog.preparation import cache_entries

    entries = cache_entries(_data_dir(data_dir), current_cache_keys())
    if as_json:
        typer.echo(json.dumps([{"task": e.task_id, "key": e.key, "path": str(e.path), "size_bytes": e.size_bytes,
                                "created": e.created, "current": e.current, "complete": e.complete,
                                "temporary": e.temporary} for e in entries], indent=1))
        return
    table = Table(title=f"{len(entries)} cache entries in {_data_dir(data_dir)}")
    for column in ("task", "key", "size", "created", "state"):
        table.add_column(column)
    for e in entries:
        created = time.strftime("%Y-%m-%d %H:%M", time.localtime(e.created)) if e.created else "-"
        state = ("leftover temporary" if e.temporary else "incomplete" if not e.complete
                 else "current" if e.current else "stale")
        table.add_row(e.task_id, e.key, human_size(e.size_bytes), created, state)
    console.print(table)


@app.command("prune")
def cache_prune(dry_run: bool = typer.Option(False, "--dry-run", help="Only list what would be removed."),
                data_dir: Optional[Path] = typer.Option(None, "--data-dir", help="Cache root (default "
                                                        "$DOJOFLOW_HOME/data).")) -> None:
    """Remove entries whose key is no longer current, incomplete entries and leftover .tmp-* directories."""
    from dojoflow.tasks_catalog.preparation import prune_cache

    removed = prune_cache(_data_dir(data_dir), current_cache_keys(), dry_run=dry_run)
    verb = "would remove" if dry_run else "removed"
    for e in removed:
        kind = "temporary" if e.temporary else "incomplete" if not e.complete else "stale"
        console.print(f"{verb} {e.task_id}/{e.path.name} ({kind}, {human_size(e.size_bytes)})")
    total = sum(e.size_bytes for e in removed)
    console.print(f"{verb} {len(removed)} entries, {human_size(total)}")
