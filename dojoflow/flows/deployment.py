"""Deploying the episode flow to a work pool, so workers on other machines run a sweep's episodes.

By default the pool is a ``process`` pool: a worker on any machine with dojoflow installed (and the same
DOJOFLOW_TRACKING_URI / DOJOFLOW_ARTIFACT_STORE settings, see docs/cluster.md) runs each episode in a
subprocess. A ``docker`` pool (prefect-docker's worker, the ``docker`` extra) runs each episode's flow run in a
container of the worker image (``infra/docker/Dockerfile.worker``), whose code is at :data:`IMAGE_CODE_DIR`:
``deploy_episode_flow(pool, pool_type="docker", job_variables={"image": ...})``.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import dojoflow

IMAGE_CODE_DIR = "/opt/dojoflow"  # where Dockerfile.worker puts the checkout the flow runs from


def _base_job_template(pool_type: str) -> dict:
    """The worker type's default job template (the server only knows the process worker's by itself)."""
    if pool_type == "docker":
        try:
            from prefect_docker.worker import DockerWorker
        except ImportError as exc:
            raise RuntimeError("a docker work pool needs prefect-docker: pip install -e '.[docker]'") from exc
        return DockerWorker.get_default_base_job_template()
    return {}


def ensure_process_pool(pool: str, pool_type: str = "process") -> None:
    """Create the work pool (a process pool unless ``pool_type`` says otherwise) when it does not exist."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.exceptions import ObjectNotFound

    async def create() -> None:
        async with get_client() as client:
            try:
                await client.read_work_pool(pool)
            except ObjectNotFound:
                await client.create_work_pool(WorkPoolCreate(name=pool, type=pool_type,
                                                             base_job_template=_base_job_template(pool_type)))

    asyncio.run(create())


def deploy_episode_flow(pool: str, name: str = "dojoflow", job_variables: dict | None = None,
                        pool_type: str = "process") -> str:
    """Register the ``episode`` flow from the installed package as a deployment on ``pool``. For a pool that
    runs flow runs in containers (``docker``) the flow is loaded from the image's :data:`IMAGE_CODE_DIR`, not
    from this machine's checkout."""
    from prefect import flow

    ensure_process_pool(pool, pool_type)
    source = str(Path(dojoflow.__file__).resolve().parent.parent)
    remote: Any = flow.from_source(source=source, entrypoint="dojoflow/flows/prefect_episode.py:episode_flow")
    deployment_id = str(remote.deploy(name=name, work_pool_name=pool, job_variables=job_variables or {},
                                      tags=["dojoflow"], build=False, push=False, print_next_steps=False))
    if pool_type != "process":
        _set_code_dir(deployment_id, IMAGE_CODE_DIR)
    return deployment_id


def _set_code_dir(deployment_id: str, directory: str) -> None:
    """Point the deployment's pull step at ``directory`` (where the code is inside the worker image)."""
    from uuid import UUID

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import DeploymentUpdate

    async def update() -> None:
        async with get_client() as client:
            step = {"prefect.deployments.steps.set_working_directory": {"directory": directory}}
            await client.update_deployment(UUID(deployment_id), DeploymentUpdate(pull_steps=[step]))

    asyncio.run(update())
