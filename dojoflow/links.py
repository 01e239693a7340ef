"""Clickable URLs between the two UIs: an episode's MLflow run links to its Prefect flow run, and the
flow run's summary artifact links back.

Where the UIs are: ``PREFECT_UI_URL`` (else ``PREFECT_API_URL`` without ``/api``) and
``DOJOFLOW_MLFLOW_UI_URL`` (else an http(s) tracking URI itself); failing those, the addresses
``dojoflow ui`` last served on (it writes them to ``$DOJOFLOW_HOME/ui.json``), and failing that its default
ports. A link recorded while the UIs ran elsewhere points at the address of that time - MLflow and Prefect
store text, not live links, so moving the UIs later does not rewrite old links.
"""

from __future__ import annotations

import json
import os

from dojoflow.config import Settings

UI_FILE = "ui.json"
DEFAULT_PREFECT_PORT = 4200
DEFAULT_MLFLOW_PORT = 5000


def _served(settings: Settings) -> dict[str, str]:
    try:
        return json.loads((settings.home / UI_FILE).read_text())
    except (OSError, ValueError):
        return {}


def prefect_ui(settings: Settings) -> str:
    """The Prefect UI's base URL."""
    if os.environ.get("PREFECT_UI_URL"):
        return os.environ["PREFECT_UI_URL"].rstrip("/")
    api = os.environ.get("PREFECT_API_URL", "").rstrip("/")
    if api:
        return api[: -len("/api")] if api.endswith("/api") else api
    return _served(settings).get("prefect") or f"http://127.0.0.1:{DEFAULT_PREFECT_PORT}"


def mlflow_ui(settings: Settings) -> str:
    """The MLflow UI's base URL."""
    if os.environ.get("DOJOFLOW_MLFLOW_UI_URL"):
        return os.environ["DOJOFLOW_MLFLOW_UI_URL"].rstrip("/")
    if settings.tracking_uri.startswith(("http://", "https://")):
        return settings.tracking_uri.rstrip("/")
    return _served(settings).get("mlflow") or f"http://127.0.0.1:{DEFAULT_MLFLOW_PORT}"


def flow_run_url(settings: Settings, flow_run_id: str | None) -> str:
    """The flow run's page in the Prefect UI ("" without an id)."""
    return f"{prefect_ui(settings)}/runs/flow-run/{flow_run_id}" if flow_run_id else ""


def mlflow_run_url(settings: Settings, experiment_id: str | None, run_id: str | None) -> str:
    """The run's page in the MLflow UI ("" without ids)."""
    if not (experiment_id and run_id):
        return ""
    return f"{mlflow_ui(settings)}/#/experiments/{experiment_id}/runs/{run_id}"


def write_served(settings: Settings, prefect: str, mlflow: str) -> None:
    """Remember where ``dojoflow ui`` serves (episodes recorded meanwhile link there)."""
    settings.home.mkdir(parents=True, exist_ok=True)
    (settings.home / UI_FILE).write_text(json.dumps({"prefect": prefect, "mlflow": mlflow}))
