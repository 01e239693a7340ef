"""Synthetic micro-scale tasks (after SandMLE): ordinary dojoflow task folders generated from seed tasks.

- ``dna.py``: a seed task's de-semanticised "task DNA" (task type, inputs, metric, feature structure);
- ``procedural.py``: the offline generator - a recipe (hidden rule family, re-skinned domain, sizes) per
  variant, materialised deterministically into data at preparation time;
- ``micro.py``: micro variants of real tasks (training rows subsampled, test set kept);
- ``folders.py``: writes the task folders (task.yaml, description.md, prepare.py, provenance) and their
  reference leaderboards;
- ``gates.py``: the verification gates every generated task must pass; ``report.py``: the generation report;
- ``pipeline.py``: generate, verify, keep or discard (what ``dojoflow synth`` and ``dojoflow.api`` call);
- ``llm_generator.py``: the four-role LLM generator (strategist, developer, MLOps, writer);
- ``sandmle.py``: SandMLE-format import and export, and the grader of imported SandMLE evaluators.

Generated tasks live in ``$DOJOFLOW_HOME/synthetic`` (searched by the registry) in the ``synthetic`` split.
"""
