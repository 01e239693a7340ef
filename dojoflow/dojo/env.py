"""``MLEEnvironment``: one agent on one task, step by step, with leak-free feedback.

Each episode has a directory ``$DOJOFLOW_HOME/episodes/<episode-id>/`` holding the agent's persistent
``workspace/`` (public data appears there as ``data/``), and ``steps/NNN/`` with each code step's code,
output and submission. Code steps write ``submission.csv`` in the workspace; the environment moves it
into the step's folder, so a stale file from an earlier step is never graded again.

Feedback follows the episode's protocol (``dojo/feedback.py``): by default the score on the public part of the
hidden test rows; the final grade always uses the private part.
"""

from __future__ import annotations

import shutil
import time
import uuid
from pathlib import Path
from typing import Any

from dojoflow.config import Settings, get_settings
from dojoflow.defaults import DEFAULT_MAX_STEPS, DEFAULT_REWARD_MODE
from dojoflow.dojo.actions import CODE_ACTIONS, Action
from dojoflow.dojo.feedback import DEFAULT_FEEDBACK, feedback_protocol
from dojoflow.dojo.obfuscation import OBFUSCATED, description_variant, obfuscated_public, task_description
from dojoflow.dojo.observation import Observation, describe_data, render_execution
from dojoflow.dojo.records import Outcome, StepRecord, Usage
from dojoflow.dojo.rewards import check_reward_mode, reward_for
from dojoflow.dojo.workspace_files import (
    WORKSPACE_AT_END,
    WorkspaceProblem,
    collect_submission,
    describe_os_error,
    remove_any,
    write_harness_file,
)
from dojoflow.errors import EpisodeStateError, InvalidActionError
from dojoflow.infra.sandbox import (
    ExecutionLimits,
    ExecutionRequest,
    ExecutionResult,
    SandboxBackend,
    get_backend,
    python_command,
)
from dojoflow.infra.sandbox.access import audited, read_access
from dojoflow.tasks_catalog.exposure import hidden_source_dirs
from dojoflow.tasks_catalog.grading import (
    GradeResult,
    answer_table,
    grade_submission,
    grade_validation,
    task_leaderboard,
)
from dojoflow.tasks_catalog.preparation import PreparedData, prepare_task
from dojoflow.tasks_catalog.registry import get_task
from dojoflow.tasks_catalog.spec import TaskSpec
from dojoflow.tasks_catalog.submission import validate_submission
from dojoflow.tasks_catalog.validation_split import public_test_ids, validation_view, without_held_out

SUBMISSION_FILE = "submission.csv"


