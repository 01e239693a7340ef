"""LLM access for agents: an OpenAI-compatible chat client with accounting, budgets and a response cache."""

from dojoflow.errors import BudgetExceeded, LLMError
from dojoflow.llm.client import ChatResponse, LLMClient, Usage
from dojoflow.llm.prices import Price, load_prices, price_for
from dojoflow.llm.tokens import approx_tokens

__all__ = ["BudgetExceeded", "ChatResponse", "LLMClient", "LLMError", "Usage", "Price", "load_prices",
           "price_for", "approx_tokens"]
