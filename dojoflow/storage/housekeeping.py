"""Pruning old episode folders: ``$DOJOFLOW_HOME/episodes/<id>/`` keeps each episode's workspace, step
files and trajectory on disk after it is recorded; nothing else ever removes them.

Recorded episodes (their results row exists) older than a cutoff can be removed whole, or only their
workspaces (usually the bulk: the agent's files) while steps and trajectory stay for ``dojoflow export``.
The results table, the artifact store and MLflow keep their own copies either way. Episodes that are not
recorded (still running, or interrupted) are never touched.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from dojoflow.config import Settings

WORKSPACE_FOLDERS = ("workspace", "workspace-at-end")


@dataclass(frozen=True)
class EpisodeFolder:
    """One episode folder on disk."""

    episode_id: str
    path: Path
    size_bytes: int
    modified: float
    recorded: bool


def _size(path: Path) -> int:
    return sum(p.lstat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def episode_folders(settings: Settings) -> list[EpisodeFolder]:
    """Every episode folder, oldest first, with whether its results row exists."""
    root = settings.episodes_dir
    if not root.is_dir():
        return []
    recorded = {p.stem for p in settings.results_dir.glob("*.parquet")} if settings.results_dir.is_dir() else set()
    folders = [EpisodeFolder(p.name, p, _size(p), p.stat().st_mtime, p.name in recorded)
               for p in root.iterdir() if p.is_dir()]
    return sorted(folders, key=lambda f: f.modified)


def prune_episodes(settings: Settings, older_than_s: float, workspaces_only: bool = False,
                   dry_run: bool = False) -> list[EpisodeFolder]:
    """Remove recorded episode folders (or only their workspaces) not modified for ``older_than_s``;
    returns what was (or would be) removed."""
    cutoff = time.time() - older_than_s
    removed = []
    for folder in episode_folders(settings):
        if not folder.recorded or folder.modified > cutoff:
            continue
        removed.append(folder)
        if dry_run:
            continue
        if workspaces_only:
            for name in WORKSPACE_FOLDERS:
                shutil.rmtree(folder.path / name, ignore_errors=True)
        else:
            shutil.rmtree(folder.path, ignore_errors=True)
    return removed
