"""The baseline agent: no LLM, but a real ML workflow.

It asks for the task info, reads the schema (numeric vs categorical columns, task type, metric), writes a
self-contained scikit-learn script - imputation and scaling for numeric columns, one-hot encoding for
categorical ones, a model chosen by task type, 5-fold cross-validation printed - and runs it: a simple
linear model first, then stronger tree ensembles. It keeps the step with the best feedback score and
submits it.
"""

from __future__ import annotations

from typing import Any

from dojoflow.dojo.actions import Action
from dojoflow.dojo.observation import Observation

# (label, classifier expression, regressor expression); {seed} is filled in.
MODEL_LADDER = (
    ("linear", "LogisticRegression(C=1.0, max_iter=2000)", "Ridge(alpha=1.0)"),
    ("random-forest", "RandomForestClassifier(n_estimators=300, random_state={seed})",
     "RandomForestRegressor(n_estimators=300, random_state={seed})"),
    ("gradient-boosting", "HistGradientBoostingClassifier(max_iter=100, learning_rate=0.1, random_state={seed})",
     "HistGradientBoostingRegressor(max_iter=100, learning_rate=0.1, random_state={seed})"),
)
# text inputs: sparse TF-IDF features, so linear models / naive Bayes instead of the tree ensembles
TEXT_LADDER = (
    ("tfidf-logreg", "LogisticRegression(C=4.0, max_iter=3000)", "Ridge(alpha=1.0)"),
    ("tfidf-logreg-C16", "LogisticRegression(C=16.0, max_iter=3000)", "Ridge(alpha=0.3)"),
    ("tfidf-nb", "ComplementNB(alpha=0.3)", "Ridge(alpha=3.0)"),
)
SCORING = {"roc_auc": "roc_auc", "accuracy": "accuracy", "f1_macro": "f1_macro", "log_loss": "neg_log_loss",
           "rmse": "neg_root_mean_squared_error", "mae": "neg_mean_absolute_error", "f1": "f1",
           "balanced_accuracy": "balanced_accuracy", "mse": "neg_mean_squared_error", "r2": "r2",
           "mape": "neg_mean_absolute_percentage_error"}


def write_script(info: dict[str, Any], model_index: int, seed: int) -> str:
    """A complete training + prediction script for the task described by ``info`` (from request_info).

    Tabular inputs (numeric features from dates when the task is split by time), image files (pixels as
    features) and text (TF-IDF with linear models); one model per target column for multi-label and
    multi-output tasks; a log1p target for RMSLE.
    """
    inputs = info.get("inputs") or {"kind": "tabular"}
    kind = inputs.get("kind", "tabular")
    ladder = TEXT_LADDER if kind == "text" else MODEL_LADDER
    label, classifier, regressor = ladder[model_index]
    regression = info["prediction"] == "value"
    model = (regressor if regression else classifier).format(seed=seed)
    if regression and info["metric"].startswith("rmsle"):  # fit log1p(target): RMSLE is RMSE on that scale
        model = f"TransformedTargetRegressor({model}, func=np.log1p, inverse_func=np.expm1)"
    targets = list(info["target_columns"])
    id_col = info["id_column"]
    time_col = info.get("time_column")
    features = [c for c in info["columns"] if c not in (id_col, *targets)]
    if kind == "images":
        feature_code = f'''
from PIL import Image


def features(frame):
    pixels = [np.asarray(Image.open("data/{inputs["dir"]}/" + str(name)).convert("L"), dtype=float).ravel() / 255.0
              for name in frame[{inputs["column"]!r}]]
    matrix = np.vstack(pixels)
    return pd.DataFrame(matrix, columns=[f"px{{i}}" for i in range(matrix.shape[1])])
'''
    elif kind == "text":
        feature_code = f'''

def features(frame):
    return frame[[{inputs["column"]!r}]].fillna("")
'''
    else:
        time_code = "" if not time_col else f'''
    when = pd.to_datetime(frame.pop({time_col!r}))
    frame["t_days"] = (when - pd.Timestamp("1900-01-01")).dt.days.astype(float)
    frame["t_year"] = when.dt.year.astype(float)
    frame["t_month"] = when.dt.month.astype(float)
    frame["t_doy_sin"] = np.sin(2 * np.pi * when.dt.day_of_year / 365.25)
    frame["t_doy_cos"] = np.cos(2 * np.pi * when.dt.day_of_year / 365.25)'''
        feature_code = f'''

def features(frame):
    frame = frame[{features!r}].copy(){time_code}
    return frame
'''
    if kind == "text":
        tfidf = "TfidfVectorizer(sublinear_tf=True, min_df=2, ngram_range=(1, 2))"
        preprocess_code = f'''preprocess = ColumnTransformer([("tfidf", {tfidf},
                                {inputs["column"]!r})])'''
    else:
        preprocess_code = '''NUMERIC = [c for c in X.columns if X[c].dtype.kind in "ifb"]
CATEGORICAL = [c for c in X.columns if c not in NUMERIC]
preprocess = ColumnTransformer([
    ("numeric", Pipeline([("impute", SimpleImputer(strategy="median")), ("scale", StandardScaler())]), NUMERIC),
    ("categorical", Pipeline([("impute", SimpleImputer(strategy="most_frequent")),
                              ("onehot", OneHotEncoder(handle_unknown="ignore"))]), CATEGORICAL),
])'''
    predict = ("model.predict_proba(X_test)[:, 1]" if info["prediction"] == "probability"
               else "model.predict(X_test)")
    clip = ("\n    values = np.clip(values, 0, None)  # RMSLE needs predictions >= 0"
            if info["metric"].startswith("rmsle") else "")
    if time_col:
        cv = "TimeSeriesSplit(n_splits=5)"
    elif regression or len(targets) > 1:
        cv = "KFold(n_splits=5, shuffle=True, random_state=SEED)"
    else:
        cv = "StratifiedKFold(n_splits=5, shuffle=True, random_state=SEED)"
    scoring = SCORING.get(info["metric"]) if len(targets) == 1 else None
    return f'''"""Baseline step: {label} model for {info["task_id"]} ({info["task_type"]}, metric {info["metric"]})."""
import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.compose import ColumnTransformer, TransformedTargetRegressor
from sklearn.ensemble import (HistGradientBoostingClassifier, HistGradientBoostingRegressor,
                              RandomForestClassifier, RandomForestRegressor)
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.model_selection import KFold, StratifiedKFold, TimeSeriesSplit, cross_val_score
from sklearn.naive_bayes import ComplementNB
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

SEED = {seed}
TARGETS = {targets!r}
train = pd.read_csv("data/train.csv")
test = pd.read_csv("data/test.csv")
{feature_code}

X, X_test = features(train), features(test)
{preprocess_code}
model = Pipeline([("preprocess", preprocess), ("model", {model})])

folds = {cv}
scores = cross_val_score(model, X, train[TARGETS[0]], cv=folds, scoring={scoring!r})
print(f"{label} 5-fold CV ({{TARGETS[0]}}): {{abs(scores.mean()):.5f}} +/- {{scores.std():.5f}}")

submission = pd.DataFrame({{{id_col!r}: test[{id_col!r}]}})
for target in TARGETS:  # one model per target column (multi-label / multi-output tasks have several)
    model = clone(model).fit(X, train[target])
    values = {predict}{clip}
    submission[target] = values
submission.to_csv("submission.csv", index=False)
print(f"wrote submission.csv with {{len(submission)}} rows")
'''


