"""MLflow tracking: one run per episode, on a SQLite database under the dojoflow home by default.

MLflow is imported only here, and only when an episode is recorded or the UI is started. The experiment
is created with an artifact location under the dojoflow home (never the current directory). Metrics, params
and tags go in one ``log_batch`` call (an order of magnitude faster than one call per value). Where the
run's artifacts live on this machine (a ``file:`` artifact location), the episode's files are hard-linked
into it instead of copied (:func:`dojoflow.storage.files.link_or_copy`); elsewhere MLflow uploads them.

Faults are bounded: a tracking server that does not answer fails within seconds with one clear error (the
caller parks the run in the outbox, see ``storage/recording.py``), instead of MLflow's minutes of retries;
and the first use of a SQLite database is serialised across processes with a file lock, so two episodes
started together on a fresh home do not race in MLflow's schema migration.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from dojoflow.config import Settings
from dojoflow.errors import ServiceError
from dojoflow.storage.files import link_or_copy, link_tree

EXPERIMENT = "dojoflow"
MAX_PARAM_CHARS = 6000  # MLflow rejects longer param values
MAX_BATCH_METRICS = 1000  # MLflow rejects a log_batch with more metrics
REACHABLE_TIMEOUT_S = 5.0
HTTP_RETRIES = "2"  # MLflow's default (7, exponential backoff) waits minutes on a dead server
HTTP_TIMEOUT_S = "30"
_initialised: set[str] = set()


def _sqlite_path(uri: str) -> Path | None:
    return Path(uri[len("sqlite:///"):]) if uri.startswith("sqlite:///") else None


@contextlib.contextmanager
def _first_use_lock(uri: str) -> Iterator[None]:
    """Serialise the first opening of a SQLite tracking database across processes (schema creation and
    migration are not safe to run twice at once)."""
    path = _sqlite_path(uri)
    if path is None or uri in _initialised:
        yield
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(f"{path}.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
    _initialised.add(uri)


def ensure_reachable(uri: str, timeout_s: float = REACHABLE_TIMEOUT_S) -> None:
    """For an http(s) tracking URI: fail within ``timeout_s`` with a clear message when nothing answers."""
    if not uri.startswith(("http://", "https://")):
        return
    try:
        with urllib.request.urlopen(uri.rstrip("/") + "/health", timeout=timeout_s):
            return
    except urllib.error.HTTPError:
        return  # something answers (a server without /health, or behind auth)
    except OSError as exc:
        raise ServiceError(f"the MLflow tracking server {uri} does not answer ({exc}); the run is kept in the "
                           "outbox and recorded by `dojoflow sweep flush` once the server is back") from None


def _client(settings: Settings):
    import logging

    logging.getLogger("alembic").setLevel(logging.WARNING)
    logging.getLogger("mlflow").setLevel(logging.WARNING)
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", HTTP_RETRIES)
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", HTTP_TIMEOUT_S)
    ensure_reachable(settings.tracking_uri)
    from mlflow.tracking import MlflowClient

    settings.home.mkdir(parents=True, exist_ok=True)
    with _first_use_lock(settings.tracking_uri):
        client = MlflowClient(tracking_uri=settings.tracking_uri)
        client.search_experiments(max_results=1)  # opens the database now: schema set up under the lock
    return client


EXPERIMENT_TAGS = {
    # MLflow 3 opens an experiment of this kind on its runs table (not the GenAI traces view)
    "mlflow.experimentKind": "custom_model_development",
    "mlflow.note.content": (
        "dojoflow episodes: one run per episode (one agent on one task with one seed), named by its episode id. "
        "Sweeps are parent runs with their episodes nested under them. Compare across tasks with `human_rank` "
        "(0-1, the share of the leaderboard beaten) rather than `score`, whose metric and direction differ per "
        "task (params `metric` and `higher_is_better`). The medal is the tag `dojoflow.medal` and the metrics "
        "`gold`, `silver`, `bronze`, `medal_rank`; failed episodes are runs with status FAILED, tag "
        "`dojoflow.end_reason` and `dojoflow.error_class`."),
}
_tagged_experiments: set[tuple[str, str]] = set()


def experiment_id(client, settings: Settings, name: str = EXPERIMENT) -> str:
    """Get or create the experiment, with artifacts under the dojoflow home and the tags that make MLflow 3
    show it as a runs table with a description (set once per process on an existing experiment too)."""
    existing = client.get_experiment_by_name(name)
    if existing is None:
        # a local database keeps artifacts under the dojoflow home; a tracking server decides for itself
        local = settings.tracking_uri.startswith(("sqlite:", "file:", "/"))
        location = (settings.mlflow_artifacts_dir / name).resolve().as_uri() if local else None
        try:
            found = client.create_experiment(name, artifact_location=location, tags=EXPERIMENT_TAGS)
            _tagged_experiments.add((settings.tracking_uri, found))
            return found
        except Exception:  # created concurrently by another process
            existing = client.get_experiment_by_name(name)
    found = existing.experiment_id
    if (settings.tracking_uri, found) not in _tagged_experiments:
        for key, value in EXPERIMENT_TAGS.items():
            if existing.tags.get(key) != value:
                client.set_experiment_tag(found, key, value)
        _tagged_experiments.add((settings.tracking_uri, found))
    return found


def _log(client, run_id: str, params: dict[str, Any], metrics: dict[str, float | None],
         step_metrics: list[dict[str, float | None]], tags: dict[str, str],
         call_metrics: list[dict[str, float | None]] | None = None) -> None:
    from mlflow.entities import Metric, Param, RunTag

    now = int(time.time() * 1000)
    metric_rows = [Metric(k, float(v), now, 0) for k, v in metrics.items() if v is not None]
    for index, values in enumerate(step_metrics):
        metric_rows += [Metric(f"step_{k}", float(v), now, index) for k, v in values.items() if v is not None]
    for index, values in enumerate(call_metrics or []):  # one per LLM-gateway call, at the call's index
        metric_rows += [Metric(f"llm_call_{k}", float(v), now, index) for k, v in values.items() if v is not None]
    client.log_batch(run_id, metrics=metric_rows[:MAX_BATCH_METRICS],
                     params=[Param(k, str(v)[:MAX_PARAM_CHARS]) for k, v in params.items()],
                     tags=[RunTag(k, str(v)) for k, v in tags.items()])
    for start in range(MAX_BATCH_METRICS, len(metric_rows), MAX_BATCH_METRICS):  # MLflow's per-batch limit
        client.log_batch(run_id, metrics=metric_rows[start:start + MAX_BATCH_METRICS])


def _episode_runs(client, experiment: str, episode_id: str) -> list:
    return client.search_runs([experiment], f"tags.`dojoflow.episode_id` = '{episode_id}'",
                              order_by=["attributes.start_time ASC"])


def start_episode_run(settings: Settings, run_name: str, params: dict[str, Any], tags: dict[str, str],
                      episode_id: str) -> tuple[str, str]:
    """A RUNNING run for an episode that starts now (its Duration in the UI is then the episode's).

    A finished run of the same episode (a sweep episode recorded before) is reused as it is; a RUNNING one
    (a recording that crashed) is deleted; FAILED and KILLED runs are kept as earlier attempts, and the new
    run's ``dojoflow.attempt`` tag counts them. Returns (run id, experiment id)."""
    client = _client(settings)
    experiment = experiment_id(client, settings)
    earlier = _episode_runs(client, experiment, episode_id)
    for run in earlier:
        if run.info.status == "FINISHED":
            return run.info.run_id, experiment
    for run in earlier:
        if run.info.status == "RUNNING":
            client.delete_run(run.info.run_id)
    attempt = 1 + sum(run.info.status in ("FAILED", "KILLED") for run in earlier)
    run = client.create_run(experiment, run_name=run_name,
                            tags={"mlflow.runName": run_name, **tags, "dojoflow.attempt": str(attempt)})
    _log(client, run.info.run_id, params, {}, [], {})
    return run.info.run_id, experiment


def record_run(settings: Settings, run_name: str, params: dict[str, Any], metrics: dict[str, float | None],
               step_metrics: list[dict[str, float | None]], tags: dict[str, str],
               artifacts: dict[str, Path], episode_id: str | None = None, run_id: str | None = None,
               status: str = "FINISHED", start_time_ms: int | None = None,
               call_metrics: list[dict[str, float | None]] | None = None) -> str:
    """Fill an episode's run with params, final and per-step metrics, tags and artifacts, and end it in
    ``status`` (FINISHED, FAILED or KILLED).

    ``run_id``: the run :func:`start_episode_run` created (when it still exists and is unfinished);
    otherwise the run is created here, with ``start_time_ms`` as its start. ``artifacts`` maps an artifact
    path in the run to a local file or directory; ``call_metrics`` are the LLM gateway's per-call figures
    (``llm_call_<name>`` at each call's index). With an ``episode_id`` (also in ``tags`` as
    ``dojoflow.episode_id``) the run is idempotent: a finished run of that episode is returned as it is, and
    an unfinished one (a recording that crashed) is deleted before the new run is created - so re-delivering
    a parked run, or re-recording a retried sweep episode, never makes two.
    """
    client = _client(settings)
    experiment = experiment_id(client, settings)
    run = None
    if run_id:
        try:
            run = client.get_run(run_id)
        except Exception:  # noqa: BLE001 - gone (deleted, another database): create one below
            run = None
        if run is not None and (run.info.lifecycle_stage != "active" or run.info.status != "RUNNING"):
            if run.info.status == "FINISHED" and run.info.lifecycle_stage == "active":
                return run_id
            run = None
    if run is None and episode_id:
        earlier = _episode_runs(client, experiment, episode_id)
        for existing in earlier:
            if existing.info.status == "FINISHED":
                return existing.info.run_id
            if existing.info.status == "RUNNING":
                client.delete_run(existing.info.run_id)
        tags = {**tags, "dojoflow.attempt": str(1 + sum(r.info.status in ("FAILED", "KILLED") for r in earlier))}
    if run is None:
        run = client.create_run(experiment, run_name=run_name, start_time=start_time_ms,
                                tags={"mlflow.runName": run_name, **tags})
    run_id = run.info.run_id
    _log(client, run_id, params, metrics, step_metrics, tags, call_metrics)
    log_artifacts(client, run_id, run.info.artifact_uri, artifacts)
    client.set_terminated(run_id, status)
    return run_id


def end_run(settings: Settings, run_id: str, status: str, tags: dict[str, str] | None = None) -> None:
    """Mark a run ended (KILLED for an interrupted episode), with a few last tags."""
    client = _client(settings)
    if tags:
        _log(client, run_id, {}, {}, [], tags)
    client.set_terminated(run_id, status)


def log_artifacts(client: Any, run_id: str, artifact_uri: str, artifacts: dict[str, Path]) -> None:
    """Put ``artifacts`` (run path -> local file or folder) into the run: hard links into a local artifact
    folder, uploads through MLflow for anything else."""
    parsed = urlparse(artifact_uri)
    if parsed.scheme == "file":
        root = Path(unquote(parsed.path))
        for name, local in artifacts.items():
            if local.is_dir():
                link_tree(local, root / name)
            elif local.is_file():
                link_or_copy(local, root / name)
        return
    with tempfile.TemporaryDirectory(prefix="dojoflow-mlflow-") as staging:
        for name, local in artifacts.items():
            if local.is_dir():
                client.log_artifacts(run_id, str(local), artifact_path=name)
            elif local.is_file():  # staged under its run name, which may differ from the file's own name
                staged = link_or_copy(local, Path(staging) / name)
                parent = str(Path(name).parent)
                client.log_artifact(run_id, str(staged), artifact_path=None if parent == "." else parent)


def find_run(settings: Settings, run_id: str):
    """Fetch a run (used by tests and the CLI to show where an episode went)."""
    return _client(settings).get_run(run_id)


SWEEP_EXPERIMENT = EXPERIMENT  # sweeps and their episodes share one experiment, so the runs table nests them


def start_parent_run(settings: Settings, sweep_id: str, spec: dict[str, Any]) -> str:
    """A running MLflow run for the sweep (the same one again when the sweep is resumed); its episodes are
    nested under it (``mlflow.parentRunId``) in the same experiment."""
    import json

    client = _client(settings)
    experiment = experiment_id(client, settings, SWEEP_EXPERIMENT)
    name = f"sweep-{sweep_id}"
    for existing in client.search_runs([experiment], f"tags.`dojoflow.sweep_id` = '{sweep_id}' and "
                                                     "tags.`dojoflow.kind` = 'sweep'"):
        client.update_run(existing.info.run_id, status="RUNNING")
        return existing.info.run_id
    run = client.create_run(experiment, run_name=name,
                            tags={"mlflow.runName": name, "dojoflow.sweep_id": sweep_id, "dojoflow.kind": "sweep",
                                  "mlflow.note.content": f"Sweep **{sweep_id}**: running. Its episodes are the "
                                                         "nested runs below it."})
    client.log_text(run.info.run_id, json.dumps(spec, indent=1), "sweep_spec.json")
    return run.info.run_id


def finish_parent_run(settings: Settings, run_id: str, metrics: dict[str, float], artifacts: dict[str, Path],
                      description: str = "", failed: bool = False) -> None:
    """Log the aggregated metrics, report files and description; the run ends FAILED when an episode
    failed, so the runs table shows it."""
    from mlflow.entities import Metric

    client = _client(settings)
    now = int(time.time() * 1000)
    if metrics:
        client.log_batch(run_id, metrics=[Metric(k, float(v), now, 0) for k, v in metrics.items()])
    if description:
        client.set_tag(run_id, "mlflow.note.content", description)
    for path in artifacts.values():
        if path.is_file():
            client.log_artifact(run_id, str(path))
    client.set_terminated(run_id, "FAILED" if failed else "FINISHED")
