"""A small agent written for MLE-bench's container contract, and nothing else: it runs unchanged in
MLE-bench and as a dojoflow command agent.

It reads ``/home/instructions.txt`` and ``/home/data/`` (``train.csv``, ``test.csv``,
``sample_submission.csv``), asks the model at ``$OPENAI_BASE_URL`` which estimator to use (any
OpenAI-compatible endpoint; with none it picks by itself), fits it with scikit-learn, writes its code to
``/home/code/``, its log to ``/home/logs/``, the predictions to ``/home/submission/submission.csv``, and
checks them with the validation endpoint at ``http://localhost:5000/validate``. Standard library plus pandas
and scikit-learn; no dojoflow import.

    dojoflow run --task penguins-body-mass --agent-dir examples/command_agents \
        --agent-command "python mlebench_agent.py" --model gpt-4o-mini
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import urllib.request

HOME = "/home"
DATA = f"{HOME}/data"
SUBMISSION = os.path.join(os.environ.get("SUBMISSION_DIR", f"{HOME}/submission"), "submission.csv")
CODE_DIR = os.environ.get("CODE_DIR", f"{HOME}/code")
LOGS_DIR = os.environ.get("LOGS_DIR", f"{HOME}/logs")


def log(message: str) -> None:
    print(message, flush=True)
    with open(os.path.join(LOGS_DIR, "agent.log"), "a") as fh:
        fh.write(message + "\n")


def ask_model(prompt: str) -> str:
    """One chat completion from $OPENAI_BASE_URL, or '' without an endpoint."""
    base = os.environ.get("OPENAI_BASE_URL")
    if not base:
        return ""
    body = {"model": os.environ.get("AGENT_MODEL", "gpt-4o-mini"),
            "messages": [{"role": "user", "content": prompt}]}
    request = urllib.request.Request(f"{base.rstrip('/')}/chat/completions", data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json",
                                              "Authorization": f"Bearer {os.environ.get('OPENAI_API_KEY', '')}"})
    try:
        with urllib.request.urlopen(request, timeout=120) as reply:
            return json.loads(reply.read())["choices"][0]["message"]["content"] or ""
    except OSError as exc:
        log(f"the model did not answer: {exc}")
        return ""


SOLUTION = '''import pandas as pd
from sklearn.compose import make_column_selector, make_column_transformer
from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

train = pd.read_csv("{data}/train.csv")
test = pd.read_csv("{data}/test.csv")
sample = pd.read_csv("{data}/sample_submission.csv")
ID, TARGETS = sample.columns[0], list(sample.columns[1:])
features = [c for c in test.columns if c != ID]
prep = make_column_transformer(
    (make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), make_column_selector(dtype_include="number")),
    (make_pipeline(SimpleImputer(strategy="most_frequent"), OneHotEncoder(handle_unknown="ignore")),
     make_column_selector(dtype_exclude="number")))
out = pd.DataFrame({{ID: test[ID]}})
for target in TARGETS:
    rows = train.dropna(subset=[target])
    y = rows[target]
    classify = y.dtype == object or y.nunique() <= 20
    model = {model}
    pipe = make_pipeline(prep, model).fit(rows[features], y)
    if classify and sample[target].dtype.kind == "f" and len(TARGETS) == 1:
        out[target] = pipe.predict_proba(test[features])[:, list(pipe.classes_).index(1)]
    else:
        out[target] = pipe.predict(test[features])
out.to_csv("{submission}", index=False)
print("wrote", len(out), "rows")
'''
MODELS = {"forest": ("RandomForestClassifier(n_estimators=200, random_state=0) if classify else "
                     "RandomForestRegressor(n_estimators=200, random_state=0)"),
          "linear": "LogisticRegression(max_iter=2000) if classify else Ridge(alpha=1.0)"}


def main() -> int:
    os.makedirs(CODE_DIR, exist_ok=True)
    os.makedirs(LOGS_DIR, exist_ok=True)
    instructions = open(f"{HOME}/instructions.txt").read()
    description = open(f"{DATA}/description.md").read()
    log(f"instructions: {len(instructions)} characters; data: {sorted(os.listdir(DATA))}")
    answer = ask_model(f"{description}\n\nReply with one word, 'forest' or 'linear': which model should I fit?")
    choice = next((name for name in MODELS if name in answer.lower()), "forest")
    log(f"model's answer: {answer.strip()[:200]!r}; using {choice}")
    code = SOLUTION.format(data=DATA, submission=SUBMISSION, model=MODELS[choice])
    script = os.path.join(CODE_DIR, "solution.py")
    with open(script, "w") as fh:
        fh.write(code)
    run = subprocess.run([sys.executable, script], capture_output=True, text=True)
    log(run.stdout + run.stderr)
    if run.returncode != 0:
        return run.returncode
    checker = f"{HOME}/validate_submission.sh"
    if shutil.which("sh") and os.path.exists(checker):
        check = subprocess.run(["sh", checker, SUBMISSION], capture_output=True, text=True)
        log(f"validation: {check.stdout.strip()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
