"""``knn``: an agent that fits k-nearest neighbours on the numeric columns, then submits.

It follows dojoflow's :class:`~dojoflow.api.Agent` protocol: ``reset(observation, seed)`` then
``act(observation) -> Action`` until it submits; ``last_step_info`` is what the trajectory records about
each decision.
"""

from __future__ import annotations

from typing import Any

from dojoflow.api import Action, Observation

SCRIPT = """\
import numpy as np
import pandas as pd
from sklearn.impute import SimpleImputer
from sklearn.neighbors import {model}
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

train, test = pd.read_csv("data/train.csv"), pd.read_csv("data/test.csv")
features = [c for c in {features!r} if c in test.columns and train[c].dtype.kind in "ifb"]
model = make_pipeline(SimpleImputer(), StandardScaler(), {model}(n_neighbors={k}))
submission = pd.DataFrame({{{id_column!r}: test[{id_column!r}]}})
for target in {targets!r}:
    model.fit(train[features], train[target])
    submission[target] = {predict}
submission.to_csv("submission.csv", index=False)
print("fitted", len(features), "features")
"""


class KNNAgent:
    """Asks for the task, runs one k-NN script, submits it."""

    name = "knn"

    def __init__(self, k: int = 7) -> None:
        self.k = k
        self.last_step_info: dict[str, Any] = {}
        self._stage = 0

    def reset(self, observation: Observation, seed: int) -> None:
        """A new episode: start from the task overview."""
        self._stage = 0

    def act(self, observation: Observation) -> Action:
        """request_info, then execute_code with the k-NN script, then submit."""
        self._stage += 1
        if self._stage == 1:
            self.last_step_info = {"note": "reading the schema"}
            return Action("request_info")
        if self._stage == 2:
            self.last_step_info = {"note": f"k-NN with k={self.k}"}
            return Action("execute_code", code=self.script(observation.data))
        self.last_step_info = {"note": "submitting"}
        return Action("submit")

    def script(self, info: dict[str, Any]) -> str:
        """The training and prediction script for the task ``info`` describes."""
        prediction = info["prediction"]
        model = "KNeighborsRegressor" if prediction == "value" else "KNeighborsClassifier"
        predict = ("model.predict_proba(test[features])[:, 1]" if prediction == "probability"
                   else "model.predict(test[features])")
        targets = info["target_columns"]
        features = [c for c in info["columns"] if c not in (info["id_column"], *targets)]
        return SCRIPT.format(model=model, features=features, k=self.k, id_column=info["id_column"],
                             targets=targets, predict=predict)
