"""On-policy RL on dojoflow episodes: the rollout record RL trainers consume, and adapters to their contracts.

- :mod:`dojoflow.rl.config`: what a rollout runs (tasks by id or folder, budgets, reward mode, feedback)
- :mod:`dojoflow.rl.session`: one episode driven by tool calls or text, with per-step and final rewards
- :mod:`dojoflow.rl.rollout`: one rollout and GRPO groups of G rollouts across processes
- :mod:`dojoflow.rl.trl_env`, :mod:`dojoflow.rl.verifiers_env`, :mod:`dojoflow.rl.skyrl_env`: the trainers'
  environment contracts (TRL ``environment_factory``, verifiers ``load_environment``, SkyRL-gym ``BaseTextEnv``)
- :mod:`dojoflow.rl.ray_rollouts`: rollout workers as Ray actors holding warm sandboxes
- :mod:`dojoflow.rl.grpo_demo`: a tiny GRPO loop (TRL) whose rewards come from real episodes

The trainer libraries are an optional extra (``pip install -e .[rl]``); only the adapters import them.
See docs/rl.md.
"""
