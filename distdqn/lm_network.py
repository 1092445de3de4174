"""A pretrained causal language model as the Q-network (`network.trunk: hf`), with the same interface as `QNetwork`.

The trunk is a Hugging Face causal LM loaded from a local directory (`network.pretrained`; nothing downloads):
`h = base_model(tokens)` is its last hidden state and `lm_head(h)` its next-token logits. The Q-head is

    Q(s, a) = v(h) + scale * log_softmax(lm_head(h))[a] + A(h)[a] - mean_a' A(h)[a']
    v(h) = w . h + b                     zero-initialised
    A(h) = U (D h)                       rank `network.advantage_rank`, U zero-initialised
    scale = exp(log_scale)               initialised to `network.lm_scale`, learned

At initialisation v and A are 0, so argmax_a Q(s, a) = argmax_a logits(s, a): the first greedy policy *is* the LM's
(tested exactly). The scaled log-probability keeps Q-values in the range of text rewards (a log-probability of -3 is
-0.3 with the default scale) while the ordering stays the LM's; the low-rank A adds a learned correction without a
second vocabulary-sized matrix (D is H x r and U r x V: 1.6M parameters for GPT-2 small against 38M for a full head),
so actors pulling weights of a frozen or adapted trunk receive a few MB.

What of the LM trains (`network.finetune`): `full` (everything), `frozen` (only the Q-head terms), `top_blocks` (the
last `network.train_blocks` blocks and the modules after them, e.g. the final norm), `lora` (peft LoRA adapters on
the architecture's default target modules, rank `network.lora_rank`). LoRA comes from `peft` rather than our own
adapters: it knows the attention/MLP module names of every architecture `transformers` supports, initialises B to
zero (the adapted model starts equal to the base one), and is the format users already merge and share.
Dropout is switched off: a Q-target computed with dropout noise is a biased max.

Actors decode incrementally with the model's KV cache, batched over their B slots (`advance`): each call feeds every
slot's new tokens as one [B, T] chunk (T = the largest growth; shorter slots are padded at the end and masked), with
explicit position ids, into the cache. A reset slot masks its old columns out. Masked columns stay in the cache, so
when it is wider than twice the row length it is rebuilt from the current prefixes (one full forward, amortised over
~max_len steps). Each step costs O(B * cache width) attention instead of the O(B * L^2) full recompute.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import torch
from torch import nn

from distdqn.config import NetworkConfig

PAD_ID = 0


def load_pretrained(directory: str) -> nn.Module:
    """The causal LM of a local Hugging Face directory, float32, dropout off (no network access)."""
    from transformers import AutoModelForCausalLM
    from transformers.utils import logging

    logging.disable_progress_bar()  # one per actor and learner otherwise, on every start
    model = AutoModelForCausalLM.from_pretrained(directory, local_files_only=True, dtype=torch.float32)
    for module in model.modules():
        if isinstance(module, nn.Dropout):
            module.p = 0.0
    return model.eval()


def _blocks(base: nn.Module) -> nn.ModuleList:
    """The transformer blocks of a base model: its longest ModuleList (GPT-2's `h`, Llama's `layers`)."""
    lists = [m for m in base.modules() if isinstance(m, nn.ModuleList)]
    if not lists:
        raise ValueError(f"cannot find the transformer blocks of {type(base).__name__}")
    return max(lists, key=len)


def _set_trainable(model: nn.Module, config: NetworkConfig) -> None:
    """Freeze what `network.finetune` keeps fixed (module docstring); LoRA adapters are injected here."""
    if config.finetune == "full":
        return
    model.requires_grad_(False)
    if config.finetune == "lora":
        from peft import LoraConfig, get_peft_model

        # get_peft_model injects the adapters into `model` in place (and leaves only them trainable); we keep the
        # plain model object, so the forward path and the parameter names stay the model's own.
        from transformers.pytorch_utils import Conv1D

        # GPT-2-style models store their projections transposed (Conv1D): the adapters must know (peft would warn)
        transposed = any(isinstance(m, Conv1D) for m in model.modules())
        lora = LoraConfig(r=config.lora_rank, lora_alpha=config.lora_alpha, lora_dropout=0.0, fan_in_fan_out=transposed)
        get_peft_model(model, lora)
    elif config.finetune == "top_blocks":
        base = model.base_model
        blocks = _blocks(base)
        if config.train_blocks > len(blocks):
            raise ValueError(f"network.train_blocks ({config.train_blocks}) exceeds the model's {len(blocks)} blocks")
        for block in list(blocks)[-config.train_blocks :]:
            block.requires_grad_(True)
        in_blocks = {id(p) for p in blocks.parameters()}
        for module in base.children():  # modules outside the blocks and the embeddings: the final norm
            if module is not blocks and not isinstance(module, nn.Embedding):
                for p in module.parameters():
                    if id(p) not in in_blocks:
                        p.requires_grad_(True)


@dataclasses.dataclass
class LMActorState:
    """Incremental state of B slots: `consumed[b]` tokens of slot b are in the KV `cache`, whose columns are valid
    where `mask` [B, W] is 1; `lm_logp` [B, V] are the LM's log-probabilities at each slot's last token (for
    exploration), `None` before the first advance."""

    consumed: np.ndarray
    cache: object | None = None
    mask: torch.Tensor | None = None
    lm_logp: torch.Tensor | None = None


class LMQNetwork(nn.Module):
    """Q-network on a pretrained causal LM (see the module docstring); the interface of `networks.QNetwork`."""

    recurrent = False

    def __init__(self, model: nn.Module, vocab_size: int, max_len: int, config: NetworkConfig):
        super().__init__()
        width = model.get_output_embeddings().out_features
        if vocab_size > width:
            raise ValueError(f"the task's vocabulary ({vocab_size}) is larger than the LM's output ({width} tokens)")
        limit = getattr(model.config, "max_position_embeddings", None) or getattr(model.config, "n_positions", None)
        if limit is not None and max_len > limit:
            raise ValueError(f"the task's rows ({max_len} tokens) exceed the LM's {limit} positions")
        self.lm = model
        self.vocab_size, self.max_len = vocab_size, max_len
        _set_trainable(model, config)
        hidden = model.get_output_embeddings().in_features
        self.value = nn.Linear(hidden, 1)
        self.adv_down = nn.Linear(hidden, config.advantage_rank, bias=False)
        self.adv_up = nn.Linear(config.advantage_rank, vocab_size)
        for layer in (self.value, self.adv_up):
            nn.init.zeros_(layer.weight)
            nn.init.zeros_(layer.bias)
        self.log_scale = nn.Parameter(torch.tensor(math.log(config.lm_scale)))

    # ---- the head -------------------------------------------------------------------------------------------
    def _logp(self, feats: torch.Tensor) -> torch.Tensor:
        logits = self.lm.get_output_embeddings()(feats)[..., : self.vocab_size]
        return torch.log_softmax(logits.float(), dim=-1)

    def _q(self, feats: torch.Tensor, logp: torch.Tensor) -> torch.Tensor:
        adv = self.adv_up(self.adv_down(feats))
        return self.value(feats) + self.log_scale.exp() * logp + adv - adv.mean(dim=-1, keepdim=True)

    def features(self, tokens: torch.Tensor) -> torch.Tensor:
        """tokens [B, L] -> the LM's last hidden states [B, L, H] (causal: the padding after a row is harmless)."""
        return self.lm.base_model(input_ids=tokens, use_cache=False).last_hidden_state

    # ---- learner side ---------------------------------------------------------------------------------------
    def q_all(self, tokens: torch.Tensor, length: torch.Tensor | None = None) -> torch.Tensor:
        feats = self.features(tokens)
        return self._q(feats, self._logp(feats))

    def features_at(self, tokens: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        """The LM's hidden states at `positions` [B, K]: [B, K, H] (the whole row runs, then the gather)."""
        feats = self.features(tokens)
        return feats.gather(1, positions.unsqueeze(-1).expand(-1, -1, feats.shape[-1]))

    def q_at(self, tokens: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        """Q at chosen positions: tokens [B, L], positions [B, K] -> [B, K, V]; one trunk pass."""
        return self.q_from_features(self.features_at(tokens, positions), tokens, positions)

    def q_from_features(self, feats: torch.Tensor, tokens: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        """Q [B, K, V] from the features [B, K, H] at `positions` (the learner's fast path; the head needs only the
        features: `tokens` and `positions` are there for `networks.QNetwork`'s copy head)."""
        return self._q(feats, self._logp(feats))

    def q_taken(
        self, feats: torch.Tensor, tokens: torch.Tensor, positions: torch.Tensor, actions: torch.Tensor
    ) -> torch.Tensor:
        """Q(s, a) [B] from the features [B, H]: the LM's log-softmax normalises over the whole vocabulary, so the
        full head runs and one entry per row is read (no saving here, unlike the small networks)."""
        q = self.q_from_features(feats.unsqueeze(1), tokens, positions[:, None])[:, 0]
        return q.gather(1, actions[:, None])[:, 0]

    def published_names(self) -> list[str]:
        """State-dict entries that training changes: what the learner publishes and actors load."""
        return [name for name, p in self.named_parameters() if p.requires_grad]

    # ---- actor side: the KV cache ---------------------------------------------------------------------------
    def initial_state(self, batch: int) -> LMActorState:
        return LMActorState(consumed=np.zeros(batch, dtype=np.int64))

    def advance(
        self, state: LMActorState, tokens: np.ndarray, length: np.ndarray, reset: np.ndarray | None = None
    ) -> tuple[LMActorState, torch.Tensor]:
        """Bring every slot from `state.consumed` tokens to `length`; Q at position length-1: [B, V] (as
        `QNetwork.advance`, with the KV cache of the module docstring). CPU or the model's device."""
        length = np.asarray(length, dtype=np.int64)
        consumed = state.consumed
        if reset is not None and reset.any():
            consumed[reset] = 0
            if state.mask is not None:
                state.mask[torch.from_numpy(np.flatnonzero(reset))] = 0
        delta = length - consumed
        if (delta < 1).any():
            bad = np.flatnonzero(delta < 1)[:5].tolist()
            raise ValueError(f"slots {bad} did not grow since the last advance and were not marked reset")
        width = 0 if state.mask is None else state.mask.shape[1]
        if state.cache is None or width + int(delta.max()) > 2 * self.max_len:
            feats = self._rebuild(state, tokens, length)
        else:
            feats = self._extend(state, tokens, consumed, length)
        consumed[:] = length
        state.lm_logp = self._logp(feats)
        return state, self._q(feats, state.lm_logp)

    def _device(self) -> torch.device:
        return self.log_scale.device

    def _rebuild(self, state: LMActorState, tokens: np.ndarray, length: np.ndarray) -> torch.Tensor:
        """A fresh cache from the current prefixes (right-padded rows); features at length-1 [B, H]."""
        width = int(length.max())
        ids = torch.from_numpy(np.ascontiguousarray(tokens[:, :width]).astype(np.int64)).to(self._device())
        lengths = torch.from_numpy(length).to(self._device())
        mask = (torch.arange(width, device=ids.device)[None, :] < lengths[:, None]).long()
        positions = torch.arange(width, device=ids.device).expand_as(ids)
        out = self.lm.base_model(input_ids=ids, attention_mask=mask, position_ids=positions, use_cache=True)
        state.cache, state.mask = out.cache, mask
        return out.last_hidden_state[torch.arange(len(length)), lengths - 1]

    def _extend(self, state: LMActorState, tokens: np.ndarray, start: np.ndarray, end: np.ndarray) -> torch.Tensor:
        """Feed tokens[b, start[b]:end[b]] of every slot as one chunk [B, T] into the cache; features [B, H]."""
        delta = end - start
        t = int(delta.max())
        offsets = np.arange(t)
        cols = np.minimum(start[:, None] + offsets, tokens.shape[1] - 1)
        chunk = np.take_along_axis(tokens, cols, axis=1).astype(np.int64)
        dev = self._device()
        new_mask = torch.from_numpy(offsets[None, :] < delta[:, None]).long().to(dev)
        # padded columns get positions past the slot's end (clipped): masked for every later query, never read
        positions = torch.from_numpy(np.minimum(start[:, None] + offsets, self.max_len - 1)).to(dev)
        mask = torch.cat([state.mask, new_mask], dim=1)
        out = self.lm.base_model(
            input_ids=torch.from_numpy(chunk).to(dev),
            attention_mask=mask,
            position_ids=positions,
            cache=state.cache,
            use_cache=True,
        )
        state.cache, state.mask = out.cache, mask
        return out.last_hidden_state[torch.arange(len(end)), torch.from_numpy(delta - 1)]

    def peek(self, state: LMActorState, rows: np.ndarray, tokens: np.ndarray, length: np.ndarray) -> torch.Tensor:
        """Q at position length-1 of `tokens` [k, L] (full recompute of these rows; the cache is left alone)."""
        width = int(np.max(length))
        ids = torch.from_numpy(np.ascontiguousarray(tokens[:, :width]).astype(np.int64)).to(self._device())
        pos = torch.from_numpy(np.asarray(length, dtype=np.int64) - 1).to(self._device()).unsqueeze(1)
        return self.q_at(ids, pos)[:, 0]


def build_lm_network(config: NetworkConfig, vocab_size: int, max_len: int) -> LMQNetwork:
    """The `network.trunk: hf` Q-network for a task of `vocab_size` tokens and rows of `max_len`."""
    return LMQNetwork(load_pretrained(config.pretrained), vocab_size, max_len, config)
