"""The sweep as a Prefect flow: a parent flow run whose episodes are child flow runs (or deployment runs).

The sweep's flow run ends Failed when an episode did not complete (its message counts them), so the runs
list shows a sweep with failures as failed; the episode states are the state's data either way
(``state.result(raise_on_failure=False)``; :func:`sweep_states` does that)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from prefect import flow
from prefect.states import Completed, Failed, State

from dojoflow.flows.sweep import run_sweep
from dojoflow.flows.sweep_spec import parse_sweep_spec


@flow(name="sweep", flow_run_name="sweep-{spec[name]}", persist_result=False)
def sweep_flow(spec: dict[str, Any], only_keys: list[str] | None = None) -> State:
    """A sweep: every (agent, task, seed) episode not yet completed, each its own ``episode`` flow run."""
    states = [asdict(s) for s in run_sweep(parse_sweep_spec(spec), only_keys=set(only_keys) if only_keys else None)]
    bad = [s for s in states if s["state"] != "completed"]
    if bad:
        return Failed(message=f"{len(bad)} of {len(states)} episodes did not complete: "
                              + ", ".join(f"{s['key']} ({s['state']})" for s in bad[:10]), data=states)
    return Completed(message=f"{len(states)} episodes completed", data=states)


def sweep_states(spec: dict[str, Any], only_keys: list[str] | None = None) -> list[dict[str, Any]]:
    """Run the sweep flow; the episode states whether or not every episode completed."""
    state = sweep_flow(spec, only_keys, return_state=True)
    data: Any = state.result(raise_on_failure=False)
    if isinstance(data, BaseException):  # the sweep itself crashed (not an episode): its error stands
        raise data
    return data
