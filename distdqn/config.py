"""Experiment configuration: typed sections with defaults, YAML files, dotted overrides and one validation pass.

The learning defaults are the settings tuned on the easy tasks on a 2-core laptop (small GRU, replay-heavy
learning from a small fresh replay, a short exploration warm-up); `configs/` holds per-task files on top of them.

Precedence: defaults in code < YAML file (`--config configs/x.yaml`) < dotted overrides (`learner.lr=1e-4`).
An override's text is parsed by the declared type of its key (`run.name=2024` is a name, `learner.lr=1e-4` a float,
`cluster.learner_num_gpus=1` the choice "1", `env.options={held_out: false}` YAML). Every int/float key declares its
allowed range in its type (`PositiveInt`, `Annotated[float, Range(gt=0, le=1)]`, see distdqn/typed.py). Unknown keys,
wrong types and out-of-range values fail at once, each naming the dotted key (and the nearest valid key or the
range); `validate` then reports every cross-field problem together, showing the arithmetic. Each role receives only
its own section.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml

from distdqn.typed import (
    ConfigError,
    NonNegativeFloat,
    NonNegativeInt,
    PositiveFloat,
    PositiveInt,
    Range,
    Text,
    UnitInterval,
    YamlLoader,
    build,
    parse_yaml,
    suggest,
    to_dict,
)


@dataclass
class EnvConfig:
    task: str = "keyword"  # a built-in task name (see `distdqn tasks`) or 'module:Class' for your own
    difficulty: Literal["easy", "medium", "hard"] = "easy"  # the task's preset
    options: dict = field(default_factory=dict)  # task options overriding the preset (checked by the task)
    envs_per_actor: PositiveInt = 32  # B: environments each actor steps in one batched numpy step
    # A Hugging Face tokenizer directory for text tasks (keyword_text, ...): the env runs in its id space.
    # '' with network.trunk 'hf' means network.pretrained's tokenizer.
    tokenizer: str = ""


@dataclass
class NetworkConfig:
    trunk: Literal["gru", "transformer", "hf"] = "gru"  # GRU, causal Transformer, or a pretrained LM (hf)
    embed_dim: PositiveInt = 32  # token embedding width
    hidden_dim: PositiveInt = 64  # GRU hidden size / Transformer model width
    num_layers: PositiveInt = 1  # recurrent or Transformer layers
    num_heads: PositiveInt = 4  # attention heads (Transformer only)
    dueling: bool = True  # Q = V + A - mean(A) per position
    # Transformer positions: learned absolute embeddings, rotary (RoPE: attention sees offsets between tokens), or
    # none (order only via the causal mask)
    positions: Literal["learned", "rotary", "none"] = "learned"
    numeric_embedding: bool = False  # integer tokens ("7") share one embedding plus value * w, w learned (xVal-style)
    copy_head: bool = True  # add a pointer-style Q bonus for tokens already in the text (distdqn/copy_head.py)
    copy_dim: PositiveInt = 32  # query/key width of the copy head
    copy_positions: bool = True  # copy-head keys carry their position too: point by place (copy, reverse)
    align_head: bool = False  # add attention over the text through a learned token lexicon (distdqn/align_head.py)
    align_dim: PositiveInt = 32  # query/key width of the align head
    # ---- trunk 'hf' only (distdqn/lm_network.py): Q = v(h) + scale * log_softmax(lm_head(h)) + A(h) - mean(A(h))
    pretrained: str = ""  # a local Hugging Face causal-LM directory (config, weights, tokenizer); never downloads
    finetune: Literal["full", "frozen", "top_blocks", "lora"] = "full"  # what of the LM trains (the Q-head always)
    train_blocks: PositiveInt = 1  # finetune 'top_blocks': the last k transformer blocks (and the final norm) train
    lora_rank: PositiveInt = 8  # finetune 'lora': adapter rank (peft)
    lora_alpha: PositiveFloat = 16.0  # finetune 'lora': adapter scaling alpha (peft; the update is alpha / rank * BA)
    lm_scale: PositiveFloat = 0.1  # initial scale of the LM log-probabilities in Q (learned from there)
    advantage_rank: PositiveInt = 32  # rank of the zero-initialised advantage correction A(h) = U (D h)


@dataclass
class ActorConfig:
    num_actors: PositiveInt = 2  # N actors (Ray actors in distributed mode)
    eps_base: UnitInterval = 0.1  # Ape-X ladder: eps_i = eps_base ** (1 + eps_alpha * i / (N - 1)) (paper: 0.4)
    eps_alpha: NonNegativeFloat = 2.0  # Ape-X ladder exponent spread (paper: 7)
    eps_decay_steps: NonNegativeInt = 10_000  # >0: epsilon falls from 1.0 to the ladder value over this many env steps
    n_step: PositiveInt = 3  # n of the n-step return
    gamma: Annotated[float, Range(gt=0, le=1)] = 0.99  # discount per env step
    push_interval_steps: PositiveInt = 8  # env steps between pushes (each push carries about B * this transitions)
    param_pull_interval_steps: PositiveInt = 16  # env steps between checks for newer weights
    max_pushes_in_flight: PositiveInt = 2  # back-pressure: an actor waits when this many pushes are unacknowledged
    num_threads: PositiveInt = 1  # torch threads per actor
    # A text state shows how much of the token budget is left (its length), so reaching the budget is a terminal
    # state of the MDP and is not bootstrapped (Pardo et al. 2018, "Time Limits in RL"). True bootstraps through
    # truncation, for tasks whose cut is an outside time limit the state does not show.
    bootstrap_on_truncation: bool = False
    # The random action of epsilon-greedy: 'uniform' over the legal tokens; 'softmax': drawn from the network's own
    # softmax(Q / explore_temperature), so exploring favours the tokens not yet known to be bad; or 'lm': drawn from
    # the LM's own distribution (network.trunk 'hf'), cut to its top_k tokens and top_p nucleus, so a 50k vocabulary
    # explores plausible text instead of noise.
    explore: Literal["uniform", "softmax", "lm"] = "uniform"
    explore_temperature: PositiveFloat = 0.1  # 'softmax': Q-values in [-1, 1] apart by 0.2 -> e^2 more likely
    explore_top_k: NonNegativeInt = 50  # 'lm': keep the k most likely tokens (0: no cut)
    explore_top_p: Annotated[float, Range(gt=0, le=1)] = 0.95  # 'lm': keep the smallest set with this much mass


@dataclass
class ReplayConfig:
    capacity: PositiveInt = 50_000  # transitions, summed over shards (raise it for long runs on many actors)
    num_shards: PositiveInt = 1  # K replay shards (Ray actors in distributed mode)
    alpha: UnitInterval = 0.6  # priority exponent: P(i) = p_i^alpha / sum_k p_k^alpha
    beta_start: UnitInterval = 0.4  # importance-weight exponent at update 0
    beta_end: UnitInterval = 1.0  # importance-weight exponent after beta_anneal_updates
    beta_anneal_updates: NonNegativeInt = 20_000  # linear annealing length of beta
    priority_eps: PositiveFloat = 1e-3  # added to |TD| so no item gets probability 0
    min_size_to_sample: PositiveInt = 1_000  # the learner waits until the replay holds this many transitions
    samples_per_insert: NonNegativeFloat = 8.0  # target ratio of sampled to inserted transitions (0: no limiter)
    samples_per_insert_tolerance: Annotated[float, Range(ge=0, lt=1)] = 0.5  # the ratio may drift by +- this fraction


@dataclass
class LearnerConfig:
    batch_size: PositiveInt = 64  # transitions per update
    lr: PositiveFloat = 1e-3  # Adam learning rate
    lr_decay_updates: NonNegativeInt = 0  # >0: cosine decay of lr to lr * lr_final_fraction over this many updates
    lr_final_fraction: UnitInterval = 0.1  # the decayed learning rate's share of lr (held after the decay)
    adam_eps: PositiveFloat = 1e-5  # Adam epsilon
    weight_decay: NonNegativeFloat = 0.0  # decoupled weight decay (AdamW); helps generalisation to held-out prompts
    max_grad_norm: PositiveFloat = 10.0  # gradient-norm clip
    loss: Literal["huber", "mse"] = "huber"  # TD loss
    huber_delta: PositiveFloat = 1.0  # Huber transition point
    double_dqn: bool = True  # online argmax, target evaluation
    target_sync_interval_updates: NonNegativeInt = 100  # hard target sync period (used when polyak_tau == 0)
    polyak_tau: Annotated[float, Range(ge=0, lt=1)] = 0.0  # >0: soft target update every step instead of hard syncs
    # >0: publish an exponential moving average of the online weights (to actors, evaluation and checkpoints' eval)
    # instead of the online weights themselves; decay min(weight_ema, (1 + u) / (10 + u)) after update u
    weight_ema: Annotated[float, Range(ge=0, lt=1)] = 0.0
    publish_interval_updates: PositiveInt = 25  # updates between weight publications to the actors
    prefetch: PositiveInt = 4  # batches requested ahead of the one being trained on (distributed learner)
    batches_per_request: PositiveInt = 4  # batches drawn per round of shard calls (fewer remote calls per update)
    device: str = "auto"  # auto (cuda when present) | cpu | cuda | cuda:N
    bf16: bool = False  # bf16 autocast of the update: CUDA; on CPU it pays little (README "Learner speed")
    num_threads: PositiveInt = 1  # torch threads on CPU
    max_consecutive_skips: PositiveInt = 100  # updates in a row skipped for a non-finite loss/gradient end the run
    # fast: Q(s, a) read for the taken action only, fused AdamW, foreach clipping (equal losses to 1e-5, README
    # "Learner speed"); reference: the plain path, kept for the side-by-side benchmark and as the test oracle
    impl: Literal["fast", "reference"] = "fast"
    # ---- demonstrations (DQfD, Hester et al. 2018; distdqn/demonstrations.py): the task's oracle playing the
    # training split, as n-step transitions like the actors'. Off by default; needs a task with `oracle_actions`.
    demo_pretrain_updates: NonNegativeInt = 0  # the first k updates train on demonstrations alone
    demo_pretrain_batch_size: NonNegativeInt = 0  # demonstrations per pre-training update (0: batch_size)
    demo_batch_size: NonNegativeInt = 0  # demonstrations added to every later update (0: none after pretraining)
    demo_margin: NonNegativeFloat = 0.8  # large-margin loss: Q(s, a) + margin <= Q(s, a_oracle) for a != a_oracle
    demo_margin_weight: NonNegativeFloat = 1.0  # weight of the margin loss next to the TD loss on demonstrations
    demo_td_weight: NonNegativeFloat = 1.0  # weight of the TD loss on demonstrations (0: margin alone, no target pass)
    # Tasks with action masks: the margin compares the demonstrated token with the legal tokens of s only (false:
    # with the whole vocabulary, DQfD as published)
    demo_legal_only: bool = True
    # The margin loss's max over actions as T * logsumexp(. / T), every near rival gets gradient (0: DQfD's hard
    # max). Arithmetic medium, pre-training alone, 3,500 updates: held-out 0.06 with T = 0, 0.45 with 0.1, 0.62 with
    # 0.3.
    demo_temperature: NonNegativeFloat = 0.3
    # Demonstration batches of whole episodes: the pre-training batch and demo_batch_size count episodes, and every
    # transition of an episode is read from one pass over its row (distdqn/demonstrations.py), so a batch costs
    # about what as many single transitions do and carries an episode's worth of each
    demo_episodes: bool = False


Tracker = Literal["wandb", "mlflow"]  # experiment trackers that `run.trackers` may name


@dataclass
class RunConfig:
    name: str = ""  # run name; the run directory defaults to runs/<name> ('' = <task>_<difficulty>)
    run_dir: str = ""  # explicit run directory (overrides runs/<name>)
    seed: NonNegativeInt = 0  # master seed: actors, envs, replay, learner derive theirs from it
    max_env_steps: NonNegativeInt = 0  # budget: stop after this many env steps (0 = no limit)
    max_updates: NonNegativeInt = 0  # budget: stop after this many learner updates (0 = no limit)
    max_seconds: NonNegativeFloat = 0.0  # budget: stop after this many wall-clock seconds (0 = no limit)
    target_success: UnitInterval = 0.0  # stop when held-out success reaches this (0 = no target)
    eval_interval_s: PositiveFloat = 10.0  # seconds between held-out evaluations
    eval_episodes: PositiveInt = 200  # held-out episodes per evaluation
    log_interval_s: PositiveFloat = 1.0  # seconds between progress lines / metrics records
    trackers: list[Tracker] = field(default_factory=list)  # also log to these: [wandb, mlflow] (distdqn/trackers.py)
    tracker_project: str = "distdqn"  # the W&B project and the MLflow experiment of the run
    wandb_mode: Literal["offline", "online"] = "offline"  # offline: no network; `wandb sync` uploads later
    mlflow_uri: str = ""  # MLflow tracking URI ('' = a file store in <run_dir>/mlruns)


@dataclass
class CheckpointConfig:
    interval_s: NonNegativeFloat = 300.0  # seconds between checkpoints (0 disables periodic checkpoints)
    interval_updates: NonNegativeInt = 0  # updates between checkpoints (0 = only by time)
    keep_last: PositiveInt = 3  # checkpoints kept on disk
    include_replay: bool = False  # also snapshot every replay shard


@dataclass
class ClusterConfig:
    address: str = ""  # '' = a fresh embedded local Ray instance; 'auto' or host:port joins a cluster
    num_cpus: NonNegativeInt = 0  # CPUs of the embedded instance (0 = all of this machine)
    actor_num_cpus: PositiveFloat = 1.0  # CPU request per actor worker
    shard_num_cpus: NonNegativeFloat = 0.25  # CPU request per replay shard (0: reserve none)
    learner_num_cpus: NonNegativeFloat = 1.0  # CPU request of the learner worker (0: reserve none)
    learner_num_gpus: Literal["auto", "0", "1"] = "auto"  # auto: 1 when the cluster has a GPU
    wait_for_resources_s: NonNegativeFloat = 0.0  # >0: wait this long for CPUs/GPUs (autoscaling) instead of failing
    call_timeout_s: PositiveFloat = 60.0  # timeout of remote calls; a worker silent this long is treated as dead
    max_restarts: NonNegativeInt = 10  # restarts allowed per worker within restart_window_s; one more ends the run
    restart_window_s: PositiveFloat = 600.0  # the window of max_restarts
    restart_backoff_s: NonNegativeFloat = 1.0  # delay of a worker's first restart; doubles per restart in the window


@dataclass
class Config:
    env: EnvConfig = field(default_factory=EnvConfig)
    network: NetworkConfig = field(default_factory=NetworkConfig)
    actor: ActorConfig = field(default_factory=ActorConfig)
    replay: ReplayConfig = field(default_factory=ReplayConfig)
    learner: LearnerConfig = field(default_factory=LearnerConfig)
    run: RunConfig = field(default_factory=RunConfig)
    checkpoint: CheckpointConfig = field(default_factory=CheckpointConfig)
    cluster: ClusterConfig = field(default_factory=ClusterConfig)

    def to_dict(self) -> dict:
        return to_dict(self)

    def hash(self, sections: tuple[str, ...] = ("env", "network")) -> str:
        """A short hash of the given sections (by default the ones that define the architecture)."""
        blob = json.dumps({s: to_dict(getattr(self, s)) for s in sections}, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


# Keys that define the network and its inputs: a resumed run must match them exactly.
ARCHITECTURE_KEYS = (
    "env.task",
    "env.difficulty",
    "env.options",
    "network.trunk",
    "network.embed_dim",
    "network.hidden_dim",
    "network.num_layers",
    "network.num_heads",
    "network.dueling",
    "network.positions",
    "network.numeric_embedding",
    "network.copy_head",
    "network.copy_dim",
    "network.copy_positions",
    "network.align_head",
    "network.align_dim",
    "env.tokenizer",
    "network.pretrained",
    "network.finetune",
    "network.train_blocks",
    "network.lora_rank",
    "network.advantage_rank",
)


def apply_override(data: dict, dotted: str, value: Any) -> None:
    """Set `a.b.c = value` in a nested dict, naming the nearest valid key when a section is unknown."""
    *parents, leaf = dotted.split(".")
    node = data
    sections = {f.name: f.type for f in dataclasses.fields(Config)}
    for depth, key in enumerate(parents):
        if depth == 0 and key not in sections:
            raise ConfigError([f"unknown key '{dotted}': no section '{key}'{suggest(key, sections)}"])
        if isinstance(node.get(key), Text):  # an earlier override set the whole mapping: `env.options={a: 1}`
            node[key] = parse_yaml(node[key].text)
        node = node.setdefault(key, {})
        if not isinstance(node, dict):
            raise ConfigError([f"'{'.'.join(parents[: depth + 1])}' is not a section (in override '{dotted}')"])
    node[leaf] = value


def apply_overrides(data: dict, overrides: list[str]) -> dict:
    """Put each `key=value` override into `data` as `Text`, which `build` parses by the type declared for the key."""
    for item in overrides:
        if "=" not in item:
            raise ConfigError([f"override {item!r} must look like section.key=value"])
        key, _, raw = item.partition("=")
        apply_override(data, key.strip(), Text(raw))
    return data


def load_config(path: str | Path | None = None, overrides: list[str] | None = None) -> Config:
    """Defaults <- YAML file <- `key=value` overrides, built strictly and validated."""
    data: dict = {}
    if path:
        try:
            loaded = yaml.load(Path(path).read_text(), Loader=YamlLoader) or {}  # safe: a SafeLoader subclass
        except yaml.YAMLError as error:
            raise ConfigError([f"{path}: not valid YAML ({error})"]) from None
        if not isinstance(loaded, dict):
            raise ConfigError([f"{path}: expected a mapping at the top level"])
        data = loaded
    config = build(Config, apply_overrides(data, overrides or []))
    resolve(config)
    validate(config)
    return config


def resolve(c: Config) -> None:
    """Fill keys whose default depends on another section: a pretrained LM's tokenizer is the text tasks'."""
    if c.network.trunk == "hf" and not c.env.tokenizer:
        c.env.tokenizer = c.network.pretrained


def validate(c: Config) -> None:
    """Cross-field checks, all reported together with the arithmetic behind each (single-key ranges are declared
    on the fields and checked by `build`, so every number here is already in its range)."""
    p: list[str] = []
    if c.learner.polyak_tau == 0.0 and c.learner.target_sync_interval_updates < 1:
        p.append(
            f"learner.target_sync_interval_updates must be >= 1 with hard syncs (learner.polyak_tau = 0), got "
            f"{c.learner.target_sync_interval_updates}"
        )
    per_shard = c.replay.capacity // c.replay.num_shards
    if c.replay.min_size_to_sample > c.replay.capacity:
        p.append(
            f"replay.min_size_to_sample ({c.replay.min_size_to_sample}) exceeds replay.capacity "
            f"({c.replay.capacity}): the learner would wait forever"
        )
    if per_shard < c.learner.batch_size:
        p.append(
            f"each shard holds replay.capacity / replay.num_shards = {c.replay.capacity} / "
            f"{c.replay.num_shards} = {per_shard} transitions, fewer than learner.batch_size "
            f"({c.learner.batch_size})"
        )
    if c.replay.min_size_to_sample < c.learner.batch_size:
        p.append(
            f"replay.min_size_to_sample ({c.replay.min_size_to_sample}) must be >= learner.batch_size "
            f"({c.learner.batch_size})"
        )
    if c.network.trunk == "transformer" and c.network.hidden_dim % c.network.num_heads:
        p.append(
            f"network.hidden_dim ({c.network.hidden_dim}) must be divisible by network.num_heads "
            f"({c.network.num_heads}) for the Transformer: {c.network.hidden_dim} % {c.network.num_heads} = "
            f"{c.network.hidden_dim % c.network.num_heads}"
        )
    if (
        c.network.trunk == "transformer"
        and c.network.positions == "rotary"
        and not c.network.hidden_dim % c.network.num_heads
        and (c.network.hidden_dim // c.network.num_heads) % 2
    ):
        p.append(
            f"network.positions 'rotary' turns pairs of each head's features: hidden_dim / num_heads = "
            f"{c.network.hidden_dim} / {c.network.num_heads} = {c.network.hidden_dim // c.network.num_heads} must be even"
        )
    if c.network.trunk == "hf" and not c.network.pretrained:
        p.append("network.trunk 'hf' needs network.pretrained: a local Hugging Face model directory")
    if c.network.trunk == "hf" and c.network.align_head:
        p.append("network.align_head keeps a vocabulary-squared lexicon: it is for the 'gru' and 'transformer' trunks")
    if c.actor.explore == "lm" and c.network.trunk != "hf":
        p.append(
            f"actor.explore 'lm' samples from a pretrained LM: it needs network.trunk 'hf', got {c.network.trunk!r}"
        )
    if p:
        raise ConfigError(p)


def run_dir(c: Config) -> Path:
    return Path(c.run.run_dir) if c.run.run_dir else Path("runs") / (c.run.name or task_run_name(c.env))


def task_run_name(env: EnvConfig) -> str:
    """The name of a run that has none: `<task>_<difficulty>` (a plug-in task `pkg.mod:MyTask`: `MyTask_<...>`)."""
    task = re.sub(r"[^A-Za-z0-9_.-]+", "_", env.task.rsplit(":", 1)[-1]).strip("._") or "task"
    return f"{task}_{env.difficulty}"


def dump_yaml(c: Config) -> str:
    return yaml.safe_dump(c.to_dict(), sort_keys=False)
