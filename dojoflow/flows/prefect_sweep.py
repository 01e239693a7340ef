"""The sweep as a Prefect flow: a parent flow run whose episodes are child flow runs (or deployment runs)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from prefect import flow

from dojoflow.flows.sweep import run_sweep
from dojoflow.flows.sweep_spec import parse_sweep_spec


@flow(name="sweep", flow_run_name="sweep-{spec[name]}", persist_result=False)
def sweep_flow(spec: dict[str, Any], only_keys: list[str] | None = None) -> list[dict[str, Any]]:
    """A sweep: every (agent, task, seed) episode not yet completed, each its own ``episode`` flow run."""
    states = run_sweep(parse_sweep_spec(spec), only_keys=set(only_keys) if only_keys else None)
    return [asdict(s) for s in states]
