"""The Actor: steps B envs with a local Q-network copy and epsilon-greedy, and emits n-step transitions + priorities.

One `collect(num_steps)` call runs the loop below `num_steps` times (each step advances all B slots, so it makes
B env steps). The invariant between steps: `self._q` holds Q(s_t, .) for the current observation.

    a_t      = epsilon-greedy(Q(s_t, .))                       masked: pad and the task's illegal actions
    s_{t+1}  = env.step(a_t)                                   auto-reset slots restart their episode
    Q(s_{t+1}, .) = network.advance(state, s_{t+1})             one GRU-cell step in the common case
    n-step assembly emits transitions whose window completed, with initial priority
        |G + discount * max_a Q(s', a) - Q(s_t, a_t)|           (Ape-X; s' = s_{t+1}, or the final obs when
                                                                 truncated, via one extra sub-batch forward)

Epsilon is the actor's Ape-X ladder value (`exploration.epsilon_ladder`), reached by a linear decay from 1.0 over
`actor_config.eps_decay_steps` env steps when that is > 0. Env steps count slot steps: B per loop iteration.

Weights arrive as numpy state dicts with a version (`load_weights`); the recurrent state is then recomputed from
the full prefixes at the next step (one sequence forward), so no Q-value mixes two weight versions.
No live torch modules, envs or tokenizers cross this class's boundary: it builds its own from configs.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

from distdqn.config import ActorConfig, EnvConfig, NetworkConfig
from distdqn.envs import make_env_from_config, numeric_token_values
from distdqn.exploration import boltzmann, decayed_epsilon, epsilon_ladder, lm_sample, masked, random_legal
from distdqn.networks import build_network, load_published
from distdqn.nstep import NStepAssembler


@dataclasses.dataclass
class EpisodeStats:
    """Episodes that finished during one `collect` (means are 0.0 when count == 0)."""

    count: int
    mean_return: float
    mean_success: float
    mean_length: float  # env steps (generated tokens) per episode
    epsilon: float  # the actor's epsilon at the end of the collect


@dataclasses.dataclass
class Collected:
    transitions: dict[str, np.ndarray]  # spec layout, dtypes per `spec.transition_dtypes`
    priorities: np.ndarray  # [N] float32 initial |TD| (not yet raised to the replay's alpha)
    episodes: EpisodeStats
    env_steps: int  # slot steps taken in this collect: num_steps * B


class Actor:
    """Ape-X actor over a batch of `env_config.envs_per_actor` text envs (see the module docstring)."""

    def __init__(
        self,
        env_config: EnvConfig,
        network_config: NetworkConfig,
        actor_config: ActorConfig,
        actor_index: int,
        num_actors: int,
        seed: int,
    ):
        torch.set_num_threads(actor_config.num_threads)
        env_seed, rng_seed, torch_seed = np.random.SeedSequence([seed, actor_index]).generate_state(3)
        self.config = actor_config
        self.actor_index = actor_index
        self.env = make_env_from_config(env_config, num_envs=env_config.envs_per_actor, seed=int(env_seed))
        self.num_envs, self.vocab_size, self.max_len = self.env.num_envs, self.env.vocab_size, self.env.max_len
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(torch_seed))
            token_values = numeric_token_values(self.env.vocab.tokens)
            self.network = build_network(network_config, self.vocab_size, self.max_len, token_values).eval()
        self.rng = np.random.default_rng(rng_seed)
        self.final_epsilon = epsilon_ladder(actor_index, num_actors, actor_config.eps_base, actor_config.eps_alpha)
        self.nstep = NStepAssembler(
            self.num_envs,
            actor_config.n_step,
            actor_config.gamma,
            self.vocab_size,
            self.max_len,
            with_mask=self.env.has_action_mask,
        )
        self.env_steps = 0
        self.episodes_total = 0
        self.weights_version = 0  # 0 = the actor's own random initialisation
        self._rows = np.arange(self.num_envs)
        self._restart_episodes()

    def set_num_actors(self, num_actors: int) -> None:
        """Move this actor to its rung of the Ape-X ladder for `num_actors` actors (the run was scaled)."""
        self.final_epsilon = epsilon_ladder(self.actor_index, num_actors, self.config.eps_base, self.config.eps_alpha)

    @property
    def epsilon(self) -> float:
        return decayed_epsilon(self.env_steps, self.final_epsilon, self.config.eps_decay_steps)

    def _restart_episodes(self) -> None:
        with torch.inference_mode():
            self._state = self.network.initial_state(self.num_envs)
        self._obs = self.env.reset()
        self._fresh = np.ones(self.num_envs, dtype=bool)  # slots whose network state must restart from 0
        self._mq: np.ndarray | None = None  # masked Q(s_t, .) of the current observation, [B, V]
        self._q: np.ndarray | None = None
        self._ep_return = np.zeros(self.num_envs, np.float64)
        self._ep_len = np.zeros(self.num_envs, np.int64)

    def _advance(self, reset: np.ndarray) -> None:
        obs = self._obs
        self._state, q = self.network.advance(self._state, obs.tokens, obs.length, reset)
        self._q = q.numpy()
        self._mq = masked(self._q, obs.action_mask)

    def collect(self, num_steps: int) -> Collected:
        """Run `num_steps` batched env steps; return the transitions they completed and episode statistics."""
        returns, successes, lengths = [], [], []
        with torch.inference_mode():
            if self._q is None:
                self._advance(self._fresh)
            for _ in range(num_steps):
                eps = self.epsilon
                actions = self._mq.argmax(axis=1)
                explore = np.flatnonzero(self.rng.random(self.num_envs) < eps)
                if explore.size:
                    actions[explore] = self._random_actions(explore)
                q_sa = self._q[self._rows, actions]
                len_s = self._obs.length.copy()  # the env updates its arrays in place
                self._obs, reward, terminated, truncated, info = self.env.step(actions)
                if not self.config.bootstrap_on_truncation:
                    terminated = terminated | truncated  # see ActorConfig.bootstrap_on_truncation
                done = info.done_idx
                max_q_final = self._final_max_q(info, terminated)  # before `advance` resets those slots
                reset = np.zeros(self.num_envs, dtype=bool)
                reset[done] = True
                self._advance(reset)
                self.nstep.add(
                    len_s, actions, q_sa, reward, terminated, self._obs, info, self._mq.max(axis=1), max_q_final
                )
                self._ep_return += reward
                self._ep_len += 1
                if done.size:
                    returns.append(self._ep_return[done].copy())
                    lengths.append(self._ep_len[done].copy())
                    successes.append(info.success)
                    self._ep_return[done] = 0.0
                    self._ep_len[done] = 0
                self.env_steps += self.num_envs
        transitions, priorities = self.nstep.drain()
        return Collected(
            transitions,
            priorities,
            self._episode_stats(returns, successes, lengths),
            env_steps=num_steps * self.num_envs,
        )

    def _random_actions(self, rows: np.ndarray) -> np.ndarray:
        """Epsilon's random actions for slots `rows`: uniform over the legal tokens, a draw from softmax(Q / T), or
        the LM's top-k/top-p draw."""
        mask = None if self._obs.action_mask is None else self._obs.action_mask[rows]
        if self.config.explore == "softmax":
            return boltzmann(self._q[rows], self.config.explore_temperature, self.rng, mask)
        if self.config.explore == "lm":
            logp = self._state.lm_logp[torch.from_numpy(rows)].float().cpu().numpy()
            return lm_sample(self.rng, logp, self.config.explore_top_k, self.config.explore_top_p, mask)
        return random_legal(self.rng, rows.size, self.vocab_size, mask)

    def _final_max_q(self, info, terminated: np.ndarray) -> np.ndarray | None:
        """max_a Q(final obs) for truncated slots (aligned with info.done_idx; 0 elsewhere): bootstrap priorities."""
        cut = ~terminated[info.done_idx]
        if not cut.any():
            return None
        out = np.zeros(info.done_idx.size, np.float32)
        sel = np.flatnonzero(cut)
        q = self.network.peek(self._state, info.done_idx[sel], info.final_tokens[sel], info.final_length[sel])
        out[sel] = masked(q.numpy()).max(axis=1)  # the env gives no mask for a final observation
        return out

    def _episode_stats(self, returns, successes, lengths) -> EpisodeStats:
        if not returns:
            return EpisodeStats(0, 0.0, 0.0, 0.0, self.epsilon)
        r, s, n = np.concatenate(returns), np.concatenate(successes), np.concatenate(lengths)
        self.episodes_total += r.size
        return EpisodeStats(int(r.size), float(r.mean()), float(s.mean()), float(n.mean()), self.epsilon)

    def load_weights(self, version: int, state: dict[str, np.ndarray]) -> None:
        """Adopt the learner's weights (a numpy state dict from `Learner.snapshot`) as weights `version`."""
        load_published(self.network, state)
        self.weights_version = int(version)
        self._fresh = np.ones(self.num_envs, dtype=bool)  # recompute every slot's state under the new weights
        self._q = self._mq = None

    def state_dict(self) -> dict:
        """Counters and RNG states (for checkpoints). Episodes in progress and pending n-step windows are not kept."""
        return {
            "env_steps": self.env_steps,
            "episodes_total": self.episodes_total,
            "weights_version": self.weights_version,
            "rng": self.rng.bit_generator.state,
            "env_rng": self.env.rng.bit_generator.state,
        }

    def load_state_dict(self, state: dict) -> None:
        """Restore counters and RNGs and start fresh episodes (weights come separately via `load_weights`)."""
        self.env_steps = int(state["env_steps"])
        self.episodes_total = int(state["episodes_total"])
        self.weights_version = int(state["weights_version"])
        self.rng.bit_generator.state = state["rng"]
        self.env.rng.bit_generator.state = state["env_rng"]
        self.nstep.clear()
        self._restart_episodes()
