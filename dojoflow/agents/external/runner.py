"""One run of a command agent: the episode's execution step.

:func:`run_command_agent` lays out the MLE-bench paths (``layout.py``), starts the validation endpoint and
the LLM gateway on unix sockets, runs the program in the episode's sandbox for the whole episode (the
in-sandbox launcher ``infra/sandbox/inside/forward.py`` forwards ``localhost:5000`` and ``localhost:8000``
to those sockets, then starts the program), and stops it when:

- it exits (``exit``) or crashes (``crash``: a non-zero status);
- the wall-clock budget is over (``wall-time``; the episode's ``wall_time_s``, else
  ``DEFAULT_WALL_TIME_S``);
- its token or cost budget has been spent for ``budget_grace_s`` (``token-budget`` / ``cost-budget``);
- it was idle for ``idle_timeout_s``: no LLM call, no validation call and no file written in its
  folders (``idle``: a hung program);
- it exceeds the memory or output limits (``out-of-memory``, ``output-limit``), or the sandbox could not
  start it (``not-started``).

Whatever happened, the file at ``/home/submission/submission.csv`` is collected for grading, the program's
output is kept in ``steps/000/`` and why it ended is recorded. Nothing the program does raises out of
here. The run is recorded as the episode's one step (action ``agent_command``).
"""

from __future__ import annotations

import copy
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dojoflow.agents.external import layout
from dojoflow.agents.external.spec import DEFAULT_WALL_TIME_S, CommandAgentSpec
from dojoflow.agents.external.validation import ValidationEndpoint
from dojoflow.dojo.env import SUBMISSION_FILE, MLEEnvironment
from dojoflow.dojo.records import StepRecord
from dojoflow.dojo.workspace_files import collect_submission
from dojoflow.errors import SandboxError
from dojoflow.infra.endpoint import Endpoint
from dojoflow.infra.sandbox.base import ExecutionLimits, ExecutionRequest, ExecutionResult, Mount, SandboxBackend
from dojoflow.infra.sandbox.workspace import step_uid, walk
from dojoflow.llm.gateway import PLACEHOLDER_KEY, LLMGateway
from dojoflow.tasks_catalog.exposure import hidden_source_dirs
from dojoflow.tasks_catalog.grading import answer_table

INSIDE_DIR = Path(__file__).resolve().parents[2] / "infra" / "sandbox" / "inside"
KEEP_OUTPUT_BYTES = 1024 * 1024  # head and tail of the program's stdout/stderr kept in steps/000/
MAX_OUTPUT_BYTES = 1024 * 1024 * 1024
MAX_PROCESSES = 1024
MAX_FILE_MB = 8192


@dataclass
class CommandRun:
    """What the run produced: the sandbox's result, why it ended, the gateway's accounting."""

    result: ExecutionResult
    ended_by: str
    end_reason: str
    final_step: int | None
    final_reason: str
    usage: dict[str, Any] = field(default_factory=dict)
    uid: int | None = None  # the sandbox uid (root harness), for the leftover-process check
    records_dir: str | None = None


class _Watch:
    """The ``stop_when`` of the run: budget spent (after a grace period) or idle."""

    def __init__(self, gateway: LLMGateway | None, validator: ValidationEndpoint, spec: CommandAgentSpec,
                 folders: list[Path]) -> None:
        self.gateway, self.validator, self.spec, self.folders = gateway, validator, spec, folders
        self.spent_at: float | None = None
        self.last_activity = time.monotonic()
        self._seen: tuple[int, int, float] = (0, 0, 0.0)
        self.ended_by: str | None = None
        self._next_scan = 0.0

    def _activity(self) -> tuple[int, int, float]:
        calls = len(self.gateway.calls) if self.gateway else 0
        newest = 0.0
        for folder in self.folders:
            try:
                newest = max([newest, *(e.stat(follow_symlinks=False).st_mtime for e in walk(folder, None, 20_000))])
            except OSError:
                pass
        return calls, self.validator.calls, newest

    def __call__(self) -> str | None:
        now = time.monotonic()
        spent = self.gateway.exhausted if self.gateway else None
        if spent:
            self.spent_at = self.spent_at or now
            if now - self.spent_at >= self.spec.budget_grace_s:
                self.ended_by = f"{spent}-budget"
                return (f"its {spent} budget was spent and it went on for {self.spec.budget_grace_s:g} s "
                        "(the grace period)")
        if self.spec.idle_timeout_s is not None and now >= self._next_scan:
            self._next_scan = now + 1.0
            seen = self._activity()
            if seen != self._seen:
                self._seen, self.last_activity = seen, now
            elif now - self.last_activity >= self.spec.idle_timeout_s:
                self.ended_by = "idle"
                return (f"it was idle for {self.spec.idle_timeout_s:g} s (no LLM call, no validation and no file "
                        "written in its folders): hung")
        return None


