"""The paths a command agent sees, after MLE-bench's contract, and the instructions it is given.

Inside the sandbox (host folders under the episode directory in brackets):

| path | what | host |
| --- | --- | --- |
| ``/home/data/`` | the task's public data, ``description.md`` included, read-only | the prepared ``public/`` |
| ``/home/submission/`` | where ``submission.csv`` must be written | ``<episode>/submission/`` |
| ``/home/code/``, ``/home/logs/`` | the agent's code and logs (artifacts) | ``<episode>/code/``, ``logs/`` |
| ``/home/agent/`` | the working directory and ``HOME`` (scratch, not kept as an artifact) | ``<episode>/workspace/`` |
| ``/home/instructions.txt`` | the instructions, read-only | ``<episode>/home/instructions.txt`` |
| ``/home/validate_submission.sh`` | the submission checker (format only), read-only | ``<episode>/home/`` |
| ``localhost:5000/validate`` | the validation endpoint (as in MLE-bench) | a unix socket of the harness |
| ``localhost:8000/v1`` | the LLM gateway (``OPENAI_BASE_URL``) | a unix socket of the harness |
| ``/opt/dojoflow/`` | the launcher and the checker's client, read-only | ``infra/sandbox/inside/`` |

``/home`` itself is read-only: a program may write only in the folders above and ``/tmp``. The environment
has MLE-bench's variables (``SUBMISSION_DIR``, ``CODE_DIR``, ``LOGS_DIR``, ``AGENT_DIR``,
``TIME_LIMIT_SECS``, ``COMPETITION_ID``) plus ``OPENAI_BASE_URL`` and a placeholder ``OPENAI_API_KEY``.
"""

from __future__ import annotations

import shlex
import sys
from dataclasses import dataclass
from pathlib import Path

HOME = "/home"
DATA = "/home/data"
SUBMISSION_DIR = "/home/submission"
SUBMISSION = "/home/submission/submission.csv"
CODE_DIR = "/home/code"
LOGS_DIR = "/home/logs"
AGENT_DIR = "/home/agent"
INSTRUCTIONS = "/home/instructions.txt"
VALIDATE_SCRIPT = "/home/validate_submission.sh"
SOCKETS = "/run/dojoflow"
TOOLS = "/opt/dojoflow"
VALIDATE_PORT = 5000
GATEWAY_PORT = 8000
VALIDATE_URL = f"http://localhost:{VALIDATE_PORT}/validate"
GATEWAY_URL = f"http://localhost:{GATEWAY_PORT}/v1"
VALIDATE_SOCKET, GATEWAY_SOCKET = "validate.sock", "llm.sock"
OUTPUT_DIRS = ("submission", "code", "logs")  # writable folders of the episode directory


@dataclass(frozen=True)
class HostLayout:
    """The host side of the layout for one episode."""

    episode_dir: Path

    @property
    def workspace(self) -> Path:
        """``/home/agent``."""
        return self.episode_dir / "workspace"

    @property
    def home_files(self) -> Path:
        """The read-only files placed in ``/home`` (instructions, checker script)."""
        return self.episode_dir / "home"

    def output(self, name: str) -> Path:
        """``submission``, ``code`` or ``logs``."""
        return self.episode_dir / name

    @property
    def submission(self) -> Path:
        """Where ``/home/submission/submission.csv`` is on the host."""
        return self.output("submission") / "submission.csv"


INSTRUCTIONS_TEXT = """\
You are taking part in an offline machine-learning competition run by dojoflow, in the format of MLE-bench.
Train a model and use it on the test set to write a submission file. Do not hand-label the data.

BENCHMARK INSTRUCTIONS
------
These instructions are also in `{instructions}`.

- **Competition instructions**: `{data}/description.md` describes the task, its data and its metric.
- **Dataset**: the competition's files are in `{data}/` (read-only).
- **Submission**: whatever the competition's description says, write your predictions as a CSV file at
  `{submission}`. Only that file is graded; without it the attempt fails.
- **Test set**: the train/test split was made for this benchmark, so the data may differ a little from
  the description; work with the files you have.
- **Submission checker**: POST a file to `{validate_url}` (e.g. `curl -X POST -F "file=@submission.csv"
  {validate_url}`) to learn whether it is valid. It checks the format only and never gives a score.
  `{validate_script} FILE` does it for you.
- **Your folders**: put your code in `{code}/` and your logs in `{logs}/` (both are kept); `{agent}/` is your
  working directory. Nothing else under `/home` is writable.
- **Time limit**: {time_limit}. When it runs out your program is stopped and `{submission}` is graded as it
  is then.
- **Models**: an OpenAI-compatible endpoint is at `$OPENAI_BASE_URL` ({gateway_url}); calls are budgeted and
  recorded. There is no other network access.
- **Cheating**: do not look for other people's solutions to this competition.

Your submission is graded with the competition's metric on held-out test labels.
"""


def instructions(time_limit_s: float) -> str:
    """The instructions file's text."""
    hours, rest = divmod(int(time_limit_s), 3600)
    limit = f"{hours} h {rest // 60} min {rest % 60} s" if hours else f"{rest // 60} min {rest % 60} s"
    return INSTRUCTIONS_TEXT.format(instructions=INSTRUCTIONS, data=DATA, submission=SUBMISSION,
                                    validate_url=VALIDATE_URL, validate_script=VALIDATE_SCRIPT, code=CODE_DIR,
                                    logs=LOGS_DIR, agent=AGENT_DIR, time_limit=limit, gateway_url=GATEWAY_URL)


def validate_script() -> str:
    """``/home/validate_submission.sh``: the checker's client (standard-library Python, no curl needed)."""
    return ("#!/bin/sh\n# Check a submission's format at the local validation endpoint (never a score).\n"
            f"# Usage: {VALIDATE_SCRIPT} [FILE]  (default: {SUBMISSION})\n"
            f"exec {shlex.quote(sys.executable)} {TOOLS}/validate_cli.py \"$@\"\n")
