"""The integrity checks of a command episode (the program is a black box, so the step-level re-run of
``dojo/integrity.py`` has no code to re-run; MLE-bench grades the file as it is):

- ``not_constant``: the predictions are not one constant value (as for every episode);
- ``llm_records``: every LLM call the gateway answered is recorded with its request and response, and the
  recorded tokens add up to what the episode was charged (so the accounting is complete);
- ``no_leftover_processes``: no process of the sandbox's uid is alive after the run (bwrap as root, where
  each episode has its own uid; the docker backend force-removes the container instead).
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

from dojoflow.dojo.integrity import Check, check_not_constant
from dojoflow.llm.gateway import read_calls

if TYPE_CHECKING:
    from dojoflow.agents.external.runner import CommandRun
    from dojoflow.dojo.env import MLEEnvironment

LEFTOVER_WAIT_S = 5.0


def processes_of(uid: int) -> list[int]:
    """Host pids of the processes running as ``uid``."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            status = (entry / "status").read_text()
        except OSError:
            continue
        if any(line.startswith("Uid:") and line.split()[1] == str(uid) for line in status.splitlines()):
            pids.append(int(entry.name))
    return pids


def check_llm_records(run: CommandRun) -> Check:
    """The gateway's records are complete and add up to the episode's accounting."""
    if run.records_dir is None:
        return Check("llm_records", True, "the agent ran without the LLM gateway (no LLM access at all)")
    calls = read_calls(Path(run.records_dir))
    exchanges_file = Path(run.records_dir) / "exchanges.jsonl"
    exchanges = [json.loads(line) for line in exchanges_file.read_text().splitlines()] if exchanges_file.is_file() \
        else []
    answered = [c for c in calls if c["status"] == 200]
    complete = len(exchanges) == len(calls) and all(
        e["request"] is not None and (e["response"] is not None) == (e["status"] == 200) for e in exchanges)
    tokens = sum(c["prompt_tokens"] + c["completion_tokens"] for c in answered)
    charged = int(run.usage.get("tokens", 0))
    evidence = {"calls": len(calls), "answered": len(answered), "recorded_tokens": tokens, "charged_tokens": charged}
    if not complete:
        return Check("llm_records", False, "the gateway's records are incomplete (a call without its request or "
                                           "response)", evidence)
    if tokens != charged:
        return Check("llm_records", False, f"recorded tokens ({tokens}) differ from the tokens charged ({charged})",
                     evidence)
    return Check("llm_records", True, f"{len(answered)} LLM calls recorded with request and response", evidence)


def check_no_leftovers(uid: int) -> Check:
    """Nothing of the sandbox's uid survives the run."""
    deadline = time.monotonic() + LEFTOVER_WAIT_S
    left = processes_of(uid)
    while left and time.monotonic() < deadline:
        time.sleep(0.1)
        left = processes_of(uid)
    if left:
        return Check("no_leftover_processes", False, f"{len(left)} processes of the agent outlived the episode",
                     {"pids": left[:20]})
    return Check("no_leftover_processes", True, "no process of the agent outlived the episode")


def run_command_integrity_checks(env: MLEEnvironment, run: CommandRun) -> dict:
    """All checks; ``passed`` only when every check passed."""
    checks = [check_not_constant(env), check_llm_records(run)]
    if run.uid is not None:
        checks.append(check_no_leftovers(run.uid))
    return {"passed": all(c.passed for c in checks), "checks": [asdict(c) for c in checks]}