def _inner_backend(backend: SandboxBackend, spec: CommandAgentSpec) -> SandboxBackend:
    """The backend a whole-episode program runs in: the warm mode's inner backend (a program is not a step
    of pre-imported Python), a docker backend for an image; never a non-isolated one."""
    inner = getattr(backend, "inner", backend)
    if spec.image:
        if inner.name != "docker":
            raise SandboxError(f"a command agent given as an image ({spec.image}) runs with --sandbox docker, "
                               f"not {inner.name}")
        program = copy.copy(inner)  # the same engine connection, the agent's image
        setattr(program, "image", spec.image)  # noqa: B010 - a DockerBackend, whose attributes the protocol omits
        setattr(program, "gpu_image", spec.image)  # noqa: B010
        return program
    if not inner.isolated:
        raise SandboxError(f"a command agent needs an isolated sandbox with its own network (bwrap or docker); "
                           f"'{inner.name}' cannot keep the API key and the network from the program")
    return inner


def _gateway(spec: CommandAgentSpec, records_dir: Path, cost_budget_usd: float | None) -> LLMGateway:
    from dojoflow.llm.client import LLMClient

    check_ready(spec)
    key = os.environ.get(spec.api_key_env) if spec.api_key_env else None
    client = LLMClient(spec.model or "unspecified", spec.base_url, api_key=key, cache=False)
    return LLMGateway(client, records_dir, token_budget=spec.token_budget, cost_budget_usd=cost_budget_usd,
                      model=spec.model)


def _environment(spec: CommandAgentSpec, env: MLEEnvironment, wall_time_s: float) -> dict[str, str]:
    values = {"SUBMISSION_DIR": layout.SUBMISSION_DIR, "CODE_DIR": layout.CODE_DIR, "LOGS_DIR": layout.LOGS_DIR,
              "AGENT_DIR": layout.AGENT_DIR, "TIME_LIMIT_SECS": str(int(wall_time_s)),
              "COMPETITION_ID": env.spec.id, "DOJOFLOW_VALIDATE_URL": layout.VALIDATE_URL}
    if spec.gateway:
        values.update({"OPENAI_BASE_URL": layout.GATEWAY_URL, "OPENAI_API_BASE": layout.GATEWAY_URL,
                       "OPENAI_API_KEY": PLACEHOLDER_KEY})
        if spec.model:
            values["DOJOFLOW_LLM_MODEL"] = spec.model
    values.update(spec.env)
    return values


