"""Acceptance: the original AIDE (``aideml`` from the package index, in its own cached virtual environment)
runs unchanged as a command agent on a built-in task under bwrap, through the LLM gateway, against the
scripted OpenAI-compatible server (plan-and-code replies with real scikit-learn scripts; reviews through
function calling, as AIDE asks for them).

The environment is built once into ``$DOJOFLOW_AGENT_VENVS`` (default ``~/.cache/dojoflow/agent-venvs``);
without the package index the test is skipped with pip's message.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dojoflow.agents.external.venvs import AIDEML, VenvError, ensure_venv, entry_point
from dojoflow.flows.config import EpisodeConfig
from dojoflow.flows.episode import drive_episode
from dojoflow.infra.sandbox.bwrap import bwrap_available

from scripted_llm_server import ScriptedLLMServer, penguins_script, tool_call

AVAILABLE, REASON = bwrap_available()
pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not AVAILABLE, reason=f"bubblewrap sandbox unavailable here: {REASON}")]
EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "command_agents"
STEPS = 2


@pytest.fixture(scope="module")
def aide_venv() -> Path:
    try:
        return ensure_venv(AIDEML)
    except VenvError as exc:
        pytest.skip(f"aideml could not be installed from the package index: {exc}")


def aide_script(model: str) -> str:
    """A penguins script rewritten for AIDE's layout (data in ./input, submission in ./working)."""
    return penguins_script(model).replace('"data/', '"./input/').replace('to_csv("submission.csv"',
                                                                        'to_csv("./working/submission.csv"')


def responder(body: dict) -> str | dict:
    if body.get("tools"):  # AIDE's review of an execution (function calling)
        assert body["tools"][0]["function"]["name"] == "submit_review"
        return tool_call("submit_review", {"is_bug": False, "summary": "The model trained; CV rmse printed.",
                                           "metric": 310.0, "lower_is_better": True})
    prompt = json.dumps(body["messages"])
    assert "/home/submission/submission.csv" in prompt  # the instructions reached AIDE's task description
    return ("I will fit a ridge regression on all features with one-hot encoded categoricals.\n\n"
            f"```python\n{aide_script('ridge')}\n```")


def test_original_aide_runs_as_a_command_agent(settings, aide_venv):
    aide = entry_point(aide_venv, AIDEML)
    with ScriptedLLMServer(responder) as server:
        config = EpisodeConfig(task_id="penguins-body-mass", agent="aideml", sandbox="bwrap", wall_time_s=600,
                               command={"command": "sh aide_start.sh", "agent_dir": str(EXAMPLES),
                                        "binds": [str(aide_venv)], "model": "scripted-coder",
                                        "base_url": server.base_url,
                                        "env": {"AIDE_BIN": str(aide), "AIDE_STEPS": str(STEPS)}})
        result = drive_episode(config)
    episode = Path(result.episode_dir)
    stderr = (episode / "steps" / "000" / "stderr.txt").read_text()
    assert result.ended_by == "exit", f"{result.end_reason}\n{stderr[-3000:]}"
    assert result.valid and result.score is not None, result.errors
    # two nodes: one plan-and-code call and one review each, all through the gateway
    assert server.count == 2 * STEPS and result.llm_calls == 2 * STEPS
    assert all(r["model"] == "scripted-coder" for r in server.requests)
    assert result.integrity["passed"], result.integrity
    logs = episode / "logs"
    assert (logs / "0-exp" / "journal.json").is_file() and (episode / "code" / "best_solution.py").is_file()
    journal = json.loads((logs / "0-exp" / "journal.json").read_text())
    assert len(journal["nodes"]) == STEPS
