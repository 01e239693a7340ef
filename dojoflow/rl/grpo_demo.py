"""A tiny GRPO loop (TRL's ``GRPOTrainer``) whose rewards come from real dojoflow episodes.

The policy is a causal LM created here with random weights, with a word-level tokenizer trained here
(nothing is downloaded; ``HF_HUB_OFFLINE=1`` holds). Its vocabulary has filler words and a few *action
tokens*, each the full text of a JSON action (run one of three scikit-learn solutions, or submit), so that
even a random policy sometimes emits a runnable action. Each completion is parsed like any policy's text
(:mod:`dojoflow.rl.text_actions`), run as a real episode in a warm sandbox, submitted, and rewarded with
the final reward; GRPO normalises the rewards within each group and updates the policy.

    HF_HUB_OFFLINE=1 python -m dojoflow.rl.grpo_demo --steps 3 --out /tmp/grpo        # CPU
    HF_HUB_OFFLINE=1 python -m dojoflow.rl.grpo_demo --steps 20 --device cuda --out /tmp/grpo

It prints (and writes to ``OUT/summary.json``) the rewards and losses per step and how much the
parameters moved.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

from dojoflow.rl.config import RolloutConfig, TaskRef
from dojoflow.rl.policy import solution_code
from dojoflow.rl.session import EpisodeSession
from dojoflow.rl.slot import RolloutSlot

FILLER = ("the", "model", "data", "fit", "predict", "plan")
SPECIALS = ("<pad>", "<unk>", "<s>", "</s>")
CHAT_TOKENS = ("<|im_start|>", "<|im_end|>", "<tool_call>", "</tool_call>", "<think>", "</think>")
PROMPT = "fit the model to the data and predict"


def action_tokens() -> list[str]:
    """The action tokens: a JSON ``execute_code`` action for each solution variant, and ``submit``."""
    code = [json.dumps({"type": "execute_code", "code": solution_code(v, 0)}) for v in range(3)]
    return [*code, json.dumps({"type": "submit"})]


def build_policy(out: Path, *, tool_template: bool = False, seed: int = 0) -> tuple[Any, Any]:
    """A random-weight Llama-style LM and a locally trained word-level tokenizer, saved under ``out``.

    ``tool_template``: give the tokenizer the Qwen2.5 chat template TRL ships (it renders tool calls), as
    TRL's ``environment_factory`` requires."""
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    torch.manual_seed(seed)
    raw = Tokenizer(models.WordLevel(unk_token="<unk>"))
    raw.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    corpus = [PROMPT, " ".join(FILLER)] * 4
    raw.train_from_iterator(corpus, trainers.WordLevelTrainer(special_tokens=list(SPECIALS)))
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=raw, pad_token="<pad>", unk_token="<unk>",
                                        bos_token="<s>", eos_token="</s>")
    tokenizer.add_tokens(action_tokens())  # whole actions as single (non-special) tokens
    if tool_template:
        tokenizer.add_tokens(list(CHAT_TOKENS))
        from trl.chat_template_utils import qwen2_5_chat_template

        tokenizer.chat_template = qwen2_5_chat_template
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=4096,
                         pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.bos_token_id,
                         eos_token_id=tokenizer.eos_token_id)
    model = LlamaForCausalLM(config)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return model, tokenizer


class EpisodeReward:
    """A TRL reward function: each completion runs as a real episode (one action, then submit).

    One warm sandbox (a :class:`~dojoflow.rl.slot.RolloutSlot`) serves all of them, one after the other."""

    __name__ = "dojoflow_episode_reward"

    def __init__(self, config: RolloutConfig) -> None:
        self.config = config
        self.slot: RolloutSlot | None = None
        self.episodes = 0

    def __call__(self, completions: list[Any], task: list[str], seed: list[int], **_: Any) -> list[float | None]:
        """Final rewards (None for a masked episode: TRL leaves it out of the sums)."""
        if self.slot is None:
            self.slot = RolloutSlot(self.config.sandbox)
        rewards: list[float | None] = []
        for text, ref, s in zip(completions, task, seed):
            text = text if isinstance(text, str) else text[-1]["content"]
            session = EpisodeSession(ref, self.config, seed=int(s), slot=self.slot)
            session.start()
            if not session.act(text)[2]:
                session.act({"type": "submit"})
            self.episodes += 1
            rewards.append(None if session.masked else session.final_reward)
        return rewards

    def close(self) -> None:
        """Stop the warm sandbox."""
        if self.slot is not None:
            self.slot.close()


def run(out: Path, *, tasks: list[TaskRef], steps: int = 3, group_size: int = 4, device: str = "cpu",
        learning_rate: float = 5e-2, seed: int = 0) -> dict[str, Any]:
    """Train for ``steps`` GRPO steps; returns the per-step rewards and losses and the parameter change."""
    import torch
    from datasets import Dataset
    from trl import GRPOConfig, GRPOTrainer

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    model, tokenizer = build_policy(out / "policy", seed=seed)
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    rows = [{"prompt": PROMPT, "task": str(tasks[i % len(tasks)]), "seed": seed + i} for i in range(steps * 2)]
    reward = EpisodeReward(RolloutConfig(max_steps=2, max_turns=1))
    args = GRPOConfig(output_dir=str(out / "trainer"), per_device_train_batch_size=group_size,
                      num_generations=group_size, max_completion_length=4, max_steps=steps, learning_rate=learning_rate,
                      beta=0.0, temperature=1.0, logging_steps=1, report_to=[], save_strategy="no",
                      use_cpu=device == "cpu", seed=seed, bf16=False, dataloader_num_workers=0)
    trainer = GRPOTrainer(model=model, processing_class=tokenizer, args=args, reward_funcs=[reward],
                          train_dataset=Dataset.from_list(rows))
    try:
        trainer.train()
    finally:
        reward.close()
    logs = [entry for entry in trainer.state.log_history if "loss" in entry]
    trained: Any = trainer.model
    moved = sum(float((p.detach().cpu() - before[n].cpu()).abs().sum()) for n, p in trained.named_parameters())
    summary = {"steps": len(logs), "episodes": reward.episodes, "device": device,
               "rewards": [entry.get("reward") for entry in logs],
               "reward_std": [entry.get("reward_std") for entry in logs],
               "losses": [entry.get("loss") for entry in logs], "parameter_l1_change": moved,
               "parameters": sum(int(p.numel()) for p in trained.parameters()), "torch": torch.__version__}
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    return summary


def main(argv: list[str] | None = None) -> None:
    """Command line: see the module docstring."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--tasks", nargs="+", default=["penguins-body-mass"], help="task ids or task folders")
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--group-size", type=int, default=4)
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--lr", type=float, default=5e-2)
    ns = parser.parse_args(argv)
    summary = run(ns.out, tasks=ns.tasks, steps=ns.steps, group_size=ns.group_size, device=ns.device,
                  learning_rate=ns.lr)
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
