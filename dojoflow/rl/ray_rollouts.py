"""Rollouts beyond one machine on Ray (the engine verl, SkyRL and rLLM run on): actors holding warm sandboxes.

Each :class:`RolloutActor` keeps one :class:`~dojoflow.rl.slot.RolloutSlot` (a warm sandbox reused across
episodes) and runs one rollout at a time. :func:`run_group_ray` spreads a group's G rollouts over the
actors; when an actor dies mid-rollout (its node lost, its process killed) the rollout it held is run again,
from the start, on a surviving actor. Each rollout index yields exactly one record: a dead attempt returns
nothing, and a late duplicate is dropped, so nothing is lost or counted twice. ``attempts`` in the result
says how many rollouts were re-run.

    import ray
    ray.init(address="auto")
    actors = make_actors(8)                      # or pin them to nodes with resources=...
    group = run_group_ray(actors, "iris-species", policy, 16, config=RolloutConfig())
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import ray
from ray.exceptions import ActorDiedError, ActorUnavailableError, RayActorError

from dojoflow.errors import ServiceError
from dojoflow.rl.config import RolloutConfig, TaskRef
from dojoflow.rl.policy import Policy
from dojoflow.rl.records import RolloutRecord
from dojoflow.rl.rollout import Group, group_seeds, new_group_id, run_rollout
from dojoflow.rl.slot import RolloutSlot

LOST = (RayActorError, ActorDiedError, ActorUnavailableError)


@ray.remote(max_restarts=0, max_task_retries=0)
class RolloutActor:
    """A rollout worker: one warm sandbox (slot), one rollout at a time."""

    def __init__(self, sandbox: str = "warm") -> None:
        self.sandbox = sandbox
        self.slot: RolloutSlot | None = None

    def pid(self) -> int:
        """The actor's process id (tests kill it)."""
        return os.getpid()

    def rollout(self, task: TaskRef, policy: Policy, seed: int, config: RolloutConfig, group_id: str,
                index: int) -> dict[str, Any]:
        """One rollout in this actor's slot; the record as a dict."""
        if self.slot is None:
            self.slot = RolloutSlot(self.sandbox)
        record = run_rollout(task, policy, seed=seed, config=config, group_id=group_id, index=index,
                             slot=self.slot, worker=f"ray-{ray.get_runtime_context().get_node_id()[:8]}-{os.getpid()}")
        return record.to_dict()

    def close(self) -> None:
        """Stop the warm sandbox."""
        if self.slot is not None:
            self.slot.close()
            self.slot = None


def make_actors(count: int, *, sandbox: str = "warm", **options: Any) -> list[Any]:
    """``count`` rollout actors (``options`` go to ``RolloutActor.options``: ``resources``, ``num_cpus``...)."""
    return [RolloutActor.options(**options).remote(sandbox) for _ in range(count)]  # type: ignore[attr-defined]


@dataclass
class RayGroup(Group):
    """A group from Ray actors, with the rollouts that had to be re-run after an actor was lost."""

    rerun: list[int] = field(default_factory=list)
    lost_actors: int = 0


def run_group_ray(actors: Sequence[Any], task: TaskRef, policy: Policy, group_size: int, *,
                  seeds: Sequence[int] | None = None, base_seed: int = 0, config: RolloutConfig | None = None,
                  group_id: str | None = None,
                  on_record: Callable[[RolloutRecord, list[Any]], None] | None = None) -> RayGroup:
    """G rollouts over ``actors``, re-running on a survivor any rollout whose actor died (see the module doc).

    ``on_record(record, busy_actors)`` is called as each record arrives (progress reports; tests use it to
    kill a busy actor mid-group)."""
    config = config or RolloutConfig()
    group_id = group_id or new_group_id(task)
    seeds = group_seeds(group_size, seeds, base_seed)
    queue = list(range(group_size))
    free = list(actors)
    pending: dict[Any, tuple[int, Any]] = {}
    records: dict[int, RolloutRecord] = {}
    rerun: list[int] = []
    lost = 0
    while queue or pending:
        while queue and free:
            index, actor = queue.pop(0), free.pop(0)
            ref = actor.rollout.remote(task, policy, seeds[index], config, group_id, index)
            pending[ref] = (index, actor)
        if not pending:
            raise ServiceError(f"every rollout actor was lost; {len(queue)} rollouts of group {group_id} not run")
        done, _ = ray.wait(list(pending), num_returns=1)
        index, actor = pending.pop(done[0])
        try:
            data = ray.get(done[0])
        except LOST:
            lost += 1
            rerun.append(index)
            queue.insert(0, index)  # the actor is gone: run this rollout again elsewhere
            continue
        record = records.setdefault(index, RolloutRecord.from_dict(data))  # one record per index
        free.append(actor)
        if on_record is not None:
            on_record(record, [a for _, a in pending.values()])
    return RayGroup(group_id, [records[i] for i in range(group_size)], rerun=rerun, lost_actors=lost)
