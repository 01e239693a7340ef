"""AIDE-style agent (Jiang et al. 2025, "AIDE: AI-Driven Exploration in the Space of Code"): tree search over
whole solution scripts.

Every node is a script written by the model in one of three ways: a **draft** (a fresh solution), a **debug**
of a buggy node (its code and error shown), or an **improvement** of a working node (one atomic change).
Each node is run with ``execute_code``; it is buggy when the run fails or the submission is invalid, and its
metric is the environment's feedback score (direction from the task's ``higher_is_better``, never the model's
reading of the logs). The search policy is AIDE's:

1. while fewer than ``num_drafts`` drafts exist: draft;
2. with probability ``debug_prob``: debug a random buggy leaf whose debug depth is below ``max_debug_depth``;
3. if there is no working node: draft; otherwise improve the best working node (greedy).

Prompts carry a memory: a summary (plan and score) of earlier working nodes. Code is taken from the reply's
```python block; a reply without code is asked again once and otherwise recorded as a buggy node without
spending an environment step (``max_no_code`` such replies in a row end the episode). The tree is written to
``artifacts_dir`` (``aide_tree.json`` + a self-contained ``aide_tree.html``) after every node when that option
is set. At the end (one step left, the token budget nearly spent, or ``max_nodes`` reached) the best node's
step is submitted.
"""

from __future__ import annotations

import html
import json
import random
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from dojoflow.agents.llm_base import LLMAgent, Plan, extract_code, task_brief
from dojoflow.dojo.actions import Action
from dojoflow.errors import LLMError

SYSTEM = ("You are a Kaggle grandmaster and expert machine-learning engineer. You write complete, "
          "self-contained Python scripts that train a model and write predictions.")

GUIDELINES = """Response format: a brief plan in natural language (3-5 sentences), then ONE complete Python script
in a single ```python block. The script reads data/train.csv and data/test.csv, prints a validation metric
computed on held-out training data, and writes submission.csv in the working directory. No network access;
scikit-learn, pandas and numpy are available. Keep runtime modest."""


@dataclass
class Node:
    """A node of AIDE's solution tree: a script, its parent, the stage that made it and its score."""

    id: int
    stage: str  # draft | debug | improve
    parent: int | None
    plan: str
    code: str | None
    step: int | None = None
    score: float | None = None
    buggy: bool = True
    error: str = ""
    output: str = ""
    debug_depth: int = 0
    children: list[int] = field(default_factory=list)


