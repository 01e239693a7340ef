"""``dojoflow episodes``: list and prune the episode folders kept on disk."""

from __future__ import annotations

import re

import typer
from rich.table import Table

from dojoflow.cli.common import console
from dojoflow.config import get_settings
from dojoflow.dojo.layout import human_size
from dojoflow.errors import UsageError

app = typer.Typer(help="List and prune episode folders ($DOJOFLOW_HOME/episodes).", no_args_is_help=True)
UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_age(text: str) -> float:
    """``30d``, ``12h``, ``90m``, ``2w`` or plain seconds, as seconds."""
    match = re.fullmatch(r"(\d+(?:\.\d+)?)([smhdw]?)", text.strip())
    if not match:
        raise UsageError(f"bad age '{text}': use a number with s, m, h, d or w, e.g. 30d")
    return float(match.group(1)) * UNITS[match.group(2) or "s"]


@app.command("ls")
def episodes_ls() -> None:
    """Episode folders, oldest first: size, age, and whether they are recorded."""
    import time

    from dojoflow.storage.housekeeping import episode_folders

    folders = episode_folders(get_settings())
    table = Table(title=f"{len(folders)} episode folders, {human_size(sum(f.size_bytes for f in folders))}")
    for column in ("episode", "size", "age (days)", "recorded"):
        table.add_column(column)
    for f in folders:
        table.add_row(f.episode_id, human_size(f.size_bytes), f"{(time.time() - f.modified) / 86400:.1f}",
                      "yes" if f.recorded else "no")
    console.print(table)


@app.command("prune")
def episodes_prune(older_than: str = typer.Option(..., "--older-than", help="Age, e.g. 30d, 12h."),
                   workspaces_only: bool = typer.Option(False, "--workspaces-only",
                                                        help="Keep steps and trajectories; remove workspaces."),
                   dry_run: bool = typer.Option(False, "--dry-run", help="Only list what would be removed.")) -> None:
    """Remove recorded episode folders older than an age (results, artifacts and MLflow keep their copies)."""
    from dojoflow.storage.housekeeping import prune_episodes

    removed = prune_episodes(get_settings(), parse_age(older_than), workspaces_only, dry_run)
    verb = "would remove" if dry_run else "removed"
    what = "the workspaces of " if workspaces_only else ""
    console.print(f"{verb} {what}{len(removed)} episodes, {human_size(sum(f.size_bytes for f in removed))}")