PRIOR_SCRIPT = '''"""Baseline step for {task_id}: its data layout is not one table the baseline models, so
the submission is the sample submission with each target column set to the training prior (the mean or the
most frequent value of that column in a public table that has it), or left as the sample has it."""
from pathlib import Path

import pandas as pd

TARGETS = {targets!r}
sample = pd.read_csv("data/{sample}")
for table in sorted(Path("data").rglob("*.csv")):
    if table.name == "{sample}":
        continue
    try:
        header = pd.read_csv(table, nrows=0).columns
    except Exception:
        continue
    for target in [t for t in TARGETS if t in header and t in sample.columns]:
        values = pd.read_csv(table, usecols=[target])[target].dropna()
        if len(values) and values.dtype.kind in "ifb" and sample[target].dtype.kind in "if":
            sample[target] = float(values.mean())
        elif len(values) and sample[target].dtype.kind not in "if":
            sample[target] = values.mode().iloc[0]
        print(f"{{target}}: the prior from {{table}}")
sample.to_csv("submission.csv", index=False)
print(f"wrote submission.csv with {{len(sample)}} rows")
'''


def prior_script(info: dict[str, Any]) -> str:
    """A script that submits the sample submission with the training prior (layouts the ladder cannot model)."""
    return PRIOR_SCRIPT.format(task_id=info["task_id"], targets=list(info["target_columns"]),
                               sample=info["sample_submission_file"])


class BaselineAgent:
    """info -> linear -> random forest -> gradient boosting (as the budget allows) -> submit the best."""

    name = "baseline"

    def __init__(self, models: int = 3) -> None:
        self.models = max(1, min(models, len(MODEL_LADDER)))
        self.last_step_info: dict[str, Any] = {}
        self.reset(None, 0)

    def reset(self, observation: Observation | None, seed: int) -> None:
        """Start an episode (the task info is read from the first observation that carries it)."""
        self.seed = seed
        self.info: dict[str, Any] | None = None
        self.next_model = 0
        self.best: tuple[int, float] | None = None  # (step, feedback score)
        self.higher_is_better = True

    def act(self, observation: Observation) -> Action:
        """request_info first, then one model of the ladder per step, then submit the best step."""
        data = observation.data
        self._remember_feedback(data)
        steps_left = data.get("steps_left", 1)
        if self.info is None:
            if "columns" in data:
                self.info = data
                self.higher_is_better = bool(data["higher_is_better"])
            else:
                return self._note(Action("request_info"), "asking for the task's schema")
        modelled = set(self.info["target_columns"]) <= set(self.info["columns"])
        if self.info.get("layout") == "files" or not modelled:  # the sample, with the training prior
            if self.next_model == 0 and self.info.get("sample_submission_file"):
                self.next_model = self.models
                return self._note(Action("execute_code", code=prior_script(self.info)),
                                  "submitting the sample submission with the training prior")
            step = self.best[0] if self.best else None
            return self._note(Action("submit", step=step), f"submitting step {step}")
        if self.next_model < self.models and (steps_left > 1 or self.best is None):
            index = self.next_model
            self.next_model += 1
            return self._note(Action("execute_code", code=write_script(self.info, index, self.seed)),
                              f"running the {MODEL_LADDER[index][0]} model")
        step = self.best[0] if self.best else None
        return self._note(Action("submit", step=step), f"submitting step {step} (best feedback score)")

    def _remember_feedback(self, data: dict[str, Any]) -> None:
        score, step = data.get("feedback_score"), data.get("step")
        if score is None or step is None:
            return
        better = self.best is None or (score > self.best[1] if self.higher_is_better else score < self.best[1])
        if better:
            self.best = (step, score)

    def _note(self, action: Action, note: str) -> Action:
        self.last_step_info = {"note": note, "tokens": 0, "cost_usd": 0.0}
        return action
