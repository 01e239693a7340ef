"""Policies that drive rollouts: the protocol, and a scripted policy (benchmarks, tests, smoke runs).

A policy maps the chat so far to the next assistant turn. An LLM policy served by a trainer (vLLM, SGLang)
returns the token ids it sampled, so the record keeps them; a scripted policy has none.
Policies must be picklable: group rollouts send them to worker processes and Ray actors.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Protocol

Messages = list[dict[str, str]]


@dataclass
class PolicyTurn:
    """One assistant turn; token ids and log-probs when the policy has them."""

    text: str
    prompt_ids: list[int] | None = None
    completion_ids: list[int] | None = None
    logprobs: list[float] | None = None


class Policy(Protocol):
    """The next assistant turn given the conversation; ``seed`` identifies the rollout (for sampling)."""

    def __call__(self, messages: Messages, *, seed: int) -> PolicyTurn:
        """The next turn."""
        ...


# A real scikit-learn solution for any tabular task: reads the sample submission for the id and target
# columns, fits a model on the numeric and one-hot features, writes submission.csv.
SOLUTION = '''\
import numpy as np, pandas as pd
from sklearn.{module} import {model}, {regressor}
train, test = pd.read_csv("data/train.csv"), pd.read_csv("data/test.csv")
sample = pd.read_csv("data/sample_submission.csv")
ident, target = sample.columns[0], sample.columns[1]
features = [c for c in test.columns if c != ident]
both = pd.get_dummies(pd.concat([train[features], test[features]]), dummy_na=True).fillna(0)
X, Xt = both.iloc[:len(train)], both.iloc[len(train):]
y = train[target]
classify = y.dtype == object or y.nunique() <= 20
model = {model}({args}) if classify else {regressor}({args})
model.fit(X, y)
pd.DataFrame({{ident: test[ident], target: model.predict(Xt)}}).to_csv("submission.csv", index=False)
'''
VARIANTS = (
    ("ensemble", "RandomForestClassifier", "RandomForestRegressor", "n_estimators=20, random_state={seed}"),
    ("tree", "DecisionTreeClassifier", "DecisionTreeRegressor", "max_depth=3, random_state={seed}"),
    ("neighbors", "KNeighborsClassifier", "KNeighborsRegressor", "n_neighbors=5"),
)


def solution_code(variant: int, seed: int) -> str:
    """Solution ``variant`` (cycled) of :data:`SOLUTION`; variants differ in model, hence in reward."""
    module, model, regressor, args = VARIANTS[variant % len(VARIANTS)]
    return SOLUTION.format(module=module, model=model, regressor=regressor, args=args.format(seed=seed))


@dataclass
class ScriptedPolicy:
    """``code_steps`` solution attempts (variant chosen by seed), then submit: a fixed-cost policy.

    ``tool_calls``: emit JSON action objects (else fenced code, which the text parser runs as
    ``execute_code``). ``sleep_s``: simulated generation time per turn (0 for harness benchmarks).
    """

    code_steps: int = 2
    tool_calls: bool = True
    sleep_s: float = 0.0

    def __call__(self, messages: Messages, *, seed: int) -> PolicyTurn:
        """The next action: execute a solution until ``code_steps`` are done, then submit the best."""
        if self.sleep_s:
            import time

            time.sleep(self.sleep_s)
        done = sum(1 for m in messages if m["role"] == "assistant")
        if done >= self.code_steps:
            return PolicyTurn(json.dumps({"type": "submit"}))
        code = solution_code(seed + done, seed)
        if self.tool_calls:
            return PolicyTurn(json.dumps({"type": "execute_code", "code": code}))
        return PolicyTurn(f"I will fit a model.\n```python\n{code}```")
