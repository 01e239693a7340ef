"""``dojoflow run`` and ``dojoflow demo``: episodes from the command line."""

from __future__ import annotations

import contextlib
import json
import sys
from typing import Any, Optional

import typer
from rich.table import Table

from dojoflow.cli.common import console, err_console, fmt, prefect_ready
from dojoflow.config import get_settings
from dojoflow.defaults import DEFAULT_AGENT, DEFAULT_MAX_STEPS, DEFAULT_SEED
from dojoflow.errors import UsageError
from dojoflow.flows.config import EpisodeConfig

DEMO_TASKS = ("breast-cancer", "digits", "penguins-body-mass")


def prefect_run(config: EpisodeConfig) -> dict:
    """Run one episode as a Prefect flow run (imports Prefect here, not at start-up)."""
    prefect_ready()
    from dojoflow.flows.prefect_episode import run_episode

    return run_episode(config)


def agent_options(model: str | None, base_url: str | None, temperature: float | None, token_budget: int | None,
                  items: list[str]) -> dict[str, Any]:
    """Agent options from the CLI; ``KEY=VALUE`` values are parsed as JSON when they are JSON."""
    options: dict[str, Any] = {k: v for k, v in {"model": model, "base_url": base_url, "temperature": temperature,
                                                 "token_budget": token_budget}.items() if v is not None}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UsageError(f"bad --agent-option '{item}': use KEY=VALUE")
        try:
            options[key] = json.loads(value)
        except json.JSONDecodeError:
            options[key] = value
    return options


def command_options(command: str | None, image: str | None, agent_dir: str | None, env: list[str],
                    binds: list[str], options: dict[str, Any]) -> dict[str, Any]:
    """A command agent's spec (as a dict) from the CLI; bad values fail here, before anything starts."""
    from pathlib import Path

    from dojoflow.agents.external.spec import CommandAgentSpec

    variables = {}
    for item in env:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UsageError(f"bad --agent-env '{item}': use KEY=VALUE")
        variables[key] = value
    data: dict[str, Any] = {k: v for k, v in options.items() if k != "temperature"}
    data.update({"command": command or "", "env": variables, "binds": [str(Path(b).resolve()) for b in binds]})
    if image:
        data["image"] = image
    if agent_dir:
        data["agent_dir"] = str(Path(agent_dir).resolve())
    return CommandAgentSpec.from_dict(data).to_dict()


