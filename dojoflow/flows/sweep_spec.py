"""The sweep spec (YAML): agents x tasks x seeds, budgets, sandbox, concurrency, retries, tracking, storage.

```yaml
name: baseline-lite                 # the sweep id: re-running the same name resumes it
agents:
  - name: baseline                  # an agent from the registry
    options: {models: 2}            # passed to the agent's constructor
  - name: my-agent                  # a command agent: any program, run for the whole episode (name: a label)
    command: "python agent.py"      # or image: for the docker backend; see docs/agents.md
    options: {agent_dir: ./my_agent, model: gpt-4o-mini, token_budget: 200000}
tasks: [breast-cancer, digits]      # task ids, or split:NAME for every task tagged with that split
seeds: [0, 1, 2]                    # a list, or a count (3 means 0, 1, 2)
budget: {max_steps: 6, episode_timeout_s: 1800}   # a deployment run not done by then counts as crashed
                                    # also wall_time_s and cost_budget_usd (per episode)
sandbox: auto                       # auto, bwrap, warm, docker or local
feedback: public-test               # feedback protocol: public-test, validation, format-only or none
integrity: [plagiarism, forbidden-access, data-usage, leakage]   # integrity flags (the default; add judge)
judge: {model: gpt-4o-mini, base_url: null}   # the rule-violation judge (with judge in integrity)
description: original               # or obfuscated: the contamination probe
concurrency: {episodes: 2}          # episodes at once (a Prefect global concurrency limit)
retries: 1                          # retries of an episode after an infrastructure failure
deployment: null                    # "episode/dojoflow": run episodes on workers via this deployment
tracking: {uri: null}               # MLflow tracking URI (default: DOJOFLOW_TRACKING_URI or SQLite)
storage: {artifacts: null, s3_endpoint_url: null}   # artifact store (default: local directory)
```

Unknown keys are an error that names them (a typo such as ``seed:`` must not silently run the defaults).
``examples/sweep.yaml`` is a complete, runnable example.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from dojoflow.defaults import DEFAULT_MAX_STEPS
from dojoflow.dojo.feedback import PROTOCOLS
from dojoflow.dojo.flags import DEFAULT_FLAGS, JUDGE, integrity_names
from dojoflow.dojo.obfuscation import ORIGINAL, VARIANTS
from dojoflow.errors import SweepSpecError
from dojoflow.tasks_catalog.spec import FieldReader

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


TOP_LEVEL_KEYS = ("name", "agents", "tasks", "seeds", "budget", "sandbox", "feedback", "concurrency", "retries",
                  "deployment", "tracking", "storage", "integrity", "judge", "description")
SECTION_KEYS = {"budget": ("max_steps", "episode_timeout_s", "wall_time_s", "cost_budget_usd"),
                "judge": ("model", "base_url", "max_tokens"),
                "concurrency": ("episodes",), "tracking": ("uri",), "storage": ("artifacts", "s3_endpoint_url")}
AGENT_KEYS = ("name", "options", "command", "image")
DEFAULT_EPISODE_TIMEOUT_S = 1800.0


@dataclass(frozen=True)
class AgentEntry:
    """One agent of the sweep and its constructor options."""

    name: str
    options: dict[str, Any] = field(default_factory=dict)
    command: dict[str, Any] | None = None  # a command agent's spec (agents/external/spec.py), as a dict


@dataclass(frozen=True)
class SweepSpec:
    """A validated sweep spec; :meth:`episodes` expands it."""

    name: str
    agents: tuple[AgentEntry, ...]
    tasks: tuple[str, ...]
    seeds: tuple[int, ...]
    max_steps: int = DEFAULT_MAX_STEPS
    episode_timeout_s: float = DEFAULT_EPISODE_TIMEOUT_S
    wall_time_s: float | None = None
    cost_budget_usd: float | None = None
    sandbox: str | None = None
    concurrency: int = 1
    retries: int = 1
    deployment: str | None = None
    tracking_uri: str | None = None
    artifacts: str | None = None
    s3_endpoint_url: str | None = None
    feedback: str | None = None  # None: each agent's default (EpisodeConfig.protocol)
    integrity: tuple[str, ...] = DEFAULT_FLAGS  # the integrity flags of every episode (dojo/flags.py)
    description: str = ORIGINAL  # the description variant of every episode (dojo/obfuscation.py)
    judge: dict[str, Any] = field(default_factory=dict)  # the rule-violation judge's model / base_url

    def episodes(self) -> list[tuple[AgentEntry, str, int]]:
        """Every (agent, task, seed), in a stable order."""
        return [(agent, task, seed) for agent in self.agents for task in self.tasks for seed in self.seeds]

    def to_dict(self) -> dict[str, Any]:
        """The spec as YAML-ready data (what :func:`parse_sweep_spec` reads)."""
        return {"name": self.name, "agents": [_agent_dict(a) for a in self.agents],
                "tasks": list(self.tasks), "seeds": list(self.seeds),
                "budget": {"max_steps": self.max_steps, "episode_timeout_s": self.episode_timeout_s,
                           **({"wall_time_s": self.wall_time_s} if self.wall_time_s is not None else {}),
                           **({"cost_budget_usd": self.cost_budget_usd} if self.cost_budget_usd is not None else {})},
                "sandbox": self.sandbox, "feedback": self.feedback, "concurrency": {"episodes": self.concurrency},
                "retries": self.retries,
                "deployment": self.deployment, "tracking": {"uri": self.tracking_uri},
                "storage": {"artifacts": self.artifacts, "s3_endpoint_url": self.s3_endpoint_url},
                "integrity": list(self.integrity), "description": self.description, "judge": dict(self.judge)}


def _agent_dict(agent: AgentEntry) -> dict[str, Any]:
    if agent.command is None:
        return {"name": agent.name, "options": agent.options}
    command = dict(agent.command)
    head = {k: command.pop(k) for k in ("command", "image") if command.get(k)}
    return {"name": agent.name, **head, "options": command}


def _command_agent(r: FieldReader, entry: dict[str, Any], where: str, name: str) -> AgentEntry:
    """A command agent entry: ``command`` and/or ``image``, its spec's other fields in ``options``."""
    from dojoflow.agents.external.spec import CommandAgentSpec
    from dojoflow.errors import DojoflowError

    if not NAME.match(name):
        raise r.fail(f"{where}.name", "a command agent's name is a label: 1-64 letters, digits, '.', '_' or '-'")
    data = dict(r.get(entry, "options", where, dict, {}))
    for key in ("command", "image"):
        if key in entry:
            data[key] = entry[key]
    spec_file = Path(r.file)
    base = spec_file.parent if spec_file.is_file() else Path.cwd()  # relative paths: from the spec's folder
    if isinstance(data.get("agent_dir"), str):
        data["agent_dir"] = str((base / Path(data["agent_dir"]).expanduser()).resolve())
    if isinstance(data.get("binds"), list):
        data["binds"] = [str((base / Path(str(b)).expanduser()).resolve()) for b in data["binds"]]
    try:
        return AgentEntry(name, {}, CommandAgentSpec.from_dict(data).to_dict())
    except DojoflowError as exc:
        raise r.fail(where, str(exc)) from None


