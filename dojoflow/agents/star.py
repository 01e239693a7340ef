"""MLE-STAR-style agent (Nam et al. 2025, "MLE-STAR: Machine Learning Engineering Agent via Search and
Targeted Refinement"), adapted to dojoflow's step-by-step environment.

1. **Initial solutions** - the paper retrieves candidate models with web search; there is no network here, so
   candidates come from a curated list per task type (:data:`CANDIDATE_MODELS`). The model writes one script
   per candidate (``num_candidates``, paper M=4); each is evaluated with ``execute_code``.
2. **Merge** - starting from the best candidate, the next-best ones are merged in one at a time and kept only
   when the feedback score improves (the paper stops at the first merge that does not help; so do we).
3. **Data-usage check** (LLM-reviewed) - is all the provided data used? A revised script is evaluated.
4. **Targeted refinement**, ``outer_loops`` times (paper T=4):
   a. *ablation*: the model writes ``ablation_variants`` copies of the solution, each with one named code
      block removed or simplified; each is executed and its feedback compared with the solution's; the block
      whose ablation changes the score most (not refined before) is the one that matters most;
   b. *extraction*: the model copies that block verbatim from the solution and proposes a first plan;
   c. *inner loop*, ``inner_loops`` times (paper K=4): the model rewrites only the block following the plan,
      the block is substituted into the solution and evaluated; the planner sees earlier plans and their
      scores and proposes the next plan. The best solution found becomes the current one.
5. **Ensemble**, ``ensemble_rounds`` times (paper R=5): the planner proposes how to ensemble the best
   ``ensemble_solutions`` distinct solutions (paper L=2), the model implements it, it is evaluated.
6. **Debugging**: a failing script is sent back with its error up to ``max_debug_rounds`` times.
7. **Data-leakage check** (LLM-reviewed) before every execution of a new script: the model says whether the
   script lets test data or targets leak into training and returns a corrected script if so.

Every stage checks the step budget and leaves steps for the later ones; the best step is submitted.
"""

from __future__ import annotations

import json
import re
from collections.abc import Generator
from pathlib import Path
from typing import Any

from dojoflow.agents.llm_base import LLMAgent, Plan, extract_code, task_brief
from dojoflow.dojo.actions import Action
from dojoflow.dojo.observation import Observation
from dojoflow.tasks_catalog.kinds import TASK_KINDS

CANDIDATE_MODELS: dict[str, list[str]] = {
    "regression": ["Ridge regression on one-hot encoded, standardised features",
                   "HistGradientBoostingRegressor (scikit-learn gradient boosting)",
                   "RandomForestRegressor", "ExtraTreesRegressor", "Support vector regression (SVR, RBF kernel)"],
    "classification": ["LogisticRegression on one-hot encoded, standardised features",
                       "HistGradientBoostingClassifier (scikit-learn gradient boosting)",
                       "RandomForestClassifier", "ExtraTreesClassifier", "SVC with probability estimates"],
    "image": ["LogisticRegression on flattened, scaled pixels", "SVC (RBF kernel) on scaled pixels",
              "RandomForestClassifier on pixels", "MLPClassifier on scaled pixels"],
    "text": ["TF-IDF + LogisticRegression", "TF-IDF + LinearSVC", "TF-IDF character n-grams + SGDClassifier",
             "TF-IDF + ComplementNB"],
    "time-series": ["Lag and calendar features + HistGradientBoostingRegressor", "Lag features + Ridge",
                    "Seasonal naive baseline blended with Ridge on lags", "RandomForestRegressor on lag features"],
}

SYSTEM = ("You are a Kaggle grandmaster and expert machine-learning engineer. Scripts you write are complete "
          "and self-contained: they read data/train.csv and data/test.csv, print a validation score on held-out "
          "training data and write submission.csv in the working directory. There is no network access.")

CODE_FORMAT = "Reply with a one-line summary, then the complete script in a single ```python block."


def candidates_for(task_type: str) -> list[str]:
    """Candidate model descriptions for a task kind's family (classification for kinds without their own)."""
    family = TASK_KINDS[task_type].family if task_type in TASK_KINDS else "classification"
    return CANDIDATE_MODELS.get(family, CANDIDATE_MODELS["classification"])