def run(task_id: str = typer.Option(..., "--task", help="Task id (see `dojoflow tasks list`)."),
        agent: str = typer.Option(DEFAULT_AGENT, help="baseline, react, aide, star, or an installed plugin."),
        seed: int = typer.Option(DEFAULT_SEED, help="Seed for the agent."),
        max_steps: int = typer.Option(DEFAULT_MAX_STEPS, "--max-steps", help="Step budget of the episode (>= 1)."),
        sandbox: Optional[str] = typer.Option(None, help="Sandbox backend: warm (default), bwrap, docker, local, "
                                                       "warm-<backend> or a plugin (default: DOJOFLOW_SANDBOX)."),
        model: Optional[str] = typer.Option(None, "--model", help="LLM model name (react, aide, star)."),
        base_url: Optional[str] = typer.Option(None, "--base-url", help="OpenAI-compatible base URL, e.g. "
                                               "http://127.0.0.1:8000/v1 (default: DOJOFLOW_LLM_BASE_URL, else "
                                               "OpenAI)."),
        temperature: Optional[float] = typer.Option(None, help="Sampling temperature (not sent when unset)."),
        token_budget: Optional[int] = typer.Option(None, "--token-budget", help="LLM tokens per episode."),
        agent_option: list[str] = typer.Option([], "--agent-option", help="KEY=VALUE agent option, e.g. "
                                               "num_drafts=3 (JSON values parsed; repeatable)."),
        feedback: Optional[str] = typer.Option(None, "--feedback", help="Feedback protocol: public-test (the "
                                               "default; Kaggle-like, test-derived), validation (held-out training "
                                               "rows), format-only (the default of command agents) or none. Only "
                                               "the last three are comparable with MLE-bench's leaderboard."),
        agent_command: Optional[str] = typer.Option(None, "--agent-command", help="Run this program as the agent "
                                                    "for the whole episode (a shell command line run inside the "
                                                    "sandbox with MLE-bench's paths; see docs/agents.md)."),
        agent_image: Optional[str] = typer.Option(None, "--agent-image", help="A container image holding the "
                                                  "agent (with --sandbox docker)."),
        agent_dir: Optional[str] = typer.Option(None, "--agent-dir", help="A folder copied into /home/agent (the "
                                                "command's working directory) before it starts."),
        agent_env: list[str] = typer.Option([], "--agent-env", help="KEY=VALUE set for the command (repeatable; "
                                            "never secrets: use the gateway's key)."),
        agent_bind: list[str] = typer.Option([], "--agent-bind", help="A host folder the command needs, bound "
                                             "read-only at the same path (repeatable), e.g. its virtualenv."),
        agent_name: Optional[str] = typer.Option(None, "--agent-name", help="Label of a command agent in results "
                                                 "(default: command)."),
        wall_time: Optional[float] = typer.Option(None, "--wall-time", help="Wall-clock budget of the episode in "
                                                  "seconds (a command agent is stopped then)."),
        cost_budget: Optional[float] = typer.Option(None, "--cost-budget", help="LLM cost budget in USD."),
        integrity: Optional[str] = typer.Option(None, "--integrity", help="Integrity flags to run, comma-separated: "
                                                "plagiarism, forbidden-access, data-usage, leakage (the default: "
                                                "all four), judge (an LLM, off by default); none for no flags. "
                                                "Flags record evidence and never change a score."),
        judge_model: Optional[str] = typer.Option(None, "--judge-model", help="The rule-violation judge's model "
                                                  "(adds judge to --integrity); default endpoint: --judge-base-url."),
        judge_base_url: Optional[str] = typer.Option(None, "--judge-base-url", help="The judge's OpenAI-compatible "
                                                     "base URL."),
        description: str = typer.Option("original", "--description", help="original, or obfuscated: the "
                                         "contamination probe (the task's names removed; MLE-bench's "
                                         "description_obfuscated.md for imported competitions)."),
        no_prefect: bool = typer.Option(False, "--no-prefect", help="Run the same steps without Prefect."),
        as_json: bool = typer.Option(False, "--json", help="Print one JSON object with the result.")) -> None:
    """Run one episode (a Prefect flow run) and print the result, and why it ended on stderr. API keys come from
    DOJOFLOW_LLM_API_KEY or OPENAI_API_KEY (never from a flag).

    Exit status: 0 when the episode was graded (whatever the agent did, e.g. its LLM endpoint failed: the end
    reason says so); 2 when the harness could not finish it because of the task or the agent's options (a
    failed preparation, an unknown option); 1 for any other harness failure. A failed episode still prints
    its record (``--json``: the result with ``status: failed``, ``end_reason`` and ``error_class``)."""
    from dojoflow.agents.registry import LLM_AGENTS, make_agent
    from dojoflow.tasks_catalog.registry import get_task

    options = agent_options(model, base_url, temperature, token_budget, agent_option)
    command = None
    if agent_command or agent_image:
        command = command_options(agent_command, agent_image, agent_dir, agent_env, agent_bind, options)
        agent, options = agent_name or "command", {}
    elif any((agent_dir, agent_env, agent_bind, agent_name)):
        raise UsageError("--agent-dir, --agent-env, --agent-bind and --agent-name are for command agents: give "
                         "--agent-command (or --agent-image)")
    if agent in LLM_AGENTS and not options.get("model") and command is None:
        raise UsageError(f"agent '{agent}' is an LLM scaffold: give --model (and --base-url for a local server)")
    config = EpisodeConfig(task_id=task_id, agent=agent, seed=seed, max_steps=max_steps, sandbox=sandbox,
                           agent_options=options, feedback=feedback, command=command, wall_time_s=wall_time,
                           cost_budget_usd=cost_budget, description=description,
                           **integrity_options(integrity, judge_model, judge_base_url))
    get_task(task_id)  # fail fast, before starting Prefect, on an unknown task
    if command is None:
        make_agent(agent, **options)  # ... and on an unknown agent or option
    failures: list = []
    try:
        if as_json:
            with contextlib.redirect_stdout(sys.stderr):  # keep stdout for the JSON object only
                result = _run_one(config, no_prefect, failures)
            print(json.dumps(result, default=str))
        else:
            with console.status(f"running {agent} on {task_id} (seed {seed})..."):
                result = _run_one(config, no_prefect, failures)
            print_result(result)
    except Exception:  # the harness could not finish the episode: its record, then the error policy
        if failures:
            failed = failures[-1]
            if as_json:
                print(json.dumps(failed, default=str))
            err_console.print(f"episode {failed['episode_id']} FAILED ({failed['error_class']} error); its record: "
                              f"{failed['episode_dir']}", highlight=False)
        raise
    err_console.print(f"episode {result['episode_id']} ended: {result['end_reason']}", highlight=False,
                      soft_wrap=True)


