"""Experiment configuration: typed sections with defaults, YAML files, dotted overrides and one validation pass.

The learning defaults are the settings tuned on the easy tasks on a 2-core laptop (small GRU, replay-heavy
learning from a small fresh replay, a short exploration warm-up); `configs/` holds per-task files on top of them.

Precedence: defaults in code < YAML file (`--config configs/x.yaml`) < dotted overrides (`learner.lr=1e-4`).
Unknown keys fail at once naming the dotted path and the nearest valid key; `validate` reports every cross-field
problem together, showing the arithmetic. Each role receives only its own section.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from distdqn.typed import ConfigError, build, suggest, to_dict


@dataclass
class EnvConfig:
    task: str = "keyword"  # a built-in task name (see `distdqn tasks`) or 'module:Class' for your own
    difficulty: Literal["easy", "medium", "hard"] = "easy"  # the task's preset
    options: dict = field(default_factory=dict)  # task options overriding the preset (checked by the task)
    envs_per_actor: int = 32  # B: environments each actor steps in one batched numpy step


@dataclass
class NetworkConfig:
    trunk: Literal["gru", "transformer"] = "gru"  # GRU (cheap incremental step) or causal Transformer
    embed_dim: int = 32  # token embedding width
    hidden_dim: int = 64  # GRU hidden size / Transformer model width
    num_layers: int = 1  # recurrent or Transformer layers
    num_heads: int = 4  # attention heads (Transformer only)
    dueling: bool = True  # Q = V + A - mean(A) per position
    positions: Literal["learned", "none"] = "learned"  # Transformer positions; none: order only via the causal mask
    numeric_embedding: bool = False  # integer tokens ("7") share one embedding plus value * w, w learned (xVal-style)
    copy_head: bool = True  # add a pointer-style Q bonus for tokens already in the text (distdqn/copy_head.py)
    copy_dim: int = 32  # query/key width of the copy head


@dataclass
class ActorConfig:
    num_actors: int = 2  # N actors (Ray actors in distributed mode)
    eps_base: float = 0.1  # Ape-X ladder: eps_i = eps_base ** (1 + eps_alpha * i / (N - 1)) (paper: 0.4)
    eps_alpha: float = 2.0  # Ape-X ladder exponent spread (paper: 7)
    eps_decay_steps: int = 10_000  # >0: epsilon decays from 1.0 to the actor's ladder value over this many env steps
    n_step: int = 3  # n of the n-step return
    gamma: float = 0.99  # discount per env step
    push_interval_steps: int = 8  # env steps between pushes (each push carries about B * this transitions)
    param_pull_interval_steps: int = 16  # env steps between checks for newer weights
    max_pushes_in_flight: int = 2  # back-pressure: an actor waits when this many pushes are unacknowledged
    num_threads: int = 1  # torch threads per actor
    # A text state shows how much of the token budget is left (its length), so reaching the budget is a terminal
    # state of the MDP and is not bootstrapped (Pardo et al. 2018, "Time Limits in RL"). True bootstraps through
    # truncation, for tasks whose cut is an outside time limit the state does not show.
    bootstrap_on_truncation: bool = False


@dataclass
class ReplayConfig:
    capacity: int = 50_000  # transitions, summed over shards (raise it for long runs on many actors)
    num_shards: int = 1  # K replay shards (Ray actors in distributed mode)
    alpha: float = 0.6  # priority exponent: P(i) = p_i^alpha / sum_k p_k^alpha
    beta_start: float = 0.4  # importance-weight exponent at update 0
    beta_end: float = 1.0  # importance-weight exponent after beta_anneal_updates
    beta_anneal_updates: int = 20_000  # linear annealing length of beta
    priority_eps: float = 1e-3  # added to |TD| so no item gets probability 0
    min_size_to_sample: int = 1_000  # the learner waits until the replay holds this many transitions
    samples_per_insert: float = 8.0  # target ratio of sampled to inserted transitions (0 disables the limiter)
    samples_per_insert_tolerance: float = 0.5  # band: the ratio may drift by +- this fraction of the target


@dataclass
class LearnerConfig:
    batch_size: int = 64  # transitions per update
    lr: float = 1e-3  # Adam learning rate
    adam_eps: float = 1e-5  # Adam epsilon
    weight_decay: float = 0.0  # decoupled weight decay (AdamW); helps generalisation to held-out prompts
    max_grad_norm: float = 10.0  # gradient-norm clip
    loss: Literal["huber", "mse"] = "huber"  # TD loss
    huber_delta: float = 1.0  # Huber transition point
    double_dqn: bool = True  # online argmax, target evaluation
    target_sync_interval_updates: int = 100  # hard target sync period (used when polyak_tau == 0)
    polyak_tau: float = 0.0  # >0: soft target update every step instead of hard syncs
    publish_interval_updates: int = 25  # updates between weight publications to the actors
    prefetch: int = 4  # batches requested ahead of the one being trained on (distributed learner)
    batches_per_request: int = 4  # batches drawn per round of shard calls (fewer remote calls per update)
    device: str = "auto"  # auto (cuda when present) | cpu | cuda | cuda:N
    bf16: bool = False  # bf16 autocast on CUDA
    num_threads: int = 1  # torch threads on CPU


@dataclass
class RunConfig:
    name: str = "default"  # run name; the run directory defaults to runs/<name>
    run_dir: str = ""  # explicit run directory (overrides runs/<name>)
    seed: int = 0  # master seed: actors, envs, replay, learner derive theirs from it
    max_env_steps: int = 0  # budget: stop after this many env steps (0 = no limit)
    max_updates: int = 0  # budget: stop after this many learner updates (0 = no limit)
    max_seconds: float = 0.0  # budget: stop after this many wall-clock seconds (0 = no limit)
    target_success: float = 0.0  # stop when held-out success reaches this (0 = no target)
    eval_interval_s: float = 10.0  # seconds between held-out evaluations
    eval_episodes: int = 200  # held-out episodes per evaluation
    log_interval_s: float = 1.0  # seconds between progress lines / metrics records


@dataclass
class CheckpointConfig:
    interval_s: float = 300.0  # seconds between checkpoints (0 disables periodic checkpoints)
    interval_updates: int = 0  # updates between checkpoints (0 = only by time)
    keep_last: int = 3  # checkpoints kept on disk
    include_replay: bool = False  # also snapshot every replay shard


@dataclass
class ClusterConfig:
    address: str = ""  # '' = a fresh embedded local Ray instance; 'auto' or host:port joins a cluster
    num_cpus: int = 0  # CPUs of the embedded instance (0 = all of this machine)
    actor_num_cpus: float = 1.0  # CPU request per actor worker
    shard_num_cpus: float = 0.25  # CPU request per replay shard
    learner_num_cpus: float = 1.0  # CPU request of the learner worker
    learner_num_gpus: Literal["auto", "0", "1"] = "auto"  # auto: 1 when the cluster has a GPU
    call_timeout_s: float = 60.0  # timeout of remote calls the driver waits on


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
)


def parse_value(text: str) -> Any:
    """A CLI override value: numbers first (YAML reads '1e-4' as a string), then YAML (true, [1, 2], {a: 1})."""
    for number in (int, float):
        try:
            return number(text)
        except ValueError:
            pass
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def apply_override(data: dict, dotted: str, value: Any) -> None:
    """Set `a.b.c = value` in a nested dict, naming the nearest valid key when a section is unknown."""
    *parents, leaf = dotted.split(".")
    node = data
    sections = {f.name: f.type for f in dataclasses.fields(Config)}
    for depth, key in enumerate(parents):
        if depth == 0 and key not in sections:
            raise ConfigError([f"unknown key '{dotted}': no section '{key}'{suggest(key, sections)}"])
        node = node.setdefault(key, {})
        if not isinstance(node, dict):
            raise ConfigError([f"'{'.'.join(parents[: depth + 1])}' is not a section (in override '{dotted}')"])
    node[leaf] = value


def load_config(path: str | Path | None = None, overrides: list[str] | None = None) -> Config:
    """Defaults <- YAML file <- `key=value` overrides, built strictly and validated."""
    data: dict = {}
    if path:
        text = Path(path).read_text()
        loaded = yaml.safe_load(text) or {}
        if not isinstance(loaded, dict):
            raise ConfigError([f"{path}: expected a mapping at the top level"])
        data = loaded
    for item in overrides or []:
        if "=" not in item:
            raise ConfigError([f"override {item!r} must look like section.key=value"])
        key, _, raw = item.partition("=")
        apply_override(data, key.strip(), parse_value(raw))
    config = build(Config, data)
    validate(config)
    return config


def validate(c: Config) -> None:
    """Cross-field checks, all reported together with the arithmetic behind each."""
    p: list[str] = []

    def positive(path: str, value: float, strict: bool = True) -> None:
        if value < 0 or (strict and value == 0):
            p.append(f"{path} must be {'> 0' if strict else '>= 0'}, got {value}")

    for path in (
        "env.envs_per_actor",
        "actor.num_actors",
        "actor.n_step",
        "actor.push_interval_steps",
        "actor.param_pull_interval_steps",
        "actor.max_pushes_in_flight",
        "replay.capacity",
        "replay.num_shards",
        "learner.batch_size",
        "learner.prefetch",
        "learner.batches_per_request",
        "learner.publish_interval_updates",
        "network.embed_dim",
        "network.hidden_dim",
        "network.num_layers",
        "network.num_heads",
        "checkpoint.keep_last",
        "run.eval_episodes",
    ):
        section, key = path.split(".")
        positive(path, getattr(getattr(c, section), key))
    for path in ("learner.lr", "cluster.actor_num_cpus", "run.log_interval_s", "run.eval_interval_s"):
        section, key = path.split(".")
        positive(path, getattr(getattr(c, section), key))
    if not 0.0 < c.actor.gamma <= 1.0:
        p.append(f"actor.gamma must be in (0, 1], got {c.actor.gamma}")
    if not 0.0 <= c.actor.eps_base <= 1.0:
        p.append(f"actor.eps_base must be in [0, 1], got {c.actor.eps_base}")
    if not 0.0 <= c.replay.alpha <= 1.0 or not 0.0 <= c.replay.beta_start <= 1.0 or not 0.0 <= c.replay.beta_end <= 1.0:
        p.append(
            f"replay.alpha, beta_start, beta_end must lie in [0, 1], got {c.replay.alpha}, "
            f"{c.replay.beta_start}, {c.replay.beta_end}"
        )
    if not 0.0 <= c.learner.polyak_tau < 1.0:
        p.append(f"learner.polyak_tau must be in [0, 1), got {c.learner.polyak_tau}")
    if c.learner.polyak_tau == 0.0 and c.learner.target_sync_interval_updates < 1:
        p.append(
            f"learner.target_sync_interval_updates must be >= 1 with hard syncs, got "
            f"{c.learner.target_sync_interval_updates}"
        )
    if c.replay.samples_per_insert < 0 or not 0.0 <= c.replay.samples_per_insert_tolerance < 1.0:
        p.append(
            f"replay.samples_per_insert must be >= 0 and its tolerance in [0, 1), got "
            f"{c.replay.samples_per_insert} and {c.replay.samples_per_insert_tolerance}"
        )
    per_shard = c.replay.capacity // max(c.replay.num_shards, 1)
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
    if c.run.target_success and not 0.0 < c.run.target_success <= 1.0:
        p.append(f"run.target_success must be in (0, 1], got {c.run.target_success}")
    if p:
        raise ConfigError(p)


def run_dir(c: Config) -> Path:
    return Path(c.run.run_dir) if c.run.run_dir else Path("runs") / c.run.name


def dump_yaml(c: Config) -> str:
    return yaml.safe_dump(c.to_dict(), sort_keys=False)
