"""A rollout slot: one warm sandbox and one workspace folder that a rollout worker reuses episode after episode.

A warm worker (a pre-imported interpreter inside bwrap) is bound to one workspace folder; an episode has its
own workspace, so a fresh episode would start a fresh worker (seconds of imports under load). A slot keeps
the worker: each episode of the slot runs in the slot's workspace folder, emptied (the folder itself kept,
so the sandbox's bind mount stays valid) before the episode starts. What an episode must keep (each step's
code, output and submission, the trajectory) is in the episode's own folder, as for any episode; only the
workspace's scratch files of the previous episode are gone, as they would be in a new workspace.
"""

from __future__ import annotations

import atexit
import os
import shutil
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from dojoflow.config import get_settings
from dojoflow.dojo.env import MLEEnvironment
from dojoflow.infra.sandbox import SandboxBackend, get_backend
from dojoflow.infra.sandbox.workspace import DATA_DIR, TMP_DIR


class SlotEnvironment(MLEEnvironment):
    """An ``MLEEnvironment`` whose workspace is the slot's folder (set ``slot_workspace`` before ``reset``)."""

    slot_workspace: Path

    @property
    def workspace(self) -> Path:
        """The slot's workspace folder (shared by the slot's episodes, one at a time)."""
        return self.slot_workspace


@dataclass
class RolloutSlot:
    """A warm sandbox and a workspace folder, used by one episode at a time (one per worker process/actor)."""

    sandbox_name: str = "warm"
    root: Path | None = None
    sandbox: SandboxBackend = field(init=False)
    workspace: Path = field(init=False)

    def __post_init__(self) -> None:
        self.sandbox = get_backend(self.sandbox_name)
        base = self.root or get_settings().home / "rl-slots"
        self.workspace = base / f"{os.getpid()}-{uuid.uuid4().hex[:8]}" / "workspace"
        self.workspace.mkdir(parents=True, exist_ok=True)

    def clear(self) -> None:
        """Empty the workspace folder, keeping the folder (the warm worker's bind mount points at it) and what
        the sandbox manages in it: ``data/`` (a mount point, or the local backend's link to the public data,
        both bound to the task: another task's data restarts the worker) and the tmp folder (emptied)."""
        for child in self.workspace.iterdir():
            if child.name == DATA_DIR:
                continue
            if child.name == TMP_DIR and child.is_dir() and not child.is_symlink():
                for inner in child.iterdir():
                    _remove(inner)
                continue
            _remove(child)

    def close(self) -> None:
        """Stop the warm worker and remove the folder."""
        self.sandbox.close()
        shutil.rmtree(self.workspace.parent, ignore_errors=True)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


_PROCESS_SLOT: RolloutSlot | None = None


def process_slot(sandbox_name: str = "warm") -> RolloutSlot:
    """The slot of this process (created on first use, closed at exit); a new one if the sandbox kind changes."""
    global _PROCESS_SLOT
    if _PROCESS_SLOT is None or _PROCESS_SLOT.sandbox_name != sandbox_name:
        if _PROCESS_SLOT is not None:
            _PROCESS_SLOT.close()
        _PROCESS_SLOT = RolloutSlot(sandbox_name)
        atexit.register(_PROCESS_SLOT.close)
    return _PROCESS_SLOT