def integrity_options(integrity: Optional[str], judge_model: Optional[str],
                      judge_base_url: Optional[str]) -> dict[str, Any]:
    """The EpisodeConfig fields of ``--integrity`` / ``--judge-model`` / ``--judge-base-url``."""
    from dojoflow.dojo.flags import JUDGE, integrity_names

    names = integrity_names(integrity)
    if judge_model and JUDGE not in names:
        names = integrity_names([*names, JUDGE])
    judge = {k: v for k, v in (("model", judge_model), ("base_url", judge_base_url)) if v}
    return {"integrity": names, "judge": judge}


def _run_one(config: EpisodeConfig, no_prefect: bool, failures: list[dict]) -> dict:
    """The episode's result dict; a failed episode's record is appended to ``failures`` before it raises."""
    from dojoflow.flows.episode import drive_episode

    config = config.with_identity()
    if no_prefect:
        recorded: list = []
        try:
            return drive_episode(config, failures=recorded).to_dict()
        finally:
            failures.extend(r.to_dict() for r in recorded)
    try:
        return prefect_run(config)
    except Exception:  # recorded inside the flow run (another process may have run it): read its row back
        from dojoflow.storage.results import load_results

        settings = get_settings()
        row_file = settings.results_dir / f"{config.episode_id}.parquet"
        if row_file.is_file():
            row = load_results(row_file).iloc[0].to_dict()
            failures.append({**row, "task_id": row["task"], "episode_dir": str(
                settings.episodes_dir / str(config.episode_id))})
        raise


