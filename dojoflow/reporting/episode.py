"""One episode in words a researcher reads in the UIs: a summary (MLflow run description, Prefect artifact,
``summary.md``), the trajectory step by step (``trajectory.md``), and one progress line per step (Prefect's
run log).

Everything here is plain text from the episode's own records (the result's dict and its step records), so
the same pages come out of a live episode and of a trajectory file read back later.
"""

from __future__ import annotations

from typing import Any

CODE_LINES = 60  # lines of a step's code shown in trajectory.md (the full code is in steps/<n>/)
OBSERVATION_CHARS = 1500


def format_value(value: Any, digits: int = 6) -> str:
    """A value for text and table cells: ``-`` for None, yes/no for booleans, ``digits`` significant digits."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    return str(value)


def execution_status(execution: dict[str, Any] | None) -> str:
    """``exit 0``, ``exit 1``, ``timed out``, ``out of memory``, ``not started: ...`` or ``-``."""
    if not execution:
        return "-"
    if execution.get("error"):
        return f"not started: {execution['error']}"
    if execution.get("timed_out"):
        return "timed out"
    if execution.get("oom"):
        return "out of memory"
    return f"exit {execution.get('exit_code')}"


def step_line(step: dict[str, Any], max_steps: int = 0) -> str:
    """One progress line per step (Prefect's run log): action, exit status, feedback score, reward, time."""
    action = step.get("action") or {}
    note = (step.get("agent") or {}).get("note")
    parts = [f"step {step.get('index')}" + (f"/{max_steps}" if max_steps else ""), str(action.get("type", "?"))]
    if note and note != action.get("type"):
        parts[-1] += f" ({note})"
    if step.get("execution"):
        parts.append(execution_status(step["execution"]))
    if step.get("feedback_score") is not None:
        parts.append(f"feedback score {format_value(step['feedback_score'])}")
    elif step.get("valid_submission") is False and step.get("errors"):
        parts.append(f"invalid submission: {step['errors'][0]}")
    parts.append(f"reward {format_value(step.get('reward'), 4)}")
    parts.append(f"{float(step.get('duration_s') or 0.0):.2f} s")
    return " | ".join(parts)


def _links(links: dict[str, str]) -> str:
    return " · ".join(f"[{name}]({url})" for name, url in links.items() if url)


def summary_markdown(result: dict[str, Any], links: dict[str, str] | None = None) -> str:
    """The episode's summary: what ran, how it ended, the grade, budget use and where its records are."""
    r = result
    direction = "higher is better" if r.get("higher_is_better", True) else "lower is better"
    failed = r.get("status") == "failed"
    lines = [f"## Episode `{r['episode_id']}`", "",
             f"**{r['agent']}** on **{r['task_id']}**, seed {r['seed']}"
             + (f", model `{r['model']}`" if r.get("model") else "")
             + (f", sweep `{r['sweep_id']}`" if r.get("sweep_id") else "")
             + (f", attempt {r['attempt']}" if int(r.get("attempt") or 1) > 1 else ""), ""]
    if failed:
        lines += [f"**FAILED** ({r.get('error_class') or 'unknown'} error): {r.get('end_reason')}", "",
                  f"Steps before the failure: {r.get('steps')}; {float(r.get('wall_time_s') or 0):.1f} s."]
    else:
        lines += [f"**Ended:** {r.get('end_reason') or r.get('final_reason')}", "",
                  "| | |", "|---|---|",
                  f"| valid | {format_value(r.get('valid'))} |",
                  f"| {r.get('metric') or 'score'} ({direction}) | {format_value(r.get('score'))} |",
                  f"| medal | {r.get('medal') or 'none'} |",
                  f"| above median | {format_value(r.get('above_median'))} |",
                  f"| HumanRank | {format_value(r.get('human_rank'), 4)} |",
                  f"| leaderboard position | {format_value(r.get('position'))} ({r.get('leaderboard_provenance')}) |",
                  f"| best feedback ({r.get('feedback_board') or 'unscored'} board) | HumanRank "
                  f"{format_value(r.get('best_feedback_human_rank'), 4)}, medal band "
                  f"{r.get('best_feedback_medal') or 'none'} |",
                  f"| integrity | {'passed' if (r.get('integrity') or {}).get('passed') else 'FAILED'} |",
                  f"| integrity flags | {_flags(r.get('integrity') or {})} |",
                  f"| final submission | step {format_value(r.get('final_step'))}: {r.get('final_reason')} |",
                  f"| steps | {r.get('steps')} of {r.get('max_steps') or '?'} |",
                  f"| description | {r.get('description_variant') or 'original'} |",
                  f"| wall time | {float(r.get('wall_time_s') or 0):.1f} s |"]
        if r.get("llm_calls"):
            lines.append(f"| LLM | {r['llm_calls']} calls, {r.get('llm_cache_hits', 0)} from the cache, "
                         f"{r.get('llm_errors', 0)} errors, {r.get('llm_truncated_replies', 0)} replies cut at "
                         f"max_tokens, {r.get('tokens', 0)} tokens, ${float(r.get('cost_usd') or 0):.4f} |")
    if links:
        lines += ["", _links(links)]
    errors = [e for e in r.get("errors") or [] if e != r.get("end_reason")]
    if errors and not failed:
        lines += ["", "Grading errors: " + "; ".join(errors[:5])]
    return "\n".join(lines) + "\n"


def _flags(integrity: dict[str, Any]) -> str:
    """The raised integrity flags with their details (``dojo/flags.py``), or what ran and found nothing."""
    checks = integrity.get("flag_checks") or []
    raised = [c for c in checks if not c.get("passed")]
    if raised:
        return "; ".join(f"**{c['name']}**: {c['detail']}" for c in raised).replace("|", "\\|")
    return f"none raised ({', '.join(c['name'] for c in checks)})" if checks else "not run"


def trajectory_markdown(header: dict[str, Any], steps: list[dict[str, Any]]) -> str:
    """The trajectory step by step: action, the agent's note, code, exit status, feedback, reward, output."""
    out = [f"# Trajectory of `{header.get('episode_id')}`", "",
           f"{header.get('agent')} on {header.get('task_id')} (seed {header.get('seed')}): "
           f"{len(steps)} steps; ended: {header.get('end_reason') or header.get('final_reason', '')}", ""]
    for step in steps:
        action = step.get("action") or {}
        out += [f"## {step_line(step)}", ""]
        note = (step.get("agent") or {}).get("note")
        if note:
            out += [f"*{note}*", ""]
        code = action.get("code")
        if code:
            lines = code.splitlines()
            shown = "\n".join(lines[:CODE_LINES]) + (f"\n# ... {len(lines) - CODE_LINES} more lines"
                                                     if len(lines) > CODE_LINES else "")
            out += ["```python", shown, "```", ""]
        observation = step.get("observation") or ""
        if observation:
            cut = observation if len(observation) <= OBSERVATION_CHARS else observation[:OBSERVATION_CHARS] + " ..."
            out += ["<details><summary>observation</summary>", "", "```text", cut, "```", "", "</details>", ""]
    return "\n".join(out)
