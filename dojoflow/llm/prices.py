"""USD prices per million tokens, per model; extend or override with a YAML/JSON file in
``DOJOFLOW_LLM_PRICES`` mapping model names to ``{input_per_mtok: .., output_per_mtok: ..}``.

Models are matched exactly first, then by the longest known prefix (``gpt-4o-2024-08-06`` -> ``gpt-4o``).
An unknown model costs 0 and its calls are marked ``price_known: false``. The built-in figures are list
prices at the time of writing: check your provider's page before relying on them.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

PRICES_ENV = "DOJOFLOW_LLM_PRICES"

BUILTIN_PRICES: dict[str, tuple[float, float]] = {  # model: (input, output) USD per 1M tokens
    "gpt-4o": (2.50, 10.00),
    "gpt-4o-mini": (0.15, 0.60),
    "gpt-4.1": (2.00, 8.00),
    "gpt-4.1-mini": (0.40, 1.60),
    "gpt-4.1-nano": (0.10, 0.40),
    "o3-mini": (1.10, 4.40),
    "o4-mini": (1.10, 4.40),
    "o3": (2.00, 8.00),
    "deepseek-chat": (0.27, 1.10),
    "deepseek-reasoner": (0.55, 2.19),
}


@dataclass(frozen=True)
class Price:
    """USD per million prompt and completion tokens of one model."""

    input_per_mtok: float
    output_per_mtok: float
    known: bool = True

    def cost(self, prompt_tokens: int, completion_tokens: int) -> float:
        """The cost in USD of one call."""
        return (prompt_tokens * self.input_per_mtok + completion_tokens * self.output_per_mtok) / 1e6


def load_prices(path: str | Path | None = None) -> dict[str, Price]:
    """The built-in table updated with the user's file (``path`` or ``$DOJOFLOW_LLM_PRICES``)."""
    table = {name: Price(i, o) for name, (i, o) in BUILTIN_PRICES.items()}
    path = path or os.environ.get(PRICES_ENV)
    if path:
        text = Path(path).expanduser().read_text()
        if str(path).endswith(".json"):
            raw = json.loads(text)
        else:
            import yaml

            raw = yaml.safe_load(text) or {}
        for name, entry in raw.items():
            if isinstance(entry, (list, tuple)):
                table[name] = Price(float(entry[0]), float(entry[1]))
            else:
                table[name] = Price(float(entry["input_per_mtok"]), float(entry["output_per_mtok"]))
    return table


def price_for(model: str, table: dict[str, Price]) -> Price:
    """The price of ``model``: an exact entry, else the longest entry its name (without a router prefix)
    starts with, else an unknown (zero) price."""
    if model in table:
        return table[model]
    base = model.split("/")[-1]  # "openai/gpt-4o" (routers) -> "gpt-4o"
    matches = [name for name in table if base.startswith(name)]
    if matches:
        return table[max(matches, key=len)]
    return Price(0.0, 0.0, known=False)