class MLEEnvironment:
    """Plain-Python environment; the gymnasium wrapper and the Prefect flow both drive this class."""

    def __init__(self, task: str | TaskSpec, *, seed: int = 0, max_steps: int = DEFAULT_MAX_STEPS,
                 reward_mode: str = DEFAULT_REWARD_MODE,
                 sandbox: SandboxBackend | str | None = None, settings: Settings | None = None,
                 episode_id: str | None = None, limits: ExecutionLimits | None = None,
                 gpu: int | None = None, wall_time_s: float | None = None,
                 cost_budget_usd: float | None = None, feedback: str = DEFAULT_FEEDBACK,
                 audit_access: bool = False, description: str = "original") -> None:
        self.settings = settings or get_settings()
        self.spec = get_task(task) if isinstance(task, str) else task
        self.seed, self.max_steps, self.reward_mode = seed, max_steps, reward_mode
        check_reward_mode(reward_mode, self.spec)
        self.feedback = feedback_protocol(feedback)
        self.feedback_data: PreparedData | None = None  # the validation protocol's view of the data
        self.sandbox = (sandbox if sandbox is not None and not isinstance(sandbox, str)
                        else get_backend(sandbox or self.settings.sandbox_backend))
        self.episode_id = episode_id or f"{self.spec.id}-{uuid.uuid4().hex[:12]}"
        self.episode_dir = self.settings.episodes_dir / self.episode_id
        self.prepared: PreparedData | None = None
        self.history: list[StepRecord] = []
        self.best_step: int | None = None
        self.best_score: float | None = None
        self.outcome: Outcome | None = None
        self.started_at = time.monotonic()
        self._limits = limits
        self.gpu = gpu  # device index leased for this episode (see infra.gpu.GpuPool), or None
        self.wall_time_s, self.cost_budget_usd = wall_time_s, cost_budget_usd
        self.initial_observation = ""
        self.disk_full = False  # a step met a full disk: the workspace is emptied when the episode closes
        self._submission_notes: dict[int, str] = {}  # why a step's submission could not be collected
        self.audit_access = audit_access  # run each step under the access-audit hook (infra/sandbox/access.py)
        self.description = description_variant(description)  # the contamination probe (dojo/obfuscation.py)
        self.description_public: Path | None = None  # the public data with the obfuscated description.md

    # -- paths --------------------------------------------------------------------------------------------
    @property
    def workspace(self) -> Path:
        """The agent's persistent working directory (public data appears in it as ``data/``)."""
        return self.episode_dir / "workspace"

    def step_dir(self, index: int) -> Path:
        """Where step ``index``'s code, output and submission are kept."""
        return self.episode_dir / "steps" / f"{index:03d}"

    @property
    def data(self) -> PreparedData:
        """The task's prepared data (available after :meth:`reset`)."""
        if self.prepared is None:
            raise EpisodeStateError("call reset() before using the environment")
        return self.prepared

    @property
    def public_dir(self) -> Path:
        """The data the agent sees: the task's public data, or the validation protocol's view of it."""
        return self.description_public or (self.feedback_data or self.data).public

    def request(self, command: tuple[str, ...]) -> ExecutionRequest:
        """A sandbox request for ``command`` in this episode's workspace: its public data, limits and GPU, with
        the source data of every registered task hidden (see ``tasks_catalog/exposure.py``)."""
        return ExecutionRequest(command, self.workspace, self.public_dir, self.limits, gpu=self.gpu,
                                hidden=hidden_source_dirs())

    @property
    def limits(self) -> ExecutionLimits:
        """The task's per-step limits, unless overridden at construction."""
        if self._limits is not None:
            return self._limits
        res = self.spec.resources
        return ExecutionLimits(timeout_s=res.step_timeout_s, memory_mb=res.memory_mb)

    @property
    def steps_left(self) -> int:
        """Steps left in the step budget."""
        return self.max_steps - len(self.history)

    @property
    def done(self) -> bool:
        """The final grade has been given (submit, or a budget ran out)."""
        return self.outcome is not None

    # -- gym-style API ------------------------------------------------------------------------------------
    def reset(self) -> tuple[Observation, dict[str, Any]]:
        """Prepare the task's data (cached), create the workspace, return the task overview."""
        self.prepared = prepare_task(self.spec, self.settings.data_dir)
        self.feedback_data = (validation_view(self.spec, self.prepared) if self.feedback.name == "validation"
                              else None)
        self.description_public = (obfuscated_public(self.spec, (self.feedback_data or self.prepared).public)
                                   if self.description == OBFUSCATED else None)
        if self.episode_dir.exists():  # a re-run of the same episode id (a retried sweep episode) starts clean
            shutil.rmtree(self.episode_dir)
        self.workspace.mkdir(parents=True, exist_ok=True)
        self.history, self.best_step, self.best_score, self.outcome = [], None, None, None
        self.disk_full, self._submission_notes = False, {}
        self.started_at = time.monotonic()
        obs = self._info_observation(first=True)
        self.initial_observation = obs.text
        return obs, {"episode_id": self.episode_id, "data_cache_hit": self.prepared.cache_hit,
                     "sandbox": self.sandbox.name, "sandbox_isolated": self.sandbox.isolated,
                     "feedback_protocol": self.feedback.name}

    def step(self, action: Action | dict | str) -> tuple[Observation, float, bool, bool, dict[str, Any]]:
        """Apply one action. Code actions run in the sandbox and are graded on the public part."""
        parsed, error = self.parse_action(action)
        return self.finish_step(parsed, self.run_code(parsed) if parsed else None, invalid_action=error)

    @staticmethod
    def parse_action(action: Action | dict | str) -> tuple[Action | None, str | None]:
        """(action, None) for a usable action, (None, message) for one that cannot be understood."""
        try:
            return Action.from_any(action), None
        except (InvalidActionError, TypeError) as exc:
            return None, str(exc)

    # -- the two halves of a step (the Prefect flow runs them as separate tasks) --------------------------
    def run_code(self, action: Action) -> ExecutionResult | None:
        """Execution: run a code action's code in the sandbox; None for actions without code."""
        if self.done:
            raise EpisodeStateError("the episode has ended; call reset() to start a new one")
        if action.type not in CODE_ACTIONS:
            return None
        index = len(self.history)
        step_dir = self.step_dir(index)
        code_name = f"step_{index:03d}.py"
        code = action.code or ""
        try:
            step_dir.mkdir(parents=True, exist_ok=True)
            (step_dir / "code.py").write_text(code)
            write_harness_file(self.workspace / code_name, code)
            remove_any(self.workspace / SUBMISSION_FILE)  # a stale submission is never graded again
        except WorkspaceProblem as problem:
            return self._not_run(problem)
        except OSError as exc:
            return self._not_run(describe_os_error(exc, "preparing the step"))
        command = python_command(code_name)
        audit = audited(command, self.workspace) if self.audit_access else None
        result = self.sandbox.run(self.request(audit[0] if audit else command))
        if audit is not None:
            result.access = read_access(self.workspace, audit[1])
        try:
            (step_dir / "stdout.txt").write_text(result.stdout)
            (step_dir / "stderr.txt").write_text(result.stderr)
            note = collect_submission(self.workspace / SUBMISSION_FILE, step_dir / SUBMISSION_FILE)
            if note:
                self._submission_notes[index] = note
        except OSError as exc:
            kept = describe_os_error(exc, "keeping the step's output")
            self.disk_full = self.disk_full or kept.disk_full
            result.error = result.error or str(kept)
        return result

    def _not_run(self, problem: WorkspaceProblem) -> ExecutionResult:
        """The result of a step the harness could not start because of the workspace or the disk."""
        self.disk_full = self.disk_full or problem.disk_full
        return ExecutionResult.not_started(self.sandbox.name, self.sandbox.isolated, str(problem))

    def finish_step(self, action: Action | None, execution: ExecutionResult | None,
                    invalid_action: str | None = None, agent_info: dict[str, Any] | None = None
                    ) -> tuple[Observation, float, bool, bool, dict[str, Any]]:
        """Feedback grading: turn an action's outcome into an observation and reward; record the step."""
        index = len(self.history)
        started = time.monotonic()
        record = StepRecord(index=index, action=action.to_dict() if action else {"type": "invalid"},
                            observation="", reward=0.0, agent=dict(agent_info or {}))
        terminated = False
        if invalid_action is not None or action is None:
            obs = Observation.error("invalid_action", invalid_action or "no action",
                                    ["the action must be a JSON object with a valid 'type'"], self.steps_left - 1)
        elif action.type == "request_info":
            obs = self._info_observation()
        elif action.type == "get_history":
            obs = self._history_observation()
        elif action.type == "submit":
            obs = self._submit(action.step)
            terminated = True
        else:
            if execution is None:  # a code action whose execution step did not run
                execution = ExecutionResult.not_started(self.sandbox.name, self.sandbox.isolated,
                                                        "the code was not run")
            obs = self._code_feedback(action, execution, record)
        record.observation = obs.text
        record.duration_s = round(time.monotonic() - started + (execution.duration_s if execution else 0.0), 4)
        self.history.append(record)
        exhausted = None if terminated else self.exhausted_budget()
        truncated = exhausted is not None
        info: dict[str, Any] = {"step": index, "steps_left": self.steps_left}
        if truncated:
            final = self.grade_final(None, f"{exhausted} budget exhausted: {self._fallback} was graded")
            obs = obs.with_text(obs.text + f"\n\nThe {exhausted} budget is used up. {final.reason}.")
            info["truncated_by"] = exhausted
        if self.outcome is not None:
            info["final"] = self.outcome.grade.to_dict()
            info["final_step"] = self.outcome.step
            info["final_reason"] = self.outcome.reason
        return obs, record.reward, terminated, truncated, info

    # -- helpers ------------------------------------------------------------------------------------------
    @property
    def usage(self) -> Usage:
        """Tokens, cost and LLM calls the agent reported so far (LLM agents report them per step)."""
        return Usage.of(self.history)

    def exhausted_budget(self) -> str | None:
        """Which budget is used up ("step", "wall-time", "cost"), or None."""
        if self.steps_left <= 0:
            return "step"
        if self.wall_time_s is not None and time.monotonic() - self.started_at >= self.wall_time_s:
            return "wall-time"
        if self.cost_budget_usd is not None and self.usage.cost_usd >= self.cost_budget_usd:
            return "cost"
        return None

    def _code_feedback(self, action: Action, execution: ExecutionResult, record: StepRecord) -> Observation:
        record.execution = {k: v for k, v in execution.to_dict().items() if k not in ("stdout", "stderr")}
        failure = execution.failure_message(self.limits)
        submission = self.step_dir(record.index) / SUBMISSION_FILE
        feedback: GradeResult | None = None
        note = self._submission_notes.get(record.index)
        if failure:
            record.errors.append(failure)
        elif note:
            record.valid_submission = False
            record.errors.append(note)
        elif action.type == "validate_code" or not self.feedback.scored:
            self._format_feedback(submission, record)
        else:
            feedback = self._scored_feedback(submission)
            record.valid_submission = feedback.valid
            record.errors.extend(feedback.errors)
            score = feedback.score if feedback.valid else None
            if score is not None and feedback.placement is not None:
                record.feedback_score = score
                record.feedback_human_rank = feedback.placement.human_rank
                record.feedback_medal = feedback.placement.medal
            record.reward = reward_for(self.reward_mode, feedback, self.best_score, self.spec.higher_is_better,
                                       format_rate=self._format_rate(), executed=execution.ok)
            if score is not None and (self.best_score is None or self.spec.metric.is_better(score, self.best_score)):
                self.best_step, self.best_score = record.index, score
        if feedback is None and action.type == "execute_code":  # not graded: only SandMLE's modes reward it
            record.reward = reward_for(self.reward_mode, None, self.best_score, self.spec.higher_is_better,
                                       format_rate=self._format_rate(), executed=execution.ok and not failure)
        return render_execution(self.spec, action, execution, failure, record, self.steps_left - 1,
                                self.feedback.name)

    @property
    def _fallback(self) -> str:
        """Which submission is graded when the agent does not choose one."""
        return ("the best valid submission by feedback score" if self.feedback.scored
                else "the latest valid submission")

    def _scored_feedback(self, submission: Path) -> GradeResult:
        if self.feedback_data is not None:
            return grade_validation(self.spec, self.feedback_data, submission)
        return grade_submission(self.spec, self.data, submission, part="public")

    def _format_feedback(self, submission: Path, record: StepRecord) -> None:
        """A format check (the ``validate_code`` action; every code step under ``format-only``), or, under
        ``none``, only whether a submission was written. Unscored protocols grade the latest such step."""
        if self.feedback.name == "none":
            record.valid_submission = submission.is_file()
        else:
            if self.feedback.name == "public-test":
                expected = answer_table(self.spec, self.data, "all").column(self.spec.submission.id_column)
            else:  # from the public files only: nothing about the test answers reaches the agent
                expected = public_test_ids(self.public_dir, self.spec.submission.id_column)
            validation = validate_submission(submission, self.spec, expected)
            record.valid_submission = validation.valid
            record.errors.extend(validation.errors)
        if not self.feedback.scored and record.valid_submission and record.action.get("type") != "validate_code":
            self.best_step = record.index

    def _format_rate(self) -> float:
        """The share of the episode's actions so far (this one included) that parsed as valid actions."""
        parsed = sum(1 for r in self.history if r.action.get("type") != "invalid") + 1
        return parsed / (len(self.history) + 1)

    def _submit(self, step: int | None) -> Observation:
        if step is not None:
            chosen = next((r for r in self.history if r.index == step), None)
            scored = chosen is not None and (chosen.feedback_score is not None or not self.feedback.scored)
            if chosen is None or not chosen.valid_submission or not scored:
                final = self.grade_final(None, f"step {step} has no valid scored submission; {self._fallback} was "
                                             "graded instead")
            else:
                final = self.grade_final(step, f"the submission of step {step} was chosen by the agent")
        else:
            final = self.grade_final(None, f"{self._fallback} was graded")
        grade = final.grade
        text = f"Episode submitted: {final.reason}."
        if grade.valid:
            text += " The final grade is computed on the hidden private part of the test set."
        else:
            text += " No valid submission: " + "; ".join(grade.errors)
        return Observation(text=text, kind="submitted", data={"final_step": final.step, "valid": grade.valid})

    def grade_final(self, step: int | None, reason: str) -> Outcome:
        """The final grade: the chosen (or else the best) step's submission on the private part."""
        step = self.best_step if step is None else step
        if step is None:  # nothing to grade: say so, instead of naming a file nobody was asked to write
            reason = "no valid submission was made during the episode"
            grade = GradeResult(self.spec.id, "private", valid=False, errors=[reason])
        else:
            path = self.step_dir(step) / SUBMISSION_FILE
            if self.feedback_data is not None:  # the held-out training rows are not part of the final grade
                path = without_held_out(path, self.feedback_data, self.spec.submission.id_column,
                                        self.step_dir(step) / "final_submission.csv")
            grade = grade_submission(self.spec, self.data, path, part="private")
        self.outcome = Outcome(step=step, reason=reason, grade=grade)
        return self.outcome

    def close(self) -> None:
        """Release the sandbox's long-lived resources (the warm worker, if any). After a full disk, also
        empty the workspace: what the code wrote is what filled it, and the next episode must start clean."""
        self.sandbox.close()
        if self.disk_full:
            shutil.rmtree(self.workspace, ignore_errors=True)
            shutil.rmtree(self.episode_dir / WORKSPACE_AT_END, ignore_errors=True)

    @property
    def chosen_submission(self) -> Path | None:
        """The submission file that received the final grade (None before it, or without a valid one)."""
        if self.outcome is None or self.outcome.step is None:
            return None
        return self.step_dir(self.outcome.step) / SUBMISSION_FILE

    def _info_observation(self, first: bool = False) -> Observation:
        board = task_leaderboard(self.spec, "public")
        data = describe_data(self.spec, self.feedback_data or self.data)
        data.update({"steps_left": self.steps_left - (0 if first else 1),
                     "leaderboard_provenance": board.provenance, "leaderboard_entries": board.num_teams})
        text = (f"{task_description(self.spec, self.description)}\n\n## Data structure\n{data['data_structure']}\n\n"
                f"## Sample submission (first rows)\n{data['sample_submission']}\n\n"
                f"## Metric\n{self.spec.metric_name} ({self.spec.direction}). {self._feedback_sentence(board)}\n\n"
                f"## Budget\n{data['steps_left']} steps left. Your code runs with `data/` holding the files "
                f"above and must write `{SUBMISSION_FILE}` in the working directory. Step time limit: "
                f"{self.limits.timeout_s:g} s, memory limit: {self.limits.memory_mb} MB.")
        return Observation(text=text, kind="info", data=data)

    def _feedback_sentence(self, board) -> str:
        """How this episode's feedback works, for the task overview."""
        name = self.feedback.name
        if name == "public-test":
            return (f"Feedback during the episode is computed on the public part of the test rows and placed on a "
                    f"{board.provenance} leaderboard of {board.num_teams} entries; the final grade uses the private "
                    "part.")
        if name == "validation":
            return ("Feedback during the episode is computed on some rows of `test.csv` whose labels are known from "
                    f"the training data (you are not told which), placed on a {board.provenance} leaderboard of "
                    f"{board.num_teams} entries; predict every row. The final grade uses the hidden test rows.")
        if name == "format-only":
            return ("During the episode your submission's format is checked, never scored; the final grade uses "
                    "the hidden test rows.")
        return "There is no feedback on submissions during the episode; the final grade uses the hidden test rows."

    def _history_observation(self) -> Observation:
        rows = [{"step": r.index, "action": r.action.get("type"), "valid": r.valid_submission,
                 "feedback_score": r.feedback_score, "reward": r.reward, "errors": r.errors} for r in self.history]
        lines = [f"step {r.index}: {r.action.get('type')}, valid={r.valid_submission}, "
                 f"feedback={r.feedback_score}, reward={r.reward:.4f}"
                 + (f", errors: {'; '.join(r.errors)}" if r.errors else "") for r in self.history]
        text = "History:\n" + ("\n".join(lines) if lines else "(no steps yet)") + f"\n{self.steps_left - 1} steps left."
        return Observation(text=text, kind="history", data={"steps": rows, "best_step": self.best_step})
