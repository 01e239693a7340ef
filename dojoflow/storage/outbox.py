"""Deliver files to the artifact store, or keep them locally until the store is reachable again.

A storage outage while an episode is recorded must not lose the episode: :func:`deliver` uploads a batch
of files and, if any upload fails, copies the whole batch into ``$DOJOFLOW_HOME/outbox/<batch>/`` (written
to a temporary folder and renamed, so a half-written batch is never flushed). :func:`flush` re-uploads
every pending batch and removes those that succeed; it runs before each recording and at the start and end
of each sweep, and as ``dojoflow sweep flush``.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from dojoflow.atomic import atomic_directory
from dojoflow.storage.artifacts import ArtifactStore

MANIFEST = "manifest.json"


def deliver(store: ArtifactStore, outbox_dir: Path, batch: str, files: dict[str, Path]) -> str | None:
    """Upload ``files`` (key -> local path); on failure spool them and return the error, else None."""
    try:
        for key, path in files.items():
            store.put_file(key, path)
        return None
    except Exception as exc:  # noqa: BLE001 - any storage failure: keep the files, never lose the episode
        spool(outbox_dir, batch, files)
        return f"{type(exc).__name__}: {exc}"


def spool(outbox_dir: Path, batch: str, files: dict[str, Path]) -> Path:
    """Copy a batch into the outbox atomically; returns its folder."""
    target = outbox_dir / batch
    with atomic_directory(target) as tmp:
        manifest = {}
        for number, (key, path) in enumerate(sorted(files.items())):
            name = f"{number:05d}-{Path(key).name}"
            shutil.copyfile(path, tmp / name)
            manifest[key] = name
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=1))
    return target


def pending(outbox_dir: Path) -> list[Path]:
    """Batches waiting for upload."""
    if not outbox_dir.is_dir():
        return []
    return sorted(p for p in outbox_dir.iterdir() if p.is_dir() and not p.name.startswith(".tmp-")
                  and (p / MANIFEST).is_file())


def flush(store: ArtifactStore, outbox_dir: Path) -> tuple[int, int]:
    """Upload every pending batch; returns (batches delivered, batches still pending)."""
    delivered = left = 0
    for batch in pending(outbox_dir):
        manifest = json.loads((batch / MANIFEST).read_text())
        try:
            for key, name in manifest.items():
                store.put_file(key, batch / name)
        except Exception:  # noqa: BLE001 - still unreachable: keep it for the next flush
            left += 1
            continue
        shutil.rmtree(batch)
        delivered += 1
    return delivered, left
