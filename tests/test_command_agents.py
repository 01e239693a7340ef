"""Command agents: external programs run for a whole episode under bwrap with MLE-bench's paths, through
the LLM gateway, against the scripted OpenAI-compatible server; every way a run can end is recorded; the
CLI and a sweep spec run them; the records reach MLflow and the artifact store."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
from prefect_helpers import completed_task_names

from dojoflow.flows.config import EpisodeConfig
from dojoflow.flows.episode import drive_episode
from dojoflow.infra.sandbox.bwrap import bwrap_available

from scripted_llm_server import ScriptedLLMServer

AVAILABLE, REASON = bwrap_available()
pytestmark = pytest.mark.skipif(not AVAILABLE, reason=f"bubblewrap sandbox unavailable here: {REASON}")

REPO = Path(__file__).resolve().parents[1]
EXAMPLE_AGENT = REPO / "examples" / "command_agents"
TASK = "penguins-body-mass"
KEY = "sk-host-secret-for-command-agents"

# A valid submission written with the standard library only: the mean target for every test id.
WRITE_MEAN = '''
import csv, os, statistics
rows = list(csv.DictReader(open("/home/data/train.csv")))
sample = list(csv.DictReader(open("/home/data/sample_submission.csv")))
id_col, target = list(sample[0].keys())
mean = statistics.mean(float(r[target]) for r in rows if r[target])
test = list(csv.DictReader(open("/home/data/test.csv")))
with open("/home/submission/submission.csv", "w") as f:
    f.write(f"{id_col},{target}\\n")
    for i, r in enumerate(test):
        f.write(f"{r[id_col]},{mean + i % 7}\\n")
'''


def agent_dir(tmp_path: Path, code: str) -> Path:
    folder = tmp_path / "agent"
    folder.mkdir(exist_ok=True)
    (folder / "agent.py").write_text(textwrap.dedent(code))
    return folder


def run(tmp_path: Path, code: str, track: bool = False, wall_time_s: float = 60, sandbox: str = "bwrap",
        **options):
    command = {"command": "python agent.py", "agent_dir": str(agent_dir(tmp_path, code)), **options}
    config = EpisodeConfig(task_id=TASK, agent="test-agent", sandbox=sandbox, track=track, wall_time_s=wall_time_s,
                           command=command)
    return drive_episode(config)


@pytest.mark.slow
def test_mlebench_script_runs_unchanged_end_to_end_and_is_recorded(settings, monkeypatch):
    from mlflow.tracking import MlflowClient

    monkeypatch.setenv("DOJOFLOW_LLM_API_KEY", KEY)
    with ScriptedLLMServer(["A random forest: forest."]) as server:
        config = EpisodeConfig(task_id=TASK, agent="mlebench-script", sandbox="warm", wall_time_s=300, command={
            "command": "python mlebench_agent.py", "agent_dir": str(EXAMPLE_AGENT), "model": "scripted-model",
            "base_url": server.base_url})
        result = drive_episode(config)
    assert result.valid and result.score is not None, result.errors
    assert result.ended_by == "exit" and result.sandbox == "bwrap"  # the warm mode's inner backend
    assert result.integrity["passed"], result.integrity
    assert result.llm_calls == 1 and result.tokens == sum(server.usage.values())
    assert server.headers[0]["authorization"] == f"Bearer {KEY}"  # injected by the gateway
    episode = Path(result.episode_dir)
    log = (episode / "logs" / "agent.log").read_text()
    assert "using forest" in log and '"valid": true' in log  # the model's answer and the checker were used
    assert (episode / "code" / "solution.py").is_file()
    step = result.trajectory[0]
    assert step["action"]["type"] == "agent_command" and step["agent"]["validation_calls"] == 1
    assert step["agent"]["llm"][0]["tokens"] == result.tokens
    for path in episode.rglob("*"):
        if path.is_file():
            assert KEY not in path.read_text(errors="replace"), f"the API key is in {path}"

    client = MlflowClient(settings.tracking_uri)
    run_ = client.get_run(result.mlflow_run_id)
    assert run_.data.tags["dojoflow.ended_by"] == "exit"
    assert "mlebench_agent.py" in run_.data.params["agent_command"]
    history = client.get_metric_history(result.mlflow_run_id, "llm_call_tokens")
    assert [m.value for m in history] == [float(result.tokens)]
    top = {a.path for a in client.list_artifacts(result.mlflow_run_id)}
    assert {"code", "logs", "llm", "validation", "steps", "final_submission.csv"} <= top
    llm_files = {a.path for a in client.list_artifacts(result.mlflow_run_id, "llm")}
    assert {"llm/calls.jsonl", "llm/exchanges.jsonl"} <= llm_files
    store = Path(result.artifacts_uri.removeprefix("file://"))
    assert (store / "code" / "solution.py").is_file() and (store / "logs" / "agent.log").is_file()


def test_a_crash_still_grades_the_submission_and_says_why(settings, tmp_path):
    result = run(tmp_path, WRITE_MEAN + "import sys\nprint('giving up', file=sys.stderr)\nsys.exit(3)\n",
                 gateway=False)
    assert result.ended_by == "crash" and "status 3: giving up" in result.end_reason
    assert result.valid and result.final_step == 0


def test_a_hanging_agent_is_stopped_at_the_wall_time_and_leaves_nothing_behind(settings, tmp_path):
    code = WRITE_MEAN + "import signal, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\ntime.sleep(600)\n"
    result = run(tmp_path, code, wall_time_s=4, gateway=False)
    assert result.ended_by == "wall-time" and "4 s" in result.end_reason
    assert result.valid  # what was in the submission path when it was stopped
    checks = {c["name"]: c for c in result.integrity["checks"]}
    assert checks["no_leftover_processes"]["passed"]


def test_an_idle_agent_is_stopped_as_hung(settings, tmp_path):
    result = run(tmp_path, "import time\ntime.sleep(600)\n", wall_time_s=60, gateway=False, idle_timeout_s=2)
    assert result.ended_by == "idle" and "hung" in result.end_reason
    assert not result.valid and result.final_step is None and "left no file" in result.final_reason
    assert result.wall_time_s < 30


def test_the_token_budget_ends_the_agent_after_its_grace_period(settings, tmp_path):
    code = '''
    import json, os, time, urllib.error, urllib.request
    statuses = []
    for i in range(200):
        body = json.dumps({"model": "m", "messages": [{"role": "user", "content": f"call {i}"}]}).encode()
        req = urllib.request.Request(os.environ["OPENAI_BASE_URL"] + "/chat/completions", data=body,
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req) as reply:
                statuses.append(reply.status)
        except urllib.error.HTTPError as exc:
            statuses.append(exc.code)
        open("/home/logs/statuses.json", "w").write(json.dumps(statuses))
        time.sleep(0.05)
    '''
    with ScriptedLLMServer(["some words in the reply"]) as server:
        result = run(tmp_path, code, model="scripted-model", base_url=server.base_url, token_budget=60,
                     budget_grace_s=1)
    statuses = json.loads((Path(result.episode_dir) / "logs" / "statuses.json").read_text())
    assert result.ended_by == "token-budget", result.end_reason
    assert statuses[0] == 200 and 402 in statuses and set(statuses) <= {200, 402}
    answered = statuses.count(200)
    assert server.count == answered and result.llm_calls == answered
    # the gateway counts every refusal; the agent's file can miss its last one (stopped before writing it)
    assert statuses.count(402) <= result.trajectory[0]["agent"]["llm_calls_refused"] <= statuses.count(402) + 1
    assert result.tokens >= 60


def test_cost_budget_from_the_episode_config(settings, tmp_path, monkeypatch):
    prices = tmp_path / "prices.json"
    prices.write_text(json.dumps({"costly-model": [100000.0, 100000.0]}))  # $0.1 per token
    monkeypatch.setenv("DOJOFLOW_LLM_PRICES", str(prices))
    code = '''
    import json, os, urllib.error, urllib.request
    for i in range(3):
        req = urllib.request.Request(os.environ["OPENAI_BASE_URL"] + "/chat/completions",
                                     data=json.dumps({"messages": [{"role": "user", "content": "x"}]}).encode(),
                                     headers={"Content-Type": "application/json"})
        try:
            urllib.request.urlopen(req).read()
        except urllib.error.HTTPError as exc:
            print("refused", exc.code, json.loads(exc.read())["error"]["code"])
    '''
    with ScriptedLLMServer(["ok"]) as server:
        command = {"command": "python agent.py", "agent_dir": str(agent_dir(tmp_path, code)), "model": "costly-model",
                   "base_url": server.base_url}
        result = drive_episode(EpisodeConfig(task_id=TASK, agent="cost", sandbox="bwrap", track=False, wall_time_s=60,
                                             cost_budget_usd=0.5, command=command))
    assert server.count == 1 and result.cost_usd >= 0.5
    assert "refused 402 budget_exceeded" in (Path(result.episode_dir) / "steps" / "000" / "stdout.txt").read_text()


def test_cli_runs_a_command_agent(settings, tmp_path):
    from typer.testing import CliRunner

    from dojoflow.cli import app

    folder = agent_dir(tmp_path, WRITE_MEAN + "print('env', os.environ['MY_SETTING'])\n")
    args = ["run", "--task", TASK, "--agent-command", "python agent.py", "--agent-dir", str(folder), "--agent-env",
            "MY_SETTING=42", "--agent-name", "cli-agent", "--sandbox", "bwrap", "--wall-time", "60", "--no-prefect",
            "--json", "--agent-option", "gateway=false"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout.strip().splitlines()[-1])
    assert data["agent"] == "cli-agent" and data["valid"] and data["ended_by"] == "exit"
    assert "env 42" in (Path(data["episode_dir"]) / "steps" / "000" / "stdout.txt").read_text()

    bad = CliRunner().invoke(app, ["run", "--task", TASK, "--agent-command", "true", "--agent-option", "colour=red"])
    assert bad.exit_code == 2 and "unknown options colour" in bad.output
    local = CliRunner().invoke(app, ["run", "--task", TASK, "--agent-command", "true", "--sandbox", "local",
                                     "--no-prefect"])
    assert local.exit_code == 2 and "isolated sandbox" in local.output


def test_sweep_spec_with_command_agents(tmp_path):
    from dojoflow.errors import SweepSpecError
    from dojoflow.flows.sweep import episode_config
    from dojoflow.flows.sweep_spec import parse_sweep_spec

    folder = agent_dir(tmp_path, WRITE_MEAN)
    spec = parse_sweep_spec({"name": "byo", "tasks": [TASK], "seeds": 1,
                             "budget": {"wall_time_s": 120, "cost_budget_usd": 2.5},
                             "agents": ["baseline", {"name": "my-agent", "command": "python agent.py",
                                                     "options": {"agent_dir": str(folder), "token_budget": 1000}}]})
    config = episode_config(spec, spec.agents[1], TASK, 0)
    assert config.agent == "my-agent" and config.command["command"] == "python agent.py"
    assert config.command["token_budget"] == 1000 and config.wall_time_s == 120 and config.cost_budget_usd == 2.5
    assert config.episode_key == f"byo--my-agent--{TASK}--s0"
    assert parse_sweep_spec(spec.to_dict()) == spec
    with pytest.raises(SweepSpecError, match="unknown options"):
        parse_sweep_spec({"name": "x", "tasks": [TASK], "agents": [{"name": "a", "command": "c",
                                                                    "options": {"nope": 1}}]})


DAG_TASKS = {"data-prep", "execution", "final-grading", "integrity-check", "record"}


@pytest.mark.integration
@pytest.mark.slow
def test_command_agent_as_prefect_dag_and_in_a_sweep(prefect_api, settings, tmp_path):
    from dojoflow.flows.prefect_episode import run_episode
    from dojoflow.flows.prefect_sweep import sweep_flow
    from dojoflow.flows.sweep_spec import parse_sweep_spec
    from dojoflow.storage.results import load_results

    folder = agent_dir(tmp_path, WRITE_MEAN)
    command = {"command": "python agent.py", "agent_dir": str(folder), "gateway": False}
    result = run_episode(EpisodeConfig(task_id=TASK, agent="dag-agent", sandbox="bwrap", wall_time_s=60,
                                       command=command))
    assert result["valid"] and result["ended_by"] == "exit"

    assert completed_task_names(result["flow_run_id"], DAG_TASKS) == DAG_TASKS

    spec = parse_sweep_spec({"name": "byo-sweep", "tasks": [TASK], "seeds": [0, 1], "sandbox": "bwrap",
                             "budget": {"wall_time_s": 60}, "concurrency": {"episodes": 2},
                             "agents": [{"name": "mean-agent", "command": "python agent.py",
                                         "options": {"agent_dir": str(folder), "gateway": False}}]})
    states = {s["key"]: s["state"] for s in sweep_flow(spec.to_dict())}
    assert set(states.values()) == {"completed"} and len(states) == 2
    rows = load_results(settings.results_dir)
    rows = rows[rows["sweep_id"] == "byo-sweep"]
    assert sorted(rows["agent"]) == ["mean-agent", "mean-agent"] and rows["valid"].all()


def test_command_agent_under_docker_where_an_engine_answers(settings, tmp_path, docker_engine):
    from dojoflow.infra.sandbox.docker_backend import DEFAULT_IMAGE

    from conftest import require_image

    require_image(docker_engine, DEFAULT_IMAGE)
    code = WRITE_MEAN + '''
import json, urllib.request
req = urllib.request.Request(os.environ["OPENAI_BASE_URL"] + "/chat/completions", data=json.dumps(
    {"messages": [{"role": "user", "content": "hi"}]}).encode(), headers={"Content-Type": "application/json"})
print(json.loads(urllib.request.urlopen(req).read())["choices"][0]["message"]["content"])
'''
    with ScriptedLLMServer(["hello from the gateway"]) as server:
        result = run(tmp_path, code, image=DEFAULT_IMAGE, model="scripted-model", base_url=server.base_url,
                     sandbox="docker")
    assert result.ended_by == "exit" and result.valid and result.llm_calls == 1, result.end_reason


def test_an_interrupted_run_takes_the_sandbox_down(tmp_path):
    import time

    from dojoflow.agents.external.integrity import processes_of
    from dojoflow.infra.sandbox import ExecutionLimits, ExecutionRequest
    from dojoflow.infra.sandbox.bwrap import BwrapBackend
    from dojoflow.infra.sandbox.workspace import is_privileged, sandbox_uid

    workspace = tmp_path / "ws"
    workspace.mkdir()
    started = time.monotonic()

    def interrupt():  # SIGINT arriving while the harness waits for a long agent run
        if time.monotonic() - started > 1.0:
            raise KeyboardInterrupt
        return None

    request = ExecutionRequest(("/bin/sh", "-c", "sleep 300 & sleep 300"), workspace, limits=ExecutionLimits(
        timeout_s=120), stop_when=interrupt)
    with pytest.raises(KeyboardInterrupt):
        BwrapBackend().run(request)
    assert time.monotonic() - started < 30
    if is_privileged():
        deadline = time.monotonic() + 5
        while processes_of(sandbox_uid(workspace)) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert processes_of(sandbox_uid(workspace)) == []


def test_a_missing_key_variable_fails_before_any_work(settings, tmp_path, monkeypatch):
    from dojoflow.errors import SandboxError

    monkeypatch.delenv("NO_SUCH_KEY_VARIABLE", raising=False)
    config = EpisodeConfig(task_id=TASK, agent="x", sandbox="bwrap", track=False, command={
        "command": "true", "api_key_env": "NO_SUCH_KEY_VARIABLE"})
    with pytest.raises(SandboxError, match="NO_SUCH_KEY_VARIABLE"):
        drive_episode(config)


def test_agents_cli_lists_agents_and_names_recipes():
    from typer.testing import CliRunner

    from dojoflow.cli import app

    listed = CliRunner().invoke(app, ["agents", "list"])
    assert listed.exit_code == 0 and "baseline" in listed.output and "--agent-command" in listed.output
    unknown = CliRunner().invoke(app, ["agents", "venv", "nope"])
    assert unknown.exit_code == 2 and "known: aideml" in unknown.output


def test_the_example_sweep_spec_parses_with_paths_from_its_folder():
    from dojoflow.flows.sweep_spec import load_sweep_spec

    spec = load_sweep_spec(REPO / "examples" / "sweep_command_agents.yaml")
    command = spec.agents[1].command
    assert command["agent_dir"] == str(EXAMPLE_AGENT) and command["gateway"] is False
    assert spec.wall_time_s == 900 and spec.cost_budget_usd == 2.0
