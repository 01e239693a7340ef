"""Reading a finished flow run's task runs from the Prefect API, shared by the DAG tests."""

from __future__ import annotations

import asyncio
import time


def completed_task_names(flow_run_id: str, expected: set[str], timeout_s: float = 60.0) -> set[str]:
    """The DAG names (``data-prep``, ``record``...) of the completed task runs of ``flow_run_id``, once all
    of ``expected`` are there or ``timeout_s`` has passed.

    Prefect 3 reports task-run states through its events client in the background, so the last tasks of a
    flow that has just returned can reach the API a moment later; reading once would race with that."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    async def read() -> set[str]:
        async with get_client() as client:
            runs = await client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])))
        return {run.name.rsplit("-", 1)[0] for run in runs if run.state is not None and run.state.is_completed()}

    deadline = time.monotonic() + timeout_s
    names = asyncio.run(read())
    while not expected <= names and time.monotonic() < deadline:
        time.sleep(0.5)
        names = asyncio.run(read())
    return names
