"""File placement shared by the stores: artifact keys (:func:`safe_key`), and hard links where source
and target share a filesystem, copies elsewhere. Episode files are written once and never modified
afterwards, so a link is as good as a copy and costs no time or space."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from dojoflow.errors import UsageError


def link_or_copy(source: Path, target: Path) -> Path:
    """Make ``target`` hold ``source``'s content: a hard link if possible, else a copy; returns ``target``."""
    target.parent.mkdir(parents=True, exist_ok=True)
    target.unlink(missing_ok=True)
    try:
        os.link(source, target)
    except OSError:  # another filesystem, or links not allowed there
        shutil.copyfile(source, target)
    return target


def link_tree(source: Path, target: Path) -> list[Path]:
    """:func:`link_or_copy` every file under ``source`` to the same relative path under ``target``."""
    return [link_or_copy(path, target / path.relative_to(source))
            for path in sorted(source.rglob("*")) if path.is_file()]


def safe_key(key: str) -> str:
    """Normalise a key; reject empty keys and ``..`` (no escaping the store's root)."""
    parts = [p for p in key.split("/") if p not in ("", ".")]
    if any(p == ".." for p in parts) or not parts:
        raise UsageError(f"invalid artifact key: {key!r}")
    return "/".join(parts)
