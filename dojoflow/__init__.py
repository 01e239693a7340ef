"""dojoflow: a workflow-orchestrated gym for machine-learning-engineering (MLE) agents.

An agent is given a Kaggle-style task, iterates (explore, write code, run it in a sandbox, get feedback)
and submits predictions that are graded against hidden answers and placed on a leaderboard. Every episode
is a Prefect flow; metrics and artifacts go to MLflow and an artifact store.

The public API is :mod:`dojoflow.api` (also importable from here: ``from dojoflow import run_episode``).

Package map (each subpackage says more in its own docstring):

- ``tasks_catalog`` - what tasks exist: specs, kinds, data preparation and caching, metrics, grading,
  leaderboards
- ``dojo``          - the interactive environment agents act in (observations, actions, rewards, records)
- ``agents``        - agent scaffolds: the non-LLM baseline, ReAct, AIDE, MLE-STAR
- ``llm``           - the OpenAI-compatible client the scaffolds use
- ``infra``         - where agent code runs: sandbox backends, GPU assignment
- ``storage``       - where results go: artifact store, MLflow tracking, trajectories, results table
- ``flows``         - the Prefect episode DAG, sweeps, and the plain (Prefect-free) driver
- ``reporting``     - aggregation across seeds, AUP, Elo
- ``cli``           - the ``dojoflow`` command; ``errors`` - every error dojoflow raises on purpose

Importing this package is cheap on purpose: heavy libraries (pandas, scikit-learn, Prefect, MLflow) are
imported only by the modules and commands that need them, so ``dojoflow --help`` starts fast.
"""

from typing import Any

__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    from importlib import import_module

    api = import_module("dojoflow.api")
    if name in api.__all__:
        return getattr(api, name)
    raise AttributeError(f"module 'dojoflow' has no attribute '{name}'")
