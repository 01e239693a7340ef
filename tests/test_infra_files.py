"""The production stack's files: valid YAML with the services, wiring and settings the docs promise.

The compose stack itself is not started (its services but the worker need registry images, see
docs/cluster.md); tests/test_cluster.py runs the same services as local processes, and tests/test_docker_pool.py
runs the worker's image on a live engine.
"""

from __future__ import annotations

from pathlib import Path

import yaml

INFRA = Path(__file__).resolve().parents[1] / "infra"


def test_compose_file_defines_the_stack():
    compose = yaml.safe_load((INFRA / "docker-compose.yml").read_text())
    services = compose["services"]
    assert {"postgres", "prefect-server", "minio", "create-bucket", "mlflow", "worker"} <= set(services)
    assert "postgresql+asyncpg://" in services["prefect-server"]["environment"]["PREFECT_API_DATABASE_CONNECTION_URL"]
    assert "--serve-artifacts" in services["mlflow"]["command"] and "s3://dojoflow" in services["mlflow"]["command"]
    assert "postgresql://" in services["mlflow"]["command"]
    worker_env = services["worker"]["environment"]
    assert worker_env["PREFECT_API_URL"] == "http://prefect-server:4200/api"
    assert worker_env["DOJOFLOW_ARTIFACT_STORE"].startswith("s3://") and worker_env["DOJOFLOW_S3_ENDPOINT_URL"]
    assert "mc mb" in services["create-bucket"]["entrypoint"]
    for name, service in services.items():
        for dependency in service.get("depends_on", {}):
            assert dependency in services, (name, dependency)
    assert (INFRA.parent / services["worker"]["build"]["dockerfile"]).is_file()


def project_pins() -> dict[str, str]:
    """``name -> version`` of the exact pins in pyproject.toml's dependencies."""
    import re
    import tomllib

    deps = tomllib.loads((INFRA.parent / "pyproject.toml").read_text())["project"]["dependencies"]
    return {m.group(1).lower(): m.group(2) for d in deps if (m := re.match(r"([A-Za-z0-9_.-]+)==([^\s;]+)", d))}


def image_pins(text: str) -> dict[str, str]:
    """The pins a Dockerfile installs: quoted ``"name==version"`` arguments, and the lines of the requirements
    files (beside it in infra/docker/) it installs with ``-r``."""
    import re

    pins = {m.group(1).lower(): m.group(2) for m in re.finditer(r'"([A-Za-z0-9_.-]+)==([^"]+)"', text)}
    for requirements in re.findall(r"-r\s+\S*?(requirements[A-Za-z0-9_.-]*\.txt)", text):
        for line in (INFRA / "docker" / requirements).read_text().splitlines():
            if m := re.match(r"([A-Za-z0-9_.-]+)==(\S+)", line.strip()):
                pins[m.group(1).lower()] = m.group(2)
    return pins


def test_sandbox_images_pin_the_projects_library_versions():
    """Code must behave the same under the docker backend as under bwrap/local (which use the project's
    own interpreter), so every library the images install is pinned to the version pyproject.toml pins."""
    pins = project_pins()
    for name in ("Dockerfile", "Dockerfile.cuda"):
        installed = image_pins((INFRA / "docker" / name).read_text())
        assert {"numpy", "pandas", "scikit-learn"} <= set(installed), name
        drift = {lib: (version, pins[lib]) for lib, version in installed.items()
                 if lib in pins and pins[lib] != version}
        assert drift == {}, f"{name} pins differ from pyproject.toml (image, project): {drift}"


def test_sandbox_images_run_code_as_a_non_root_user():
    for name in ("Dockerfile", "Dockerfile.cuda"):
        users = [line.split()[1] for line in (INFRA / "docker" / name).read_text().splitlines()
                 if line.startswith("USER ")]
        assert users and users[-1] not in ("root", "0"), name
