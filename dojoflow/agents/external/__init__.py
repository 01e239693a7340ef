"""Bring your own agent: any agent program runs as a whole episode in the sandbox.

- ``spec``: :class:`CommandAgentSpec`, what a command agent is (a command line or a container image, its
  environment, extra read-only folders, its LLM gateway settings);
- ``layout``: the paths the program sees (MLE-bench's contract: ``/home/data``,
  ``/home/submission/submission.csv``, ``/home/code``, ``/home/logs``, ``/home/instructions.txt``,
  ``localhost:5000/validate``) and the instructions text;
- ``validation``: the local validation endpoint (format check only, never a score);
- ``runner``: one run of the program in an episode (gateway, validation endpoint, sandbox, budgets, why it
  ended), recorded as the episode's one step;
- ``integrity``: the integrity checks of a command episode.
"""

from dojoflow.agents.external.spec import CommandAgentSpec

__all__ = ["CommandAgentSpec"]
