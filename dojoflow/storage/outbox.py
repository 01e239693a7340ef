"""Keep what could not be delivered (artifacts, MLflow runs) locally until its destination answers again.

A storage or tracking outage while an episode is recorded must not lose the episode. A batch that cannot be
delivered is copied into ``$DOJOFLOW_HOME/outbox/<batch>/`` (written to a temporary folder and renamed, so a
half-written batch is never flushed) with a manifest saying what it is:

- ``artifacts``: files for the artifact store (``key -> file``);
- ``tracking``: an MLflow run (params, metrics, tags) and its artifact files.

:func:`flush` re-delivers every pending batch and removes those that succeed; it runs before each
recording, at the start and end of each sweep, and as ``dojoflow sweep flush``
(:func:`dojoflow.storage.recording.flush_pending`).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from dojoflow.atomic import atomic_directory
from dojoflow.storage.artifacts import ArtifactStore

MANIFEST = "manifest.json"
ARTIFACTS = "artifacts"
TRACKING = "tracking"
Deliverer = Callable[[dict[str, Any], dict[str, Path]], None]  # (batch metadata, files by name)


def deliver(store: ArtifactStore, outbox_dir: Path, batch: str, files: dict[str, Path]) -> str | None:
    """Upload ``files`` (key -> local path); on failure spool them and return the error, else None."""
    try:
        for key, path in files.items():
            store.put_file(key, path)
        return None
    except Exception as exc:  # noqa: BLE001 - any storage failure: keep the files, never lose the episode
        spool(outbox_dir, batch, files)
        return f"{type(exc).__name__}: {exc}"


def spool(outbox_dir: Path, batch: str, files: dict[str, Path], kind: str = ARTIFACTS,
          meta: dict[str, Any] | None = None) -> Path:
    """Copy a batch (``files``: name or key -> local file) into the outbox atomically; returns its folder."""
    target = outbox_dir / batch
    with atomic_directory(target) as tmp:
        names = {}
        for number, (key, path) in enumerate(sorted(files.items())):
            name = f"{number:05d}-{Path(key).name}"
            shutil.copyfile(path, tmp / name)
            names[key] = name
        (tmp / MANIFEST).write_text(json.dumps({"kind": kind, "files": names, "meta": meta or {}}, indent=1))
    return target


def pending(outbox_dir: Path) -> list[Path]:
    """Batches waiting for delivery."""
    if not outbox_dir.is_dir():
        return []
    return sorted(p for p in outbox_dir.iterdir() if p.is_dir() and not p.name.startswith(".tmp-")
                  and (p / MANIFEST).is_file())


def read_batch(batch: Path) -> tuple[str, dict[str, Any], dict[str, Path]]:
    """(kind, metadata, files by key) of a pending batch."""
    manifest = json.loads((batch / MANIFEST).read_text())
    if "kind" not in manifest:  # written before batches had kinds: artifact files only
        manifest = {"kind": ARTIFACTS, "files": manifest, "meta": {}}
    return manifest["kind"], manifest.get("meta", {}), {key: batch / name for key, name in manifest["files"].items()}


def flush(store: ArtifactStore, outbox_dir: Path, tracker: Deliverer | None = None) -> tuple[int, int]:
    """Deliver every pending batch (tracking batches only when a ``tracker`` is given); returns (batches
    delivered, batches still pending)."""
    delivered = left = 0
    for batch in pending(outbox_dir):
        kind, meta, files = read_batch(batch)
        try:
            if kind == TRACKING:
                if tracker is None:
                    left += 1
                    continue
                tracker(meta, files)
            else:
                for key, path in files.items():
                    store.put_file(key, path)
        except Exception:  # noqa: BLE001 - still unreachable: keep it for the next flush
            left += 1
            continue
        shutil.rmtree(batch)
        delivered += 1
    return delivered, left