def _expand_tasks(r: FieldReader, entries: list) -> tuple[str, ...]:
    from dojoflow.tasks_catalog.registry import list_tasks, task_folders

    known = task_folders()
    tasks: list[str] = []
    for i, entry in enumerate(entries):
        if not isinstance(entry, str):
            raise r.fail(f"tasks[{i}]", f"must be a task id or split:NAME, got {entry!r}")
        if entry.startswith("split:"):
            split = entry.removeprefix("split:")
            members = [s.id for s in list_tasks() if split in s.tags.get("splits", "").split(",")]
            if not members:
                raise r.fail(f"tasks[{i}]", f"no task is in split '{split}'")
            tasks += members
        elif entry in known:
            tasks.append(entry)
        else:
            raise r.fail(f"tasks[{i}]", f"unknown task '{entry}'; known tasks: {', '.join(sorted(known))}")
    return tuple(dict.fromkeys(tasks))


def _integrity(r: FieldReader, data: dict[str, Any]) -> tuple[str, ...]:
    """The ``integrity:`` key: a list (or comma-separated string) of flags; absent: the default ones."""
    from dojoflow.errors import UsageError

    value = data.get("integrity")
    if value is not None and not isinstance(value, (str, list)):
        raise r.fail("integrity", f"must be a list of integrity checks, got {value!r}")
    try:
        names = integrity_names(value)
    except UsageError as exc:
        raise r.fail("integrity", str(exc)) from None
    if data.get("judge") and JUDGE not in names:
        raise r.fail("judge", "a judge is configured but 'judge' is not in integrity: add it to run the judge")
    return names


