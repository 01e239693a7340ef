"""The four-role LLM generator against the scripted OpenAI-compatible HTTP server: the synthesiser and the
evaluator are run in the sandbox and debugged from their real errors, tokens are accounted per task, the
determinism gate replays every reply from the response cache, and the kept task runs an episode."""

from __future__ import annotations

import pytest

from dojoflow.synth.pipeline import SynthOptions, synthesize

from scripted_llm_server import ScriptedLLMServer, fenced, last_user

pytestmark = pytest.mark.slow

PLAN = ('{"domain": "orchard irrigation", "entity": "an orchard row", "target": "yield_t", "classes": null, '
        '"features": [{"name": "water_mm", "kind": "numeric"}, {"name": "sun_h", "kind": "numeric"}, '
        '{"name": "soil", "kind": "categorical"}], "hidden_rule": "yield = 0.3 water + 1.5 sun + soil effect"}')

SYNTH_BROKEN = "import numpy as np\nprint(undefined_rows)\n"
SYNTH = '''import argparse
import numpy as np
import pandas as pd
parser = argparse.ArgumentParser()
parser.add_argument("--rows", type=int)
parser.add_argument("--seed", type=int)
args = parser.parse_args()
rng = np.random.default_rng(args.seed)
water = rng.normal(50, 10, args.rows)
sun = rng.uniform(4, 12, args.rows)
soil = rng.choice(["clay", "loam", "sand"], args.rows)
effect = pd.Series(soil).map({"clay": -3.0, "loam": 2.0, "sand": 0.0}).to_numpy()
y = 0.3 * water + 1.5 * sun + effect + rng.normal(0, 1.5, args.rows)
pd.DataFrame({"water_mm": water.round(3), "sun_h": sun.round(3), "soil": soil, "yield_t": y.round(4)}).to_csv(
    "data.csv", index=False)
'''
EVALUATOR = '''import argparse, json, sys
import numpy as np
import pandas as pd
parser = argparse.ArgumentParser()
parser.add_argument("--submission_path")
args = parser.parse_args()
answers = pd.read_csv("answer.csv")
sub = pd.read_csv(args.submission_path)
if "yield_t" not in sub.columns or set(sub["id"]) != set(answers["id"]):
    print("bad submission", file=sys.stderr)
    sys.exit(1)
merged = answers.merge(sub, on="id", suffixes=("", "_pred"))
err = merged["yield_t"] - merged["yield_t_pred"]
score = {score}
print(json.dumps({{"score": float(score), "is_lower_better": True, "gold_threshold": None,
                  "silver_threshold": None, "bronze_threshold": None, "median_threshold": None}}))
'''
DESCRIPTION = "# Orchard yields\n\n## Overview\n\nPredict yield_t.\n\n## Data\n\n...\n"


def responder(body):
    first = body["messages"][0]["content"]
    retry = last_user(body).startswith("The script failed")
    if first.startswith("# Role: data strategist"):
        return PLAN
    if first.startswith("# Role: ML developer"):
        return fenced(SYNTH if retry else SYNTH_BROKEN)
    if first.startswith("# Role: MLOps engineer"):  # first an MAE evaluator: the check against rmse catches it
        return fenced(EVALUATOR.format(score="np.sqrt(np.mean(err ** 2))" if retry else "np.mean(np.abs(err))"))
    return DESCRIPTION


def test_four_roles_debug_in_the_sandbox_and_the_task_is_kept(settings, tmp_path):
    from dojoflow.flows.episode import EpisodeConfig, drive_episode

    dest = tmp_path / "tasks"
    with ScriptedLLMServer(responder) as server:
        options = SynthOptions(kind="llm", n=1, n_test=300, dest=dest, baseline_models=1,
                               llm={"model": "gpt-4o-mini", "base_url": server.base_url,
                                    "cache_dir": str(tmp_path / "cache")})
        report = synthesize("cars-mpg", options, settings)
        candidate = report.candidates[0]
        assert candidate.kept, candidate.reasons
        # strategist 1, developer 2 (debugged), MLOps 2 (debugged), writer 1; regeneration came from the cache
        assert server.count == 6
        developer = [r for r in server.requests if r["messages"][0]["content"].startswith("# Role: ML developer")]
        assert "NameError" in developer[1]["messages"][-1]["content"]
        mlops = [r for r in server.requests if r["messages"][0]["content"].startswith("# Role: MLOps engineer")]
        assert "rmse of that submission" in mlops[1]["messages"][-1]["content"]
        assert candidate.usage["llm_calls"] == 6 and candidate.usage["tokens"] > 0
        assert candidate.usage["cost_usd"] > 0
    folder = dest / candidate.task_id
    assert (folder / "sandmle_evaluator.py").read_text().count("np.sqrt") == 1
    assert (folder / "description.md").read_text().startswith("# Orchard yields")
    import os

    os.environ["DOJOFLOW_TASK_PATH"] = str(dest)
    try:
        result = drive_episode(EpisodeConfig(task_id=candidate.task_id, max_steps=3, track=False,
                                             agent_options={"models": 1}), settings=settings)
    finally:
        os.environ.pop("DOJOFLOW_TASK_PATH")
    assert result.valid, result.errors


def test_a_synthesiser_that_never_works_is_reported(settings, tmp_path):
    def broken(body):
        first = body["messages"][0]["content"]
        if first.startswith("# Role: data strategist"):
            return PLAN
        return fenced(SYNTH_BROKEN)

    with ScriptedLLMServer(broken) as server:
        options = SynthOptions(kind="llm", n=1, n_test=300, dest=tmp_path / "tasks",
                               llm={"model": "gpt-4o-mini", "base_url": server.base_url, "max_debug_rounds": 1,
                                    "cache_dir": str(tmp_path / "cache")})
        report = synthesize("cars-mpg", options, settings)
    assert report.kept == []
    assert "synthesiser still fails after 1 debug rounds" in report.candidates[0].reasons[0]
    assert report.candidates[0].usage["llm_calls"] == 3
