"""An agent that runs the given code steps in order, then submits: what the fault and integrity tests drive
episodes with, so that each test says exactly what the agent's code does."""

from __future__ import annotations

from dojoflow.dojo.actions import Action


class ScriptedAgent:
    """Runs ``codes`` as ``execute_code`` steps, one per step, then submits."""

    name = "scripted"

    def __init__(self, codes: list[str]) -> None:
        self.codes, self.last_step_info = list(codes), {}

    def reset(self, observation, seed) -> None:
        self.queue = list(self.codes)

    def act(self, observation) -> Action:
        return Action("execute_code", code=self.queue.pop(0)) if self.queue else Action("submit")