def build_request(env: MLEEnvironment, spec: CommandAgentSpec, sockets: Path, wall_time_s: float,
                  stop_when: Callable[[], str | None] | None = None) -> ExecutionRequest:
    """The sandbox request of the whole run (see ``layout.py`` for what is mounted where)."""
    host = layout.HostLayout(env.episode_dir)
    mounts = [Mount(Path(env.public_dir), layout.DATA),
              *(Mount(host.output(name), f"{layout.HOME}/{name}", writable=True) for name in layout.OUTPUT_DIRS),
              Mount(host.home_files / "instructions.txt", layout.INSTRUCTIONS),
              Mount(host.home_files / "validate_submission.sh", layout.VALIDATE_SCRIPT),
              Mount(sockets, layout.SOCKETS), Mount(INSIDE_DIR, layout.TOOLS),
              *(Mount(Path(b), str(Path(b).resolve())) for b in spec.binds)]
    forwards = ["--listen", f"{layout.VALIDATE_PORT}={layout.SOCKETS}/{layout.VALIDATE_SOCKET}"]
    if spec.gateway:
        forwards += ["--listen", f"{layout.GATEWAY_PORT}={layout.SOCKETS}/{layout.GATEWAY_SOCKET}"]
    command = (sys.executable, f"{layout.TOOLS}/forward.py", *forwards, "--", *spec.argv)
    resources = env.spec.resources
    limits = ExecutionLimits(timeout_s=wall_time_s, memory_mb=resources.memory_mb, max_output_bytes=MAX_OUTPUT_BYTES,
                             keep_output_bytes=KEEP_OUTPUT_BYTES, max_processes=MAX_PROCESSES, max_file_mb=MAX_FILE_MB)
    return ExecutionRequest(command, host.workspace, None, limits, gpu=env.gpu, extra_env=_environment(spec, env,
                            wall_time_s), hidden=hidden_source_dirs(), workspace_inside=layout.AGENT_DIR,
                            mounts=tuple(mounts), sealed=(layout.HOME,), stop_when=stop_when)


def _prepare(env: MLEEnvironment, spec: CommandAgentSpec, wall_time_s: float) -> layout.HostLayout:
    host = layout.HostLayout(env.episode_dir)
    for name in layout.OUTPUT_DIRS:
        host.output(name).mkdir(parents=True, exist_ok=True)
    host.workspace.mkdir(parents=True, exist_ok=True)
    if spec.agent_dir:
        shutil.copytree(spec.agent_dir, host.workspace, symlinks=True, dirs_exist_ok=True)
    host.home_files.mkdir(parents=True, exist_ok=True)
    (host.home_files / "instructions.txt").write_text(layout.instructions(wall_time_s))
    script = host.home_files / "validate_submission.sh"
    script.write_text(layout.validate_script())
    script.chmod(0o755)
    return host


def _check_exposure(spec: CommandAgentSpec, home: Path) -> None:
    """A bound or copied folder must not contain the dojoflow home (prepared answers, other episodes) nor
    lie inside it."""
    home = home.resolve()
    for kind, folder in [*(("bind", b) for b in spec.binds), *((("agent_dir", spec.agent_dir),) if spec.agent_dir
                                                              else ())]:
        path = Path(folder).resolve()
        if path == home or home.is_relative_to(path) or path.is_relative_to(home):
            raise SandboxError(f"command agent: {kind} {folder} would expose the dojoflow home {home} (the "
                               "hidden answers) to the agent; bind or copy a folder outside it")


def _restrict(sockets: Path, uid: int | None) -> None:
    """As root, the sockets belong to the sandbox's own uid, and no other local user may connect to them."""
    if uid is None:
        return
    for sock in sockets.iterdir():
        os.chown(sock, uid, uid)
        sock.chmod(0o600)


def check_ready(spec: CommandAgentSpec) -> None:
    """What can be checked on the machine that runs the episode before any work: the gateway's key."""
    if spec.gateway and spec.api_key_env and not os.environ.get(spec.api_key_env):
        raise SandboxError(f"command agent: the environment variable {spec.api_key_env} (api_key_env) is not set")


def _ending(result: ExecutionResult, watch: _Watch, wall_time_s: float) -> tuple[str, str]:
    """(ended_by, why) of a finished run."""
    if result.error:
        return "not-started", f"the sandbox could not run the agent: {result.error}"
    if result.stop_reason:
        return watch.ended_by or "stopped", f"the agent was stopped: {result.stop_reason}"
    if result.timed_out:
        return "wall-time", f"the agent ran past the wall-clock budget of {wall_time_s:g} s and was stopped"
    if result.oom:
        return "out-of-memory", "the agent exceeded the memory limit and was killed"
    if result.output_limited:
        return "output-limit", f"the agent printed more than {MAX_OUTPUT_BYTES >> 20} MiB and was stopped"
    if result.exit_code == 0:
        return "exit", "the agent exited with status 0"
    last = (result.stderr.strip().splitlines() or ["(no error output)"])[-1][:300]
    return "crash", f"the agent exited with status {result.exit_code}: {last}"


