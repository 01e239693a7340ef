"""What a command agent is: a program (a command line, or a container image for the docker backend) with
its own arguments and environment, run for a whole episode, and the settings of its LLM gateway.

A spec travels inside :class:`~dojoflow.flows.config.EpisodeConfig` as a plain dict (``config.command``),
so a sweep spec or a deployment run carries it as JSON. API keys are never part of it: ``api_key_env``
names the host variable the gateway reads (default ``DOJOFLOW_LLM_API_KEY``, then ``OPENAI_API_KEY``).
"""

from __future__ import annotations

import shlex
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from dojoflow.errors import UnknownOptionError, UsageError

DEFAULT_WALL_TIME_S = 3600.0  # when the episode has no wall-time budget
DEFAULT_BUDGET_GRACE_S = 15.0  # after the gateway's budget is spent, time left to write the submission


@dataclass(frozen=True)
class CommandAgentSpec:
    """A command agent.

    ``command``: a shell command line (run by ``/bin/sh -c`` inside the sandbox) or an argument list;
    ``args``: more arguments appended to it; ``env``: variables set for it (never secrets: they are
    recorded); ``binds``: host folders it needs, bound read-only at the same path (e.g. a virtual
    environment holding the agent); ``agent_dir``: a host folder copied into ``/home/agent`` (the working
    directory) before the run, as MLE-bench's agent images hold the agent's files there; ``image``: a
    container image (docker backend) instead of the harness's interpreter. The task's GPU, where it asks for
    one, is exposed to the program.

    Gateway: ``model`` (sent upstream whatever the agent asks for, when set), ``base_url`` (the real
    endpoint, default ``$DOJOFLOW_LLM_BASE_URL`` else OpenAI), ``api_key_env``, ``token_budget``;
    ``gateway: false`` runs the program with no LLM access at all.

    Ending: ``idle_timeout_s`` ends a program that printed nothing and made no LLM call for that long
    (hung); ``budget_grace_s`` is how long a program may go on after its token or cost budget is spent.
    """

    command: str | tuple[str, ...] = ""
    args: tuple[str, ...] = ()
    env: dict[str, str] = field(default_factory=dict)
    binds: tuple[str, ...] = ()
    agent_dir: str | None = None
    image: str | None = None
    model: str | None = None
    base_url: str | None = None
    api_key_env: str | None = None
    token_budget: int | None = None
    gateway: bool = True
    idle_timeout_s: float | None = None
    budget_grace_s: float = DEFAULT_BUDGET_GRACE_S

    def __post_init__(self) -> None:
        if not self.command and not self.image:
            raise UsageError("a command agent needs a command (--agent-command) or a container image (image)")
        if self.token_budget is not None and self.token_budget < 1:
            raise UsageError(f"token_budget must be >= 1, got {self.token_budget}")
        if self.agent_dir is not None and not Path(self.agent_dir).is_dir():
            raise UsageError(f"command agent: agent_dir {self.agent_dir} is not a folder")
        missing = [b for b in self.binds if not Path(b).exists()]
        if missing:
            raise UsageError(f"command agent: folders to bind do not exist: {', '.join(missing)}")
        bad = [k for k in self.env if not k or "=" in k]
        if bad:
            raise UsageError(f"bad environment variable names for the command agent: {bad}")

    @property
    def argv(self) -> list[str]:
        """The program's argument list inside the sandbox."""
        base = ["/bin/sh", "-c", self.command] if isinstance(self.command, str) and self.command else \
            list(self.command)
        if self.args:
            if base[:2] == ["/bin/sh", "-c"]:  # arguments of a shell command line: appended to it, quoted
                base[2] = f"{base[2]} {shlex.join(self.args)}"
            else:
                base += list(self.args)
        return base

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (what :meth:`from_dict` reads)."""
        data = asdict(self)
        data["command"] = self.command if isinstance(self.command, str) else list(self.command)
        data["args"], data["binds"] = list(self.args), list(self.binds)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CommandAgentSpec:
        """From options (CLI, sweep spec, a config's JSON); unknown keys are an error that names them."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise UnknownOptionError(f"command agent: unknown options {', '.join(unknown)} "
                                     f"(known: {', '.join(sorted(known))})")
        values = dict(data)
        command = values.get("command", "")
        if isinstance(command, list):
            values["command"] = tuple(str(c) for c in command)
        for key in ("args", "binds"):
            if key in values:
                raw = values[key]
                values[key] = tuple(shlex.split(raw)) if isinstance(raw, str) else tuple(str(v) for v in raw)
        if "binds" in values:
            values["binds"] = tuple(str(Path(b).expanduser()) for b in values["binds"])
        if isinstance(values.get("agent_dir"), str):
            values["agent_dir"] = str(Path(values["agent_dir"]).expanduser())
        if "env" in values:
            if not isinstance(values["env"], dict):
                raise UsageError("command agent: env must be a mapping of variable names to values")
            values["env"] = {str(k): str(v) for k, v in values["env"].items()}
        return cls(**values)
