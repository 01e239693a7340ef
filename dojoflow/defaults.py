"""The defaults of an episode, in one place (the CLI, sweep specs, the environment and the API use these)."""

from __future__ import annotations

DEFAULT_AGENT = "baseline"
DEFAULT_MAX_STEPS = 6
DEFAULT_REWARD_MODE = "human_rank"
DEFAULT_SEED = 0
# Episodes run in the warm mode over the best isolated backend here (bwrap, else local): one sandboxed
# interpreter per episode that has imported pandas and scikit-learn once, a fresh fork of it per step.
DEFAULT_EPISODE_SANDBOX = "warm"
