"""Deploying the episode flow to a work pool, so workers on other machines run a sweep's episodes.

Here the pool is a ``process`` pool: a worker on any machine with dojoflow installed (and the same
DOJOFLOW_TRACKING_URI / DOJOFLOW_ARTIFACT_STORE settings, see docs/cluster.md) runs each episode in a
subprocess. Docker and Kubernetes pools take the same deployment with job variables (image, env).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import dojoflow


def ensure_process_pool(pool: str) -> None:
    """Create the work pool as a process pool when it does not exist."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.exceptions import ObjectNotFound

    async def create() -> None:
        async with get_client() as client:
            try:
                await client.read_work_pool(pool)
            except ObjectNotFound:
                await client.create_work_pool(WorkPoolCreate(name=pool, type="process"))

    asyncio.run(create())


def deploy_episode_flow(pool: str, name: str = "dojoflow", job_variables: dict | None = None) -> str:
    """Register the ``episode`` flow from the installed package as a deployment on ``pool``."""
    from prefect import flow

    ensure_process_pool(pool)
    source = str(Path(dojoflow.__file__).resolve().parent.parent)
    remote: Any = flow.from_source(source=source, entrypoint="dojoflow/flows/prefect_episode.py:episode_flow")
    return str(remote.deploy(name=name, work_pool_name=pool, job_variables=job_variables or {},
                             tags=["dojoflow"], build=False, push=False, print_next_steps=False))