def run_command_agent(env: MLEEnvironment, spec: CommandAgentSpec, wall_time_s: float | None = None,
                      cost_budget_usd: float | None = None) -> CommandRun:
    """Run ``spec`` for the whole episode in ``env``'s sandbox; record it as the episode's step 0."""
    wall = float(wall_time_s or DEFAULT_WALL_TIME_S)
    _check_exposure(spec, env.settings.home)
    backend = _inner_backend(env.sandbox, spec)
    host = _prepare(env, spec, wall)
    sockets = Path(tempfile.mkdtemp(prefix="dojoflow-sock-"))  # short: a socket path has at most 107 bytes
    sockets.chmod(0o711)  # the sandbox uid may connect to the sockets, not list the folder
    expected = answer_table(env.spec, env.data, "all").column(env.spec.submission.id_column)
    validator = ValidationEndpoint(env.spec, expected, env.episode_dir / "validation")
    endpoints: list[Endpoint] = [Endpoint(validator.handle, unix_path=sockets / layout.VALIDATE_SOCKET)]
    gateway = _gateway(spec, env.episode_dir / "llm", cost_budget_usd) if spec.gateway else None
    try:
        if gateway is not None:
            gateway.serve(sockets / layout.GATEWAY_SOCKET)
        watch = _Watch(gateway, validator, spec, [host.output(name) for name in layout.OUTPUT_DIRS])
        request = build_request(env, spec, sockets, wall, watch)
        _restrict(sockets, step_uid(request))
        step_dir = env.step_dir(0)
        step_dir.mkdir(parents=True, exist_ok=True)
        (step_dir / "command.txt").write_text(" ".join(spec.argv) + "\n")
        result = backend.run(request)
    finally:
        for endpoint in endpoints:
            endpoint.close()
        if gateway is not None:
            gateway.close()
        shutil.rmtree(sockets, ignore_errors=True)
    ended_by, reason = _ending(result, watch, wall)
    return _record(env, spec, result, ended_by, reason, gateway, validator, backend)


def _record(env: MLEEnvironment, spec: CommandAgentSpec, result: ExecutionResult, ended_by: str, reason: str,
            gateway: LLMGateway | None, validator: ValidationEndpoint, backend: SandboxBackend) -> CommandRun:
    host = layout.HostLayout(env.episode_dir)
    step_dir = env.step_dir(0)
    (step_dir / "stdout.txt").write_text(result.stdout)
    (step_dir / "stderr.txt").write_text(result.stderr)
    note = collect_submission(host.submission, step_dir / SUBMISSION_FILE)
    submitted = (step_dir / SUBMISSION_FILE).is_file()
    usage = gateway.usage_info() if gateway else {"tokens": 0, "cost_usd": 0.0, "llm_calls": 0}
    info = {**usage, "ended_by": ended_by, "end_reason": reason, "validation_calls": validator.calls,
            "note": f"command agent: {reason}",
            "llm": [{"index": c.index, "model": c.model, "status": c.status, "tokens": c.tokens,
                     "cost_usd": round(c.cost_usd, 8), "latency_s": c.latency_s} for c in gateway.calls]
            if gateway else []}
    record = StepRecord(index=0, action={"type": "agent_command", "command": spec.argv}, reward=0.0,
                        observation=reason, agent=info,
                        execution={k: v for k, v in result.to_dict().items() if k not in ("stdout", "stderr")})
    if note:
        record.errors.append(note)
    if result.error:
        record.errors.append(result.error)
    record.duration_s = round(result.duration_s, 4)
    env.history.append(record)
    if submitted:
        final_step, final_reason = 0, f"the file at {layout.SUBMISSION} when the agent ended ({ended_by}) was graded"
    else:
        final_step, final_reason = None, f"the agent left no file at {layout.SUBMISSION} ({ended_by})"
    uid = step_uid(ExecutionRequest((), host.workspace)) if backend.name == "bwrap" else None
    return CommandRun(result, ended_by, reason, final_step, final_reason, usage, uid,
                      str(env.episode_dir / "llm") if gateway else None)