def parse_sweep_spec(data: Any, file: str = "<sweep spec>") -> SweepSpec:
    """Validate a loaded YAML document; errors name the file and the field."""
    from dojoflow.agents.registry import available_agents

    r = FieldReader(Path(file), SweepSpecError)
    data = r.mapping(data, "(top level)")
    r.known_keys(data, "(top level)", TOP_LEVEL_KEYS)
    for section, keys in SECTION_KEYS.items():
        r.known_keys(r.mapping(data.get(section), section), section, keys)
    known_agents = available_agents()
    name = r.get(data, "name", "", str)
    if not NAME.match(name):
        raise r.fail("name", "use 1-64 letters, digits, '.', '_' or '-' (it names files and runs)")
    agents = []
    for i, entry in enumerate(r.get(data, "agents", "", list)):
        entry = {"name": entry} if isinstance(entry, str) else r.mapping(entry, f"agents[{i}]")
        r.known_keys(entry, f"agents[{i}]", AGENT_KEYS)
        agent = r.get(entry, "name", f"agents[{i}]", str)
        if "command" in entry or "image" in entry:
            agents.append(_command_agent(r, entry, f"agents[{i}]", agent))
            continue
        if agent not in known_agents:
            raise r.fail(f"agents[{i}].name", f"unknown agent '{agent}'; known agents: {', '.join(known_agents)}")
        agents.append(AgentEntry(agent, dict(r.get(entry, "options", f"agents[{i}]", dict, {}))))
    if not agents:
        raise r.fail("agents", "list at least one agent")
    seeds_raw = r.get(data, "seeds", "", (int, list), 1)
    seeds = tuple(range(seeds_raw)) if isinstance(seeds_raw, int) else tuple(seeds_raw)
    if not seeds or not all(isinstance(s, int) and not isinstance(s, bool) for s in seeds):
        raise r.fail("seeds", "must be a positive count or a non-empty list of integers")
    budget = r.mapping(data.get("budget"), "budget")
    concurrency = r.mapping(data.get("concurrency"), "concurrency")
    tracking = r.mapping(data.get("tracking"), "tracking")
    storage = r.mapping(data.get("storage"), "storage")
    spec = SweepSpec(
        name=name, agents=tuple(agents), tasks=_expand_tasks(r, r.get(data, "tasks", "", list)), seeds=seeds,
        max_steps=r.get(budget, "max_steps", "budget", int, DEFAULT_MAX_STEPS),
        episode_timeout_s=r.get(budget, "episode_timeout_s", "budget", float, DEFAULT_EPISODE_TIMEOUT_S),
        wall_time_s=r.get(budget, "wall_time_s", "budget", float, None),
        cost_budget_usd=r.get(budget, "cost_budget_usd", "budget", float, None),
        sandbox=r.get(data, "sandbox", "", str, None),
        concurrency=r.get(concurrency, "episodes", "concurrency", int, 1), retries=r.get(data, "retries", "", int, 1),
        deployment=r.get(data, "deployment", "", str, None), tracking_uri=r.get(tracking, "uri", "tracking", str, None),
        artifacts=r.get(storage, "artifacts", "storage", str, None),
        s3_endpoint_url=r.get(storage, "s3_endpoint_url", "storage", str, None),
        feedback=r.choice(data, "feedback", "", tuple(PROTOCOLS)) if data.get("feedback") is not None else None,
        integrity=_integrity(r, data), judge=dict(r.mapping(data.get("judge"), "judge")),
        description=r.choice(data, "description", "", VARIANTS) if data.get("description") is not None
        else ORIGINAL,
    )
    if spec.max_steps < 1 or spec.concurrency < 1 or spec.retries < 0:
        raise r.fail("budget/concurrency/retries", "max_steps and episodes must be >= 1, retries >= 0")
    return spec


def load_sweep_spec(path: Path) -> SweepSpec:
    """Read and validate a sweep spec file."""
    path = Path(path)
    if not path.is_file():
        raise SweepSpecError(str(path), "(file)", "sweep spec file not found")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise SweepSpecError(str(path), "(file)", f"is not valid YAML: {exc}") from None
    return parse_sweep_spec(data, str(path))
