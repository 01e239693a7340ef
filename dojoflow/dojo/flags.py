"""The integrity flags: checks, after MLE-bench and MLE-STAR, that record evidence and never change a score.

``dojo/integrity.py`` holds the checks a result must pass (the re-run reproduces the submission, the
predictions are not constant: ``integrity.passed``). The flags here are of another kind: each says whether
something a reader should look at happened, with its evidence, and a raised flag is listed in
``integrity.flags`` (and the results table's ``integrity_flags`` column); the grade is what it was.

- ``plagiarism``: the final code's similarity with the task's reference solutions (``plagiarism.py``);
  flagged at MLE-bench's 60%;
- ``forbidden-access``: what the sandbox's audit hook saw the code attempt - reads outside what a step may
  read, writes outside the workspace, network attempts (``infra/sandbox/inside/audit.py``); processes the code
  started are listed as evidence (their own accesses are not seen);
- ``data-usage`` and ``leakage``: MLE-STAR's two checkers (``leakage.py``);
- ``judge``: an LLM reads the trajectory against MLE-bench's rules (``judge.py``); off by default.

Which flags run is the episode's choice (``EpisodeConfig.integrity``, ``dojoflow run --integrity``, a
sweep's ``integrity:`` key); :data:`DEFAULT_FLAGS` are the ones that cost no LLM call.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dojoflow.dojo.integrity import Check
from dojoflow.errors import UsageError
from dojoflow.infra.sandbox.access import merge_access

if TYPE_CHECKING:
    from dojoflow.dojo.env import MLEEnvironment

PLAGIARISM, FORBIDDEN_ACCESS, DATA_USAGE, LEAKAGE, JUDGE = "plagiarism", "forbidden-access", "data-usage", \
    "leakage", "judge"
FLAGS = (PLAGIARISM, FORBIDDEN_ACCESS, DATA_USAGE, LEAKAGE, JUDGE)
DEFAULT_FLAGS = (PLAGIARISM, FORBIDDEN_ACCESS, DATA_USAGE, LEAKAGE)
AUDITED_FLAGS = frozenset({FORBIDDEN_ACCESS, DATA_USAGE})  # need the steps' access logs


def integrity_names(names: Any) -> tuple[str, ...]:
    """``names`` (a list, a tuple or a comma-separated string; ``none`` or empty for no flags) checked against
    the known flags, in a canonical order."""
    if names is None:
        return DEFAULT_FLAGS
    items = [n.strip() for n in names.split(",")] if isinstance(names, str) else [str(n).strip() for n in names]
    items = [n for n in items if n and n != "none"]
    if items == ["default"]:
        return DEFAULT_FLAGS
    unknown = sorted(set(items) - set(FLAGS))
    if unknown:
        raise UsageError(f"unknown integrity checks: {', '.join(unknown)} (known: {', '.join(FLAGS)})")
    return tuple(n for n in FLAGS if n in items)


def _final_code(env: MLEEnvironment) -> str | None:
    step = env.outcome.step if env.outcome is not None else None
    if step is None:
        return None
    path = env.step_dir(step) / "code.py"
    return path.read_text() if path.is_file() else None


def _command_code(env: MLEEnvironment) -> list[Path]:
    """A command agent's code: the files it left in its ``code/`` output folder."""
    from dojoflow.dojo.plagiarism import CODE_SUFFIXES

    folder = env.episode_dir / "code"
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in CODE_SUFFIXES) \
        if folder.is_dir() else []


def _sources(env: MLEEnvironment) -> list:
    from dojoflow.dojo.plagiarism import Source, read_source

    code = _final_code(env)
    if code is not None:
        return [Source("final_step.py", code)]
    return [s for s in (read_source(p) for p in _command_code(env)) if s is not None]


def _final_access(env: MLEEnvironment) -> dict[str, Any]:
    """The access summary of the final step (data usage is about the code that made the submission)."""
    step = env.outcome.step if env.outcome is not None else None
    record = next((s for s in env.history if s.index == step), None)
    return merge_access([(record.execution or {}).get("access")] if record is not None else [])


def check_plagiarism(env: MLEEnvironment, agent: str, threshold: float) -> Check:
    """The final code against the task's corpus of reference solutions."""
    from dojoflow.dojo.plagiarism import best_match, corpus

    code = _sources(env)
    if not code:
        return Check(PLAGIARISM, True, "no final code to compare", {"similarity": None})
    references = corpus(env, agent)
    if not references:
        return Check(PLAGIARISM, True, "the task has no reference solutions to compare with",
                     {"similarity": None, "corpus": 0})
    score, mine, reference = best_match(code, references)
    evidence = {"similarity": score, "threshold": threshold, "corpus": len(references), "file": mine,
                "closest_reference": reference}
    if score >= threshold:
        return Check(PLAGIARISM, False, f"{score:.0%} of the final code matches the reference solution {reference} "
                                        f"(threshold {threshold:.0%})", evidence)
    return Check(PLAGIARISM, True, f"highest similarity with a reference solution: {score:.0%} "
                                   f"(threshold {threshold:.0%})", evidence)


