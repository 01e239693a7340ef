"""Test session set-up: a private dojoflow home (and Prefect home) per session, set before any import of
Prefect, so tests never touch ~/.dojoflow and share one Prefect API database."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

_SESSION_HOME = Path(tempfile.mkdtemp(prefix="dojoflow-tests-"))
os.environ["DOJOFLOW_HOME"] = str(_SESSION_HOME)
os.environ["PREFECT_HOME"] = str(_SESSION_HOME / "prefect")
os.environ.pop("PREFECT_API_URL", None)
os.environ.pop("DOJOFLOW_TRACKING_URI", None)
os.environ.pop("DOJOFLOW_TASK_PATH", None)

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


@pytest.fixture(scope="session")
def session_home() -> Path:
    """The dojoflow home shared by the whole test session (prepared data is cached there)."""
    return _SESSION_HOME


@pytest.fixture(scope="session")
def settings(session_home):
    from dojoflow.config import get_settings

    return get_settings()


@pytest.fixture(scope="session")
def prefect_api(settings):
    """Prefect's real API (ephemeral server on a per-session database), started once for the session."""
    from dojoflow.config import configure_prefect_environment

    configure_prefect_environment(settings)
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=180):
        yield


# -- a Docker-API engine (docs/cluster.md, "The docker path, live") ------------------------------------------
ENGINE_SCRIPT = REPO / "infra" / "docker" / "engine.sh"


def _engine_socket() -> Path:
    return Path(os.environ.get("DOJOFLOW_ENGINE_DIR", REPO / ".cache" / "docker-engine")) / "podman.sock"


def _ping(base_url: str | None) -> tuple[object | None, str]:
    try:
        import docker
    except ImportError:
        return None, "the docker SDK is not installed"
    try:
        client = docker.DockerClient(base_url=base_url, timeout=120) if base_url else docker.from_env(timeout=120)
        client.ping()
        return client, ""
    except Exception as exc:  # no socket, a dead socket, a refused connection
        return None, f"{type(exc).__name__}: {exc}"


@pytest.fixture(scope="session")
def docker_engine():
    """A docker SDK client of a Docker-API engine that answers, with ``DOCKER_HOST`` pointing at it for the
    session (so ``DockerBackend()`` and Prefect's docker worker find it): a real engine at ``DOCKER_HOST`` or
    the default socket first, used unchanged; else the podman service of ``infra/docker/engine.sh`` (started
    here if podman is installed and it is not running); else the test is skipped, saying how to get one."""
    client, reason = _ping(None)
    if client is None:
        socket = _engine_socket()
        if not socket.exists() and _which("podman") and ENGINE_SCRIPT.exists():
            import subprocess

            subprocess.run([str(ENGINE_SCRIPT), "start"], capture_output=True, timeout=120)
        client, reason2 = _ping(f"unix://{socket}")
        if client is None:
            pytest.skip(f"no Docker-API engine answers (DOCKER_HOST/default socket: {reason}; {socket}: {reason2});"
                        " start one with: infra/docker/engine.sh up")
        os.environ["DOCKER_HOST"] = f"unix://{socket}"
    yield client
    client.close()


def _which(name: str) -> str | None:
    import shutil

    return shutil.which(name)


def require_image(client, image: str) -> None:
    """Skip unless ``image`` is on the engine (images are built, never pulled: infra/docker/engine.sh build)."""
    try:
        client.images.get(image)
    except Exception:
        pytest.skip(f"image {image} is not on the engine: build it with infra/docker/engine.sh build "
                    "(or docker build, infra/docker/README.md)")