def print_result(r: dict) -> None:
    """The human-readable summary of one episode result."""
    console.print(f"[bold]{r['agent']} on {r['task_id']} (seed {r['seed']})[/bold]: valid {fmt(r['valid'])}, "
                  f"score {fmt(r['score'], 6)}, medal {r['medal'] or 'none'}, above median {fmt(r['above_median'])}, "
                  f"HumanRank {r['human_rank']:.3f} ({r['leaderboard_provenance']} leaderboard)")
    console.print(f"  feedback protocol: {r['feedback_protocol']}"
                  + ("" if r["leaderboard_comparable"] else " (test-derived: not comparable with MLE-bench's board)"))
    if r.get("feedback_board") and r.get("best_feedback_human_rank") is not None:
        board = "Kaggle's public leaderboard" if r["feedback_board"] == "public" else f"the {r['feedback_board']} board"
        console.print(f"  best feedback, as on {board}: HumanRank {r['best_feedback_human_rank']:.3f}, medal band "
                      f"{r.get('best_feedback_medal') or 'none'}")
    if r.get("ended_by"):
        console.print(f"  agent ended: {r['ended_by']} ({r['end_reason']}); {r['llm_calls']} LLM calls, "
                      f"{r['tokens']} tokens, ${r['cost_usd']:.4f}")
    flags = r["integrity"].get("flags") or []
    console.print(f"  integrity flags: {', '.join(flags) if flags else 'none raised'}"
                  + (f"; description {r['description_variant']}" if r.get("description_variant") != "original"
                     else ""))
    console.print(f"  integrity: {'passed' if r['integrity'].get('passed') else 'FAILED'}; "
                  f"{r['steps']} steps in {r['wall_time_s']:.1f} s; sandbox {r['sandbox']}"
                  + ("" if r["sandbox_isolated"] else " (not isolated)"))
    console.print(f"  episode {r['episode_id']}" + (f", model {r['model']}" if r.get("model") else ""))
    console.print(f"  MLflow run: {r.get('mlflow_url') or r['mlflow_run_id']}")
    console.print(f"  Prefect flow run: {r.get('prefect_url') or r['flow_run_id']}")
    console.print(f"  episode files: {r['episode_dir']}")


def demo(max_steps: int = typer.Option(DEFAULT_MAX_STEPS, "--max-steps", help="Step budget per episode."),
         seed: int = typer.Option(DEFAULT_SEED, help="Seed."),
         all_tasks: bool = typer.Option(False, "--all", help="Every built-in task, not only the three demo tasks.")
         ) -> None:
    """Run the baseline agent on built-in tasks (binary, multiclass, regression) through Prefect and print a
    small leaderboard."""
    from dojoflow.tasks_catalog.registry import BUILTIN_DIR, list_tasks

    settings = get_settings()
    specs = [s for s in list_tasks() if s.folder.parent == BUILTIN_DIR and (all_tasks or s.id in DEMO_TASKS)]
    console.print(f"dojoflow demo: baseline agent on {len(specs)} built-in tasks; home {settings.home}")
    console.print("starting Prefect's local API (the first start takes ~20 s)...")
    results = []
    for spec in specs:
        with console.status(f"episode: baseline on {spec.id}..."):
            results.append(prefect_run(EpisodeConfig(task_id=spec.id, seed=seed, max_steps=max_steps)))
        r = results[-1]
        console.print(f"  {spec.id}: valid {fmt(r['valid'])}, {spec.metric_name} {fmt(r['score'], 6)}, "
                      f"{r['wall_time_s']:.1f} s")
    table = Table(title="baseline agent: final grade on the private part")
    for column in ("task", "metric", "score", "valid", "medal", ">median", "HumanRank", "integrity"):
        table.add_column(column, no_wrap=column in ("task", "score"))
    for spec, r in zip(specs, results):
        table.add_row(spec.id, f"{spec.metric_name} ({'max' if spec.higher_is_better else 'min'})",
                      fmt(r["score"], 5), fmt(r["valid"]), r["medal"] or "none", fmt(r["above_median"]),
                      f"{r['human_rank']:.3f}", "passed" if r["integrity"].get("passed") else "FAILED")
    console.print(table)
    for spec, r in zip(specs, results):
        console.print(f"  {spec.id}: MLflow run {r['mlflow_run_id']}, Prefect flow run {r['flow_run_id']}")
    console.print("Leaderboards are [bold]reference[/bold] leaderboards (50+ honest scikit-learn solutions), "
                  "not human.")
    console.print(f"Look at the runs: [bold]dojoflow ui[/bold] (Prefect + MLflow UIs).  Data and runs live in "
                  f"{settings.home} (episodes/, artifacts/, mlflow.db, prefect/).")
    if not all(r["valid"] for r in results):
        raise typer.Exit(1)


COMMANDS = {"run": run, "demo": demo}