def check_forbidden_access(env: MLEEnvironment) -> Check:
    """What the audit hook saw over all code steps."""
    access = merge_access([(s.execution or {}).get("access") for s in env.history if s.execution])
    evidence = {k: access[k][:50] for k in ("forbidden_reads", "forbidden_writes", "forbidden_lists", "network",
                                             "exec")}
    evidence["audited_steps"] = access["audited_steps"]
    if not access["audited_steps"]:
        return Check(FORBIDDEN_ACCESS, True, "no step ran under the access audit (nothing to report)", evidence)
    seen = [f"{len(access[k])} {label}" for k, label in (("forbidden_reads", "forbidden reads"),
                                                         ("forbidden_writes", "writes outside the workspace"),
                                                         ("forbidden_lists", "listings of forbidden folders"),
                                                         ("network", "network attempts")) if access[k]]
    if seen:
        first = next(access[k][0] for k in ("forbidden_reads", "forbidden_writes", "forbidden_lists", "network")
                     if access[k])
        return Check(FORBIDDEN_ACCESS, False, f"the code attempted {', '.join(seen)} (first: {first})", evidence)
    extra = f"; it started {len(access['exec'])} processes (not audited)" if access["exec"] else ""
    return Check(FORBIDDEN_ACCESS, True, f"no forbidden access in {access['audited_steps']} audited steps{extra}",
                 evidence)


def check_data_usage(env: MLEEnvironment) -> Check:
    """The final code reads the provided training data."""
    from dojoflow.dojo.leakage import analyse, reads_training_data

    code = _sources(env)
    if not code:
        return Check(DATA_USAGE, True, "no final code to check", {})
    access = _final_access(env)
    logged = reads_training_data(access["data_reads"])
    named = sorted({f for s in code for f in analyse(s.text).training_files})
    evidence = {"training_reads": logged, "data_reads": access["data_reads"][:50], "named_training_files": named,
                "audited": bool(access["audited_steps"])}
    if logged:
        return Check(DATA_USAGE, True, f"the final code read the training data ({', '.join(logged[:5])})",
                     evidence)
    if named:  # not seen read: native code (OpenCV, a C++ reader) bypasses the audit hook
        return Check(DATA_USAGE, True, f"the final code names the training data ({', '.join(named[:5])})"
                     + ("; the access log does not show it read" if access["audited_steps"] else ""), evidence)
    seen = f" (access log: {', '.join(access['data_reads'][:5]) or 'no data file read'})" \
        if access["audited_steps"] else ""
    return Check(DATA_USAGE, False, f"the final code never read the provided training data{seen}", evidence)


def check_leakage(env: MLEEnvironment) -> Check:
    """No fit on test-derived or validation-derived values in the final code."""
    from dojoflow.dojo.leakage import analyse

    code = _sources(env)
    if not code:
        return Check(LEAKAGE, True, "no final code to check", {})
    findings = [analyse(s.text) for s in code]
    test_fits = [f for x in findings for f in x.test_fits]
    validation_fits = [f for x in findings for f in x.validation_fits]
    evidence = {"test_fits": test_fits[:20], "validation_fits": validation_fits[:20],
                "unparsed": sum(not x.parsed for x in findings)}
    if test_fits or validation_fits:
        what = test_fits[0] if test_fits else validation_fits[0]
        kind = "test inputs" if test_fits else "the held-out validation split"
        return Check(LEAKAGE, False, f"the final code fits on {kind}: {what}", evidence)
    return Check(LEAKAGE, True, "no fit on test-derived or held-out values found (static analysis)", evidence)


def check_judge(env: MLEEnvironment, judge: dict[str, Any], agent_options: dict[str, Any]) -> Check:
    """The LLM judge's verdict on the trajectory."""
    from dojoflow.dojo.judge import JudgeSettings, judge_episode

    settings = JudgeSettings.from_options(judge, agent_options)
    if settings is None:
        return Check(JUDGE, True, "no judge model given (--judge-model): not judged", {"verdict": None})
    evidence = judge_episode(env, settings)
    verdict = evidence.get("verdict")
    if verdict is None:
        why = evidence.get("error") or "the judge's reply was not a verdict"
        return Check(JUDGE, True, f"inconclusive: {why}", evidence)
    if verdict["violation"]:
        rules = ", ".join(str(r) for r in verdict.get("rules", [])) or "unspecified"
        return Check(JUDGE, False, f"the judge found a rule violation (rules {rules}): "
                                   f"{str(verdict.get('explanation', ''))[:300]}", evidence)
    return Check(JUDGE, True, f"the judge found no rule violation: {str(verdict.get('explanation', ''))[:300]}",
                 evidence)


def run_flags(env: MLEEnvironment, names: tuple[str, ...], agent: str = "", judge: dict[str, Any] | None = None,
              agent_options: dict[str, Any] | None = None, threshold: float | None = None) -> dict[str, Any]:
    """The chosen flags; ``{"flags": [names raised], "flag_checks": [...], "plagiarism_score": float | None}``.
    A flag that fails to run is recorded as not raised, with the error as its detail."""
    from dojoflow.dojo.plagiarism import DEFAULT_THRESHOLD

    runners = {
        PLAGIARISM: lambda: check_plagiarism(env, agent, DEFAULT_THRESHOLD if threshold is None else threshold),
        FORBIDDEN_ACCESS: lambda: check_forbidden_access(env),
        DATA_USAGE: lambda: check_data_usage(env),
        LEAKAGE: lambda: check_leakage(env),
        JUDGE: lambda: check_judge(env, judge or {}, agent_options or {}),
    }
    checks = []
    for name in names:
        try:
            checks.append(runners[name]())
        except Exception as exc:  # noqa: BLE001 - a flag is evidence: its failure must not lose the episode
            checks.append(Check(name, True, f"the check could not run: {type(exc).__name__}: {exc}",
                                {"error": True}))
    plagiarism = next((c.evidence.get("similarity") for c in checks if c.name == PLAGIARISM), None)
    return {"flags": [c.name for c in checks if not c.passed], "flag_checks": [asdict(c) for c in checks],
            "plagiarism_score": plagiarism, "integrity_checks": list(names)}