class AIDEAgent(LLMAgent):
    """Draft / debug / improve tree search with AIDE's greedy policy."""

    name = "aide"
    default_max_tokens = 4096

    def __init__(self, *args: Any, num_drafts: int = 5, debug_prob: float = 0.5, max_debug_depth: int = 3,
                 max_nodes: int | None = None, max_no_code: int = 3, memory_nodes: int = 10, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.num_drafts, self.debug_prob, self.max_debug_depth = num_drafts, debug_prob, max_debug_depth
        self.max_nodes, self.max_no_code, self.memory_nodes = max_nodes, max_no_code, memory_nodes

    # -- search ----------------------------------------------------------------------------------------------
    def run(self) -> Plan:
        """The search: drafts first, then debug or improve the node the policy picks, until the budget ends."""
        self.nodes: list[Node] = []
        self.pending: Node | None = None
        self.rng = random.Random(self.seed)
        no_code = 0
        while self.max_nodes is None or len(self.nodes) < self.max_nodes:
            stage, parent = self.search_policy()
            try:
                plan, code = self._generate(stage, parent)
            except LLMError as exc:  # the node is recorded, with why it has no code, before the episode ends
                self._add_node(stage, parent, "", None).error = f"LLM request failed: {exc}"
                self._save_tree()
                raise
            node = self._add_node(stage, parent, plan, code)
            if code is None:
                no_code += 1
                node.error = f"the reply contained no ```python code block{self.reply_problem()}"
                self._save_tree()
                if no_code >= self.max_no_code:
                    self.end_reason = f"the model produced no code in {no_code} consecutive replies"
                    return
                continue
            no_code = 0
            self.note = f"AIDE {stage} node {node.id}" + (f" (from node {parent.id})" if parent else "")
            self.pending = node
            yield Action("execute_code", code=code)  # the result is recorded by on_observation
        self.end_reason = f"max_nodes={self.max_nodes} reached"

    def _add_node(self, stage: str, parent: Node | None, plan: str, code: str | None) -> Node:
        node = Node(id=len(self.nodes), stage=stage, parent=parent.id if parent else None, plan=plan, code=code,
                    debug_depth=(parent.debug_depth + 1) if stage == "debug" and parent else 0)
        self.nodes.append(node)
        if parent:
            parent.children.append(node.id)
        return node

    def on_observation(self, observation) -> None:
        """Attach the step's outcome (score, or the error to debug) to the node that produced it."""
        node, self.pending = getattr(self, "pending", None), None
        if node is None or observation.kind != "execute_code":
            return
        data = observation.data
        node.step = data.get("step")
        node.output = observation.text[-1500:]
        node.buggy = not (data.get("valid") and data.get("feedback_score") is not None)
        node.score = None if node.buggy else float(data["feedback_score"])
        node.error = (data.get("error") or {}).get("message", "") if node.buggy else ""
        self._save_tree()

    def search_policy(self) -> tuple[str, Node | None]:
        """AIDE's policy: draft until there are enough drafts; then, with probability ``debug_prob``, debug a
        buggy leaf; else improve the best node."""
        drafts = [n for n in self.nodes if n.stage == "draft"]
        if len(drafts) < self.num_drafts:
            return "draft", None
        if self.rng.random() < self.debug_prob:
            debuggable = [n for n in self.nodes if n.buggy and n.code and not n.children
                          and n.debug_depth < self.max_debug_depth]
            if debuggable:
                return "debug", self.rng.choice(debuggable)
        good = [n for n in self.nodes if not n.buggy]
        if not good:
            return "draft", None
        best = good[0]
        for n in good[1:]:
            if self.better(n.score, best.score):
                best = n
        return "improve", best

    @property
    def best_node(self) -> Node | None:
        """The scored node with the best score in the task's direction, or None."""
        good = [n for n in getattr(self, "nodes", []) if not n.buggy]
        best = None
        for n in good:
            if best is None or self.better(n.score, best.score):
                best = n
        return best

    # -- prompts ---------------------------------------------------------------------------------------------
    def _memory(self) -> str:
        good = [n for n in self.nodes if not n.buggy][-self.memory_nodes:]
        if not good:
            return ""
        lines = [f"- node {n.id} ({n.stage}): {n.plan[:300]} -> {self.info.get('metric')} = {n.score:.6g}"
                 for n in good]
        return "\n# Memory: earlier working solutions and their validation scores\n" + "\n".join(lines)

    def _prompt(self, stage: str, parent: Node | None) -> str:
        intro = {"draft": "# Stage: draft\nPropose a new solution (different from the earlier ones in memory) "
                          "for the task below.",
                 "debug": "# Stage: debug\nThe previous script failed or wrote an invalid submission. Fix it.",
                 "improve": "# Stage: improve\nImprove the solution below with ONE atomic, well-motivated change "
                            "(features, model, hyper-parameters) that should improve the metric."}[stage]
        parts = [intro, "# Task\n" + task_brief(self.info), self.budget_text()]
        if parent is not None:
            parts.append(f"# Previous solution (node {parent.id})\n```python\n{parent.code}\n```")
            if stage == "debug":
                parts.append(f"# Error\n{parent.error}\n# Output (tail)\n{parent.output}")
            else:
                parts.append(f"Its validation {self.info.get('metric')} on the public feedback = {parent.score:.6g}")
        if stage != "debug":
            parts.append(self._memory())
        parts.append(GUIDELINES)
        return "\n\n".join(p for p in parts if p)

    def _generate(self, stage: str, parent: Node | None) -> tuple[str, str | None]:
        messages = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": self._prompt(stage, parent)}]
        reply = self.ask(messages)
        code = extract_code(reply)
        if code is None:  # AIDE asks again when the reply has no code
            messages += [{"role": "assistant", "content": reply},
                         {"role": "user", "content": self.no_code_feedback(reply)}]
            reply = self.ask(messages)
            code = extract_code(reply)
        plan = reply.split("```")[0].strip()[:1000]
        return plan, code

    # -- artifacts -------------------------------------------------------------------------------------------
    def tree(self) -> dict[str, Any]:
        """The tree as JSON-ready data (saved as ``aide_tree.json``)."""
        best = self.best_node
        return {"agent": self.name, "model": self.client.model, "task": self.info.get("task_id"),
                "metric": self.info.get("metric"), "higher_is_better": self.higher_is_better,
                "params": {"num_drafts": self.num_drafts, "debug_prob": self.debug_prob,
                           "max_debug_depth": self.max_debug_depth},
                "best_node": best.id if best else None, "nodes": [asdict(n) for n in getattr(self, "nodes", [])]}

    def _save_tree(self) -> None:
        if not self.artifacts_dir:
            return
        out = Path(self.artifacts_dir)
        out.mkdir(parents=True, exist_ok=True)
        tree = self.tree()
        (out / "aide_tree.json").write_text(json.dumps(tree, indent=2))
        (out / "aide_tree.html").write_text(render_tree_html(tree))


def render_tree_html(tree: dict[str, Any]) -> str:
    """A self-contained HTML page (no scripts or external assets) showing the tree with code folded."""
    nodes = {n["id"]: n for n in tree["nodes"]}

    def render(node: dict[str, Any]) -> str:
        status = "buggy" if node["buggy"] else f"{tree['metric']} = {node['score']:.6g}"
        best = " best" if node["id"] == tree["best_node"] else ""
        children = "".join(render(nodes[c]) for c in node["children"] if c in nodes)
        return (f'<li class="{node["stage"]}{" bug" if node["buggy"] else ""}{best}"><b>node {node["id"]}</b> '
                f'[{node["stage"]}, step {node["step"]}] {html.escape(status)}<details><summary>'
                f'{html.escape(node["plan"][:200])}</summary><pre>{html.escape(node["code"] or "(no code)")}</pre>'
                f'<pre>{html.escape(node["error"] or "")}</pre></details>'
                + (f"<ul>{children}</ul>" if children else "") + "</li>")

    roots = "".join(render(n) for n in tree["nodes"] if n["parent"] is None)
    style = ("body{font-family:sans-serif} li{margin:4px 0} .bug>b{color:#b00} .best>b{color:#070} "
             "pre{background:#f4f4f4;padding:6px;max-height:300px;overflow:auto}")
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>AIDE tree</title><style>{style}</style>"
            f"</head><body><h1>AIDE tree: {html.escape(str(tree['task']))}</h1><p>model "
            f"{html.escape(str(tree['model']))}, metric {html.escape(str(tree['metric']))} "
            f"({'higher' if tree['higher_is_better'] else 'lower'} is better), best node {tree['best_node']}</p>"
            f"<ul>{roots}</ul></body></html>")
