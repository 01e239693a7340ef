"""A real GRPO loop (TRL) on the CPU: a random-weight LM with a locally trained tokenizer, real episodes as
rewards. Slow (~1-2 min on 2 loaded cores); skipped without the rl extra."""

from __future__ import annotations

import math
import os

import pytest


@pytest.mark.slow
def test_tiny_grpo_loop_produces_rewards_losses_and_moves_the_parameters(tmp_path, monkeypatch):
    pytest.importorskip("trl", reason="the rl extra is not installed: pip install -e .[rl]")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    from dojoflow.rl.grpo_demo import run

    summary = run(tmp_path, tasks=["penguins-body-mass"], steps=4, group_size=4)
    assert summary["steps"] == 4 and summary["episodes"] == 16  # every completion ran as a real episode
    assert all(r is not None and 0.0 <= r <= 1.0 for r in summary["rewards"])
    assert all(loss is not None and math.isfinite(loss) for loss in summary["losses"])
    assert any(std > 0 for std in summary["reward_std"])  # some group had a spread: nonzero advantages
    assert summary["parameter_l1_change"] > 0
    assert os.path.exists(tmp_path / "summary.json") and (tmp_path / "policy" / "tokenizer.json").exists()