class STARAgent(LLMAgent):
    """Candidates -> merge -> ablation-guided block refinement -> ensemble, with leakage/usage checks."""

    name = "star"

    def __init__(self, *args: Any, num_candidates: int = 4, outer_loops: int = 4, inner_loops: int = 4,
                 ablation_variants: int = 3, ensemble_rounds: int = 5, ensemble_solutions: int = 2,
                 max_debug_rounds: int = 3, check_leakage: bool = True, check_data_usage: bool = True,
                 **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.num_candidates, self.outer_loops, self.inner_loops = num_candidates, outer_loops, inner_loops
        self.ablation_variants, self.ensemble_rounds = ablation_variants, ensemble_rounds
        self.ensemble_solutions, self.max_debug_rounds = ensemble_solutions, max_debug_rounds
        self.check_leakage, self.check_data_usage = check_leakage, check_data_usage

    # -- helpers -----------------------------------------------------------------------------------------------
    def _has_steps(self, reserve: int = 0) -> bool:
        return self.steps_left - 1 > reserve and self.time_left()

    def _chat(self, stage: str, body: str) -> str:
        prompt = f"# Stage: {stage}\n\n# Task\n{task_brief(self.info)}\n\n{self.budget_text()}\n\n{body}"
        return self.ask([{"role": "system", "content": SYSTEM}, {"role": "user", "content": prompt}])

    def _log(self, stage: str, **fields: Any) -> None:
        self.log.append({"stage": stage, **fields})
        if self.artifacts_dir:
            out = Path(self.artifacts_dir)
            out.mkdir(parents=True, exist_ok=True)
            (out / "star_log.json").write_text(json.dumps({"agent": self.name, "model": self.client.model,
                                                           "events": self.log}, indent=2, default=str))

    def _leakage_checked(self, code: str) -> str:
        if not self.check_leakage:
            return code
        reply = self._chat("data leakage check", (
            "Check the script below for data leakage: is any information from the test set (or the target) used "
            "when fitting preprocessing or models, e.g. scalers/encoders fitted on train+test, target columns used "
            "as features, validation rows used for training the validated model?\nAnswer on the first line "
            "`LEAKAGE: yes` or `LEAKAGE: no`. If yes, explain briefly and give the corrected complete script in a "
            f"```python block.\n\n```python\n{code}\n```"))
        found = re.search(r"LEAKAGE:\s*(yes|no)", reply, re.IGNORECASE)
        fixed = extract_code(reply)
        if found and found.group(1).lower() == "yes":
            self._log("leakage", found=True, fixed=fixed is not None, explanation=reply.split("```")[0][:500])
            self.checks.append("leakage found and fixed" if fixed else "leakage found (no fix given)")
            return fixed or code
        self._log("leakage", found=False)
        return code

    def _evaluate(self, code: str, label: str) -> Generator[Action, Observation, tuple[str, float | None]]:
        """Leakage check, execute, and debug while it fails; returns (final code, score or None)."""
        code = self._leakage_checked(code)
        for attempt in range(self.max_debug_rounds + 1):
            self.note = f"STAR {label}" + (f" (debug {attempt})" if attempt else "") + (
                f"; {'; '.join(self.checks)}" if self.checks else "")
            self.checks.clear()
            observation = yield Action("execute_code", code=code)
            data = observation.data
            if data.get("valid") and data.get("feedback_score") is not None:
                score = float(data["feedback_score"])
                self.solutions.append((score, code, label))
                self._log("evaluate", label=label, step=data.get("step"), score=score, debug_rounds=attempt)
                return code, score
            error = (data.get("error") or {}).get("message", "invalid submission")
            self._log("evaluate", label=label, step=data.get("step"), error=error[:300], debug_rounds=attempt)
            if attempt == self.max_debug_rounds or not self._has_steps():
                break
            reply = self._chat("debug", f"The script below failed.\n# Error\n{error}\n# Output (tail)\n"
                                        f"{observation.text[-1500:]}\n\n```python\n{code}\n```\n\n"
                                        f"Fix it. {CODE_FORMAT}")
            fixed = extract_code(reply)
            if fixed is None:
                break
            code = fixed
        return code, None

    # -- the pipeline ----------------------------------------------------------------------------------------
    def run(self) -> Plan:
        """Candidates, merge, ablation-guided refinement of the block that matters, ensemble; then submit."""
        self.log: list[dict[str, Any]] = []
        self.solutions: list[tuple[float, str, str]] = []
        self.checks: list[str] = []
        later = 2  # steps kept for refinement/ensembling while building the initial solution
        # 1. initial solutions from the curated candidate list
        scored: list[tuple[float, str, str]] = []
        for model in candidates_for(self.info.get("task_type", ""))[:self.num_candidates]:
            if not self._has_steps(later):
                break
            reply = self._chat("initial solution", f"Write a solution that uses this model: {model}.\n{CODE_FORMAT}")
            code = extract_code(reply)
            if code is None:
                self._log("candidate", model=model, error="no code in reply")
                continue
            code, score = yield from self._evaluate(code, f"candidate {model}")
            if score is not None:
                scored.append((score, code, model))
        if not scored:
            self.end_reason = "no initial solution produced usable code"
            return
        scored.sort(key=lambda s: s[0], reverse=self.higher_is_better)
        best_score: float | None
        best_score, best_code, _ = scored[0]
        # 2. merge candidates into the best one while it helps
        for score, code, model in scored[1:]:
            if not self._has_steps(later):
                break
            reply = self._chat("merge", f"Merge the candidate solution into the base solution (e.g. average or "
                                        f"stack their predictions) to improve the score.\n# Base solution (score "
                                        f"{best_score:.6g})\n```python\n{best_code}\n```\n# Candidate ({model}, score "
                                        f"{score:.6g})\n```python\n{code}\n```\n{CODE_FORMAT}")
            merged = extract_code(reply)
            if merged is None:
                break
            merged, merged_score = yield from self._evaluate(merged, f"merge {model}")
            if not self.better(merged_score, best_score):
                break
            best_score, best_code = merged_score, merged
        # 3. data-usage check
        if self.check_data_usage and self._has_steps(later):
            reply = self._chat("data usage check", (
                "Does the script use all the provided information (all files under data/ and all useful columns)? "
                "If it does, answer exactly `All the provided information is used.` Otherwise give the revised "
                f"complete script in a ```python block.\n\n```python\n{best_code}\n```"))
            revised = extract_code(reply)
            self._log("data_usage", revised=revised is not None)
            if revised is not None:
                revised, score = yield from self._evaluate(revised, "data-usage revision")
                if self.better(score, best_score):
                    best_score, best_code = score, revised
        # 4. ablation-guided refinement of one block per outer loop
        refined: list[str] = []
        ensemble_reserve = 1 if self.ensemble_rounds else 0
        for outer in range(self.outer_loops):
            if not self._has_steps(ensemble_reserve + 1):
                break
            best_score, best_code = yield from self._refine_once(outer, best_score, best_code, refined,
                                                                 ensemble_reserve)
        # 5. ensemble of the best distinct solutions
        for round_ in range(self.ensemble_rounds):
            if not self._has_steps():
                break
            distinct: list[tuple[float, str, str]] = []
            for item in sorted(self.solutions, key=lambda s: s[0], reverse=self.higher_is_better):
                if all(item[1] != d[1] for d in distinct):
                    distinct.append(item)
            distinct = distinct[:self.ensemble_solutions]
            if len(distinct) < 2:
                break
            shown = "\n".join(f"# Solution {i + 1} ({label}, score {s:.6g})\n```python\n{c}\n```"
                              for i, (s, c, label) in enumerate(distinct))
            tried = "\n".join(e.get("plan", "") + f" -> {e.get('score')}" for e in self.log if e["stage"] == "ensemble")
            plan = self._chat("ensemble plan", f"{shown}\nEarlier ensemble plans and scores:\n{tried or '(none)'}\n"
                                               "Propose a new plan (a few sentences, no code) to ensemble these "
                                               "solutions into a better one.").split("```")[0].strip()[:800]
            reply = self._chat("ensemble", f"{shown}\n# Plan\n{plan}\nImplement the plan as one script. {CODE_FORMAT}")
            code = extract_code(reply)
            if code is None:
                self._log("ensemble", plan=plan, error="no code in reply")
                continue
            code, score = yield from self._evaluate(code, f"ensemble round {round_ + 1}")
            self._log("ensemble", plan=plan, score=score)
        self.end_reason = "the MLE-STAR pipeline finished"

    def _refine_once(self, outer: int, best_score: float | None, best_code: str, refined: list[str], reserve: int):
        reply = self._chat("ablation", (
            f"Run an ablation study of the solution below (score {best_score:.6g}). Write up to "
            f"{self.ablation_variants} variants, each the complete solution with ONE named code block removed or "
            "replaced by a simple default (e.g. the feature engineering, the model choice, the preprocessing). "
            "For each variant write a line `### Ablation: <block name>` followed by the script in a ```python "
            f"block.\nBlocks already refined: {refined or 'none'}.\n\n```python\n{best_code}\n```"))
        variants = []
        for section in re.split(r"^###\s*Ablation:\s*", reply, flags=re.MULTILINE)[1:]:
            name, _, rest = section.partition("\n")
            code = extract_code(rest)
            if code:
                variants.append((name.strip(), code))
        impacts: list[tuple[float, str]] = []
        for name, code in variants[:self.ablation_variants]:
            if not self._has_steps(reserve + 1):
                break
            self.note = f"STAR ablation {outer + 1}: without '{name}'"
            observation = yield Action("execute_code", code=code)
            score = observation.data.get("feedback_score") if observation.data.get("valid") else None
            impact = abs(score - best_score) if score is not None else None
            self._log("ablation", outer=outer, block=name, score=score, impact=impact)
            if impact is not None and name not in refined:
                impacts.append((impact, name))
        summary = "\n".join(f"- without '{e['block']}': score {e['score']} (change {e['impact']})"
                            for e in self.log if e["stage"] == "ablation" and e.get("outer") == outer)
        target = max(impacts)[1] if impacts else "the part of the code you judge most important"
        self._log("ablation_choice", outer=outer, block=target)
        reply = self._chat("extract block", (
            f"Ablation results against the solution (score {best_score:.6g}):\n{summary or '(none ran)'}\n"
            f"The block that matters most is: {target}.\nCopy that code block EXACTLY as it appears in the solution "
            "into a ```python block, then write `Plan:` and a plan to improve that block.\n\n"
            f"```python\n{best_code}\n```"))
        block = extract_code(reply) or ""
        if not block.strip() or block.strip() not in best_code:
            block = best_code  # the extractor did not copy verbatim: refine the whole script
        plan = reply.split("Plan:", 1)[1].strip()[:800] if "Plan:" in reply else f"Improve {target}."
        refined.append(target)
        tried: list[tuple[str, float | None]] = []
        outer_best_score: float | None = best_score
        outer_best_code = best_code
        for inner in range(self.inner_loops):
            if not self._has_steps(reserve):
                break
            if inner:
                history = "\n".join(f"- {p} -> score {s}" for p, s in tried)
                plan = self._chat("plan", (
                    f"We are improving this code block (solution score {best_score:.6g}):\n```python\n{block}\n```\n"
                    f"Plans tried so far and their scores:\n{history}\nPropose a new, different plan in a few "
                    "sentences (no code).")).split("```")[0].strip()[:800]
            reply = self._chat("refine block", (
                f"Rewrite this code block following the plan. Reply with the new block only (it replaces the old "
                f"one verbatim in the full script, so keep variable names that later code uses) in a ```python "
                f"block.\n# Plan\n{plan}\n# Block\n```python\n{block}\n```\n# Full script for context\n"
                f"```python\n{best_code}\n```"))
            new_block = extract_code(reply)
            if new_block is None:
                tried.append((plan, None))
                continue
            candidate = best_code.replace(block.strip(), new_block.strip(), 1) if block is not best_code else new_block
            candidate, score = yield from self._evaluate(candidate, f"refine {target} (outer {outer + 1}, "
                                                                    f"inner {inner + 1})")
            tried.append((plan, score))
            self._log("refine", outer=outer, inner=inner, block=target, plan=plan, score=score)
            if self.better(score, outer_best_score):
                outer_best_score, outer_best_code = score, candidate
        return outer_best_score, outer_best_code
