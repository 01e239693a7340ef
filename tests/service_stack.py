"""The production services as local processes, for the cluster and Docker work-pool tests: moto's S3 server,
a Prefect server (SQLite) and an MLflow tracking server whose artifacts are proxied to a bucket in that S3.

Each service runs in its own session with its log in the test's folder; :meth:`ServiceStack.stop` ends them
(SIGTERM, then SIGKILL), workers included when they were started through :meth:`ServiceStack.start`."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

BIN = Path(sys.executable).parent
S3_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": "us-east-1"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(url: str, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(0.5)
    raise RuntimeError(f"{url} did not answer within {seconds} s")


def post(url: str, body: dict) -> list:
    request = urllib.request.Request(url, json.dumps(body).encode(), {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


class ServiceStack:
    """moto S3 + Prefect server + MLflow server on free ports; ``env`` points dojoflow at all three."""

    def __init__(self, folder: Path, bucket: str) -> None:
        self.folder, self.bucket = folder, bucket
        self.ports = {name: free_port() for name in ("prefect", "mlflow", "s3")}
        self.s3 = f"http://127.0.0.1:{self.ports['s3']}"
        self.api = f"http://127.0.0.1:{self.ports['prefect']}/api"
        base = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "DOJOFLOW_"))}
        base.update(S3_CREDENTIALS, PREFECT_SERVER_ANALYTICS_ENABLED="false", PREFECT_LOGGING_LEVEL="WARNING")
        self.stores = {"DOJOFLOW_TRACKING_URI": f"http://127.0.0.1:{self.ports['mlflow']}",
                       "DOJOFLOW_ARTIFACT_STORE": f"s3://{bucket}/artifacts", "DOJOFLOW_S3_ENDPOINT_URL": self.s3}
        self.env = {**base, **self.stores, "PREFECT_API_URL": self.api}
        self.procs: list[subprocess.Popen] = []

    def start(self, argv: list[str], extra: dict[str, str], name: str) -> subprocess.Popen:
        """A process in its own session, its output in ``<folder>/<name>.log``."""
        log = (self.folder / f"{name}.log").open("w")
        proc = subprocess.Popen(argv, env={**self.env, **extra}, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True, cwd=self.folder)
        self.procs.append(proc)
        return proc

    def up(self) -> ServiceStack:
        """Start the three services and wait until each answers (the bucket created)."""
        import boto3

        self.start([str(BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(self.ports["s3"])], {}, "moto")
        self.start([str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port",
                    str(self.ports["prefect"])],
                   {"PREFECT_HOME": str(self.folder / "prefect-server"), "PREFECT_API_URL": ""}, "prefect")
        wait_for(self.s3, 30)
        boto3.client("s3", endpoint_url=self.s3, region_name="us-east-1").create_bucket(Bucket=self.bucket)
        self.start([str(BIN / "mlflow"), "server", "--host", "127.0.0.1", "--port", str(self.ports["mlflow"]),
                    "--backend-store-uri", f"sqlite:///{self.folder / 'mlflow.db'}",
                    "--artifacts-destination", f"s3://{self.bucket}/mlflow"], {"MLFLOW_S3_ENDPOINT_URL": self.s3},
                   "mlflow")
        wait_for(f"{self.api}/health", 180)
        wait_for(f"http://127.0.0.1:{self.ports['mlflow']}/health", 120)
        return self

    def submitter_env(self) -> dict[str, str]:
        """The environment of the commands a user runs (deploy, sweep), with a home of their own."""
        return {**self.env, "DOJOFLOW_HOME": str(self.folder / "submit")}

    def stop(self) -> None:
        for proc in self.procs:
            try:
                os.killpg(proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        for proc in self.procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
