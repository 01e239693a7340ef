"""Rollouts: one episode driven by a policy, and GRPO groups of G rollouts run in parallel processes.

Each rollout runs in its own process with its own warm sandbox (a pre-imported worker inside bwrap), so
G rollouts of a group run side by side; a pool of processes is kept across groups (its start-up is paid
once). A rollout never raises into the trainer: a failure of the harness or the policy yields a record
with ``error`` set and ``masked`` true, so a group always has its G records.
"""

from __future__ import annotations

import multiprocessing
import os
import time
import uuid
from collections.abc import Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass

from dojoflow.errors import DojoflowError, UsageError
from dojoflow.rl.config import RolloutConfig, TaskRef, task_key
from dojoflow.rl.policy import Policy
from dojoflow.rl.records import RolloutRecord, TokenTurn
from dojoflow.rl.session import EpisodeSession
from dojoflow.rl.slot import RolloutSlot, process_slot


def run_rollout(task: TaskRef, policy: Policy, *, seed: int = 0, config: RolloutConfig | None = None,
                group_id: str = "", index: int = 0, worker: str = "", slot: RolloutSlot | None = None
                ) -> RolloutRecord:
    """One rollout: the task overview as prompt, then policy turns and observations until the episode ends.

    ``slot``: a reused warm sandbox and workspace (what pool workers and Ray actors pass); without one the
    rollout starts a warm sandbox of its own."""
    config = config or RolloutConfig()
    started = time.monotonic()
    prompt: list[dict[str, str]] = [{"role": "system", "content": config.system_prompt}]
    completion: list[dict[str, str]] = []
    tokens: list[TokenTurn] = []
    turns, error = 0, None
    session: EpisodeSession | None = None
    try:
        session = EpisodeSession(task, config, seed=seed, slot=slot)
        prompt.append({"role": "user", "content": session.start()})
        while not session.done and turns < config.max_turns:
            turn = policy(prompt + completion, seed=seed)
            turns += 1
            completion.append({"role": "assistant", "content": turn.text})
            if turn.completion_ids is not None:
                tokens.append(TokenTurn(list(turn.prompt_ids or []), list(turn.completion_ids),
                                        list(turn.logprobs) if turn.logprobs is not None else None))
            observation, _, _ = session.act(turn.text)
            completion.append({"role": "user", "content": observation})
        if not session.done:
            completion.append({"role": "user", "content": session.end("turns")})
    except (DojoflowError, OSError) as exc:  # the harness could not run this rollout: a masked record
        error = f"{type(exc).__name__}: {exc}"
    except Exception as exc:  # noqa: BLE001 - the policy's own failure must not cost the group its record
        error = f"policy failed: {type(exc).__name__}: {exc}"
    finally:
        if session is not None:
            session.close()
    summary = session.summary() if session is not None else {}
    error = error or summary.get("harness_error")
    return RolloutRecord(
        group_id=group_id, index=index, task=task_key(task), seed=seed, prompt=prompt, completion=completion,
        step_rewards=summary.get("step_rewards", []),
        final_reward=0.0 if error else summary.get("final_reward", 0.0),
        masked=bool(error) or summary.get("masked", False),
        truncated_by="harness-error" if error else summary.get("truncated_by"), tokens=tokens,
        episode_id=summary.get("episode_id", ""), final=summary.get("final"), turns=turns,
        steps=summary.get("steps", 0), wall_s=round(time.monotonic() - started, 4),
        code_time_s=summary.get("code_time_s", 0.0), startup_s=summary.get("startup_s", 0.0),
        act_time_s=summary.get("act_time_s", 0.0),
        worker=worker or f"pid-{os.getpid()}", error=error)


def _pooled_rollout(task: TaskRef, policy: Policy, **kwargs) -> RolloutRecord:
    """A rollout in a pool worker, in the worker's slot (its warm sandbox outlives the episode)."""
    config = kwargs.get("config") or RolloutConfig()
    return run_rollout(task, policy, slot=process_slot(config.sandbox), **kwargs)


def group_seeds(group_size: int, seeds: Sequence[int] | None = None, base_seed: int = 0) -> list[int]:
    """The G seeds of a group: given, or ``base_seed .. base_seed + G - 1``."""
    if group_size < 1:
        raise UsageError("a group needs at least one rollout (group_size >= 1)")
    if seeds is None:
        return [base_seed + i for i in range(group_size)]
    if len(seeds) != group_size:
        raise UsageError(f"{len(seeds)} seeds given for a group of {group_size}")
    return list(seeds)


def new_group_id(task: TaskRef) -> str:
    """A unique id for a group (records of one group share it)."""
    return f"{os.path.basename(str(task))}-{uuid.uuid4().hex[:10]}"


@dataclass
class Group:
    """A finished group: its G records in index order."""

    group_id: str
    records: list[RolloutRecord]

    @property
    def rewards(self) -> list[float]:
        """Final rewards in index order (what GRPO normalises within the group)."""
        return [r.final_reward for r in self.records]


class RolloutPool:
    """Worker processes that run rollouts (each with its own warm sandbox); reuse one across groups.

    ``processes`` defaults to the CPU count. Workers start with the forkserver method, preloaded with
    dojoflow, so a worker costs one fork rather than a fresh interpreter importing pandas."""

    def __init__(self, processes: int | None = None, *, reuse_sandboxes: bool = True) -> None:
        """``reuse_sandboxes``: each worker keeps one warm sandbox across episodes (a slot); False gives each
        episode a sandbox of its own (a warm worker started per episode; the benchmark's baseline)."""
        self.processes = processes or os.cpu_count() or 1
        self.reuse_sandboxes = reuse_sandboxes
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(["dojoflow.rl.rollout"])
        self._executor = ProcessPoolExecutor(max_workers=self.processes, mp_context=context)

    def __enter__(self) -> RolloutPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop the worker processes."""
        self._executor.shutdown(wait=True, cancel_futures=True)

    def submit(self, task: TaskRef, policy: Policy, *, seed: int, config: RolloutConfig, group_id: str,
               index: int) -> Future[RolloutRecord]:
        """Start one rollout in a worker process."""
        run = _pooled_rollout if self.reuse_sandboxes else run_rollout
        return self._executor.submit(run, task, policy, seed=seed, config=config, group_id=group_id,
                                     index=index)

    def group(self, task: TaskRef, policy: Policy, group_size: int, *, seeds: Sequence[int] | None = None,
              base_seed: int = 0, config: RolloutConfig | None = None, group_id: str | None = None) -> Group:
        """G rollouts of one task and prompt, in parallel; returns when all G records are in."""
        config = config or RolloutConfig()
        group_id = group_id or new_group_id(task)
        futures = [self.submit(task, policy, seed=s, config=config, group_id=group_id, index=i)
                   for i, s in enumerate(group_seeds(group_size, seeds, base_seed))]
        return Group(group_id, [f.result() for f in futures])


def run_group(task: TaskRef, policy: Policy, group_size: int, *, seeds: Sequence[int] | None = None,
              base_seed: int = 0, config: RolloutConfig | None = None, processes: int | None = None) -> Group:
    """One group with a pool of its own (``processes`` defaults to ``group_size``); see :class:`RolloutPool`."""
    with RolloutPool(processes or group_size) as pool:
        return pool.group(task, policy, group_size, seeds=seeds, base_seed=base_seed, config=config)
