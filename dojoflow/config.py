"""Settings with embedded defaults: everything lives under one dojoflow home directory.

``DOJOFLOW_HOME`` (default ``~/.dojoflow``) holds prepared data, episode workspaces, the local artifact
store, the MLflow SQLite database and Prefect's home. Every location can be overridden by an environment
variable so the same code talks to real services (an MLflow server, a Prefect server) by configuration.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from dojoflow.defaults import DEFAULT_EPISODE_SANDBOX


@dataclass(frozen=True)
class Settings:
    """Resolved locations and defaults. Build with :func:`get_settings` so environment overrides apply."""

    home: Path
    tracking_uri: str
    prefect_home: Path
    sandbox_backend: str
    artifact_store: str = ""  # a directory, or s3://bucket/prefix
    s3_endpoint_url: str | None = None

    @property
    def data_dir(self) -> Path:
        """Content-addressed cache of prepared task data."""
        return self.home / "data"

    @property
    def episodes_dir(self) -> Path:
        """One directory per episode: workspace, per-step outputs, trajectory."""
        return self.home / "episodes"

    @property
    def outbox_dir(self) -> Path:
        """Uploads that failed (store unreachable), kept until :func:`storage.outbox.flush` succeeds."""
        return self.home / "outbox"

    @property
    def sweeps_dir(self) -> Path:
        """One folder per sweep: its spec and the state of its episodes."""
        return self.home / "sweeps"

    @property
    def results_dir(self) -> Path:
        """The results table: one Parquet file per episode."""
        return self.home / "results"

    @property
    def mlflow_artifacts_dir(self) -> Path:
        """Artifact root of MLflow experiments created by dojoflow (so nothing lands in the cwd)."""
        return self.home / "mlartifacts"


def get_settings() -> Settings:
    """Read settings from the environment, falling back to the embedded defaults."""
    home = Path(os.environ.get("DOJOFLOW_HOME", Path.home() / ".dojoflow")).expanduser().resolve()
    tracking_uri = os.environ.get("DOJOFLOW_TRACKING_URI") or f"sqlite:///{home / 'mlflow.db'}"
    prefect_home = Path(os.environ.get("PREFECT_HOME", home / "prefect")).expanduser()
    sandbox_backend = os.environ.get("DOJOFLOW_SANDBOX", DEFAULT_EPISODE_SANDBOX)
    artifact_store = os.environ.get("DOJOFLOW_ARTIFACT_STORE") or str(home / "artifacts")
    return Settings(home=home, tracking_uri=tracking_uri, prefect_home=prefect_home, sandbox_backend=sandbox_backend,
                    artifact_store=artifact_store, s3_endpoint_url=os.environ.get("DOJOFLOW_S3_ENDPOINT_URL"))


def configure_prefect_environment(settings: Settings) -> None:
    """Set Prefect's environment before it is imported: a per-home database, offline-friendly defaults.

    Prefect's ephemeral server needs ~20-25 s to start cold on 2 cores while its default startup timeout
    is 20 s, and its analytics try to reach the network; both are adjusted unless the user set them.
    """
    settings.prefect_home.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("PREFECT_HOME", str(settings.prefect_home))
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("DO_NOT_TRACK", "1")  # Prefect's client telemetry and its first-run notice
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    os.environ.setdefault("PREFECT_UI_ENABLED", "false" if os.environ.get("CI") else "true")
