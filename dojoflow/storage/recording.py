"""Recording an episode so that nothing is lost: the results row, the episode's files in the artifact store,
and its MLflow run - each delivered now, or parked in the outbox and delivered by a later flush.

The results row and the MLflow run are one transaction from the user's point of view: when the tracking
server cannot take the run, the run (params, metrics, tags and artifact files) is parked in the outbox as a
``tracking`` batch, and :func:`flush_pending` - before every recording, at the start and end of a sweep and
in ``dojoflow sweep flush`` - creates it later. Runs are idempotent per episode id, so a re-delivered run
is never created twice.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from dojoflow.config import Settings
from dojoflow.storage.outbox import TRACKING, deliver, flush, spool


@dataclass
class TrackedRun:
    """What goes into one episode's MLflow run (artifacts: run path -> local file or folder)."""

    episode_id: str
    run_name: str
    params: dict[str, Any]
    metrics: dict[str, float | None]
    step_metrics: list[dict[str, float | None]]
    tags: dict[str, str]
    artifacts: dict[str, Path] = field(default_factory=dict)
    call_metrics: list[dict[str, float | None]] = field(default_factory=list)  # per LLM-gateway call
    run_id: str | None = None  # the run created when the episode started, if the tracking server took it
    status: str = "FINISHED"  # FINISHED, or FAILED for an episode the harness could not finish
    start_time_ms: int | None = None  # when the episode started (a run created late still shows its Duration)


def _deliver_tracked(settings: Settings, meta: dict[str, Any], files: dict[str, Path]) -> str:
    from dojoflow.storage.tracking import record_run

    return record_run(settings, meta["run_name"], meta["params"], meta["metrics"], meta["step_metrics"],
                      meta["tags"], files, episode_id=meta["episode_id"], run_id=meta.get("run_id"),
                      status=meta.get("status", "FINISHED"), start_time_ms=meta.get("start_time_ms"),
                      call_metrics=meta.get("call_metrics"))


def _artifact_files(artifacts: dict[str, Path]) -> dict[str, Path]:
    """Folders expanded to files (run path -> file), for a batch in the outbox."""
    files: dict[str, Path] = {}
    for name, local in artifacts.items():
        if local.is_dir():
            files.update({f"{name}/{p.relative_to(local).as_posix()}": p for p in sorted(local.rglob("*"))
                          if p.is_file()})
        elif local.is_file():
            files[name] = local
    return files


def record_tracking(settings: Settings, run: TrackedRun) -> tuple[str | None, str | None]:
    """Create the run now, or park it in the outbox; returns (MLflow run id, error that parked it)."""
    meta = {k: v for k, v in asdict(run).items() if k != "artifacts"}
    try:
        return _deliver_tracked(settings, meta, run.artifacts), None
    except Exception as exc:  # noqa: BLE001 - any tracking failure: park the run, never lose the episode
        files = _artifact_files(run.artifacts)
        spool(settings.outbox_dir, f"{run.episode_id}.tracking", files, kind=TRACKING, meta=meta)
        return None, f"{type(exc).__name__}: {exc}"


def record_artifacts(settings: Settings, batch: str, files: dict[str, Path]) -> tuple[str, str | None]:
    """Upload an episode's files (key -> path), or park them; returns (URI of the batch, error)."""
    from dojoflow.storage.artifacts import artifact_store

    store = artifact_store(settings)
    prefix = f"episodes/{batch}"
    return store.uri(prefix), deliver(store, settings.outbox_dir, batch, files)


def flush_pending(settings: Settings) -> tuple[int, int]:
    """Deliver every parked batch (artifacts and MLflow runs); returns (delivered, still pending)."""
    from dojoflow.storage.artifacts import artifact_store

    def tracker(meta: dict[str, Any], files: dict[str, Path]) -> None:
        _deliver_tracked(settings, meta, files)

    return flush(artifact_store(settings), settings.outbox_dir, tracker=tracker)
