"""Demonstrations (DQfD): the oracle's transition stream, the large-margin loss, the learner's demo steps, and the
local runtime's pre-training phase."""

import numpy as np
import pytest
import torch

from distdqn import spec
from distdqn.config import load_config
from distdqn.demonstrations import DEMO_POOL, demo_source
from distdqn.envs import task_shape
from distdqn.learner import Learner, metrics_to_floats
from distdqn.local import LocalRuntime
from distdqn.losses import large_margin_loss
from distdqn.networks import unpack_mask
from distdqn.typed import ConfigError
from tests.fakes import COPY_RUN

ARITHMETIC = ["env.task=arithmetic", "env.difficulty=easy", "actor.n_step=1"]


def test_the_margin_loss_is_zero_once_the_oracle_leads_by_the_margin():
    q = torch.tensor([[1.0, 0.1, 0.0], [0.0, 0.5, 0.4]], requires_grad=True)
    a = torch.tensor([0, 1])
    loss, accuracy = large_margin_loss(q, a, margin=0.8)
    # row 0: max(1.0, 0.1 + 0.8, 0.8) - 1.0 = 0; row 1: max(0.8, 0.5, 1.2) - 0.5 = 0.7
    assert loss.item() == pytest.approx(0.35)
    assert accuracy.item() == 1.0
    loss.backward()
    # only the violating row moves: its oracle entry up, its worst rival down
    np.testing.assert_allclose(q.grad.numpy(), [[0, 0, 0], [0, -0.5, 0.5]])
    assert large_margin_loss(q.detach(), torch.tensor([2, 2]), margin=0.0)[1].item() == 0.0


def test_the_soft_margin_tends_to_the_hard_one_and_spreads_its_gradient():
    q = torch.tensor([[0.0, 0.5, 0.45, -2.0]], requires_grad=True)
    a = torch.tensor([0])
    hard = large_margin_loss(q, a, margin=0.8)[0]
    assert large_margin_loss(q, a, margin=0.8, temperature=1e-3)[0].item() == pytest.approx(hard.item(), abs=1e-3)
    soft = large_margin_loss(q, a, margin=0.8, temperature=0.3)[0]
    assert soft.item() > hard.item()  # logsumexp >= max
    soft.backward()
    grad = q.grad[0].numpy()
    assert grad[0] < 0 and grad[1] > 0 and grad[2] > 0  # both near rivals pushed down, not only the worst
    assert grad[3] == pytest.approx(0.0, abs=1e-3)  # a rival far below the margin is left alone
    q.grad = None
    hard.backward()
    assert q.grad[0, 2].item() == 0.0  # the hard max moves only the worst rival


def test_demonstrations_are_the_oracle_playing_in_the_replay_layout():
    config = load_config(None, [*ARITHMETIC, "learner.demo_batch_size=32"])
    stream = demo_source(config).build()
    shape = task_shape(config.env)
    batch = stream.next(300)
    want = spec.transition_dtypes(shape.vocab_size, shape.max_len)
    assert {k: (v.dtype, v.shape[1:]) for k, v in batch.items()} == want
    assert len(batch[spec.ACTION]) == 300
    # the oracle never errs: every step earns the digit credit (0.1) or the answer's reward (1, terminal)
    terminal = batch[spec.DISCOUNT] == 0
    np.testing.assert_allclose(batch[spec.RETURN][terminal], 1.0)
    np.testing.assert_allclose(batch[spec.RETURN][~terminal], 0.1)
    np.testing.assert_allclose(batch[spec.DISCOUNT][~terminal], 0.99)
    assert terminal.any() and (~terminal).any()  # a batch mixes answer positions, not one lockstep column
    assert (batch[spec.LEN_NEXT] == batch[spec.LEN_S] + 1).all()
    # the action taken is the row's next token: s' = s + a
    rows = np.arange(300)
    np.testing.assert_array_equal(batch[spec.TOKENS][rows, batch[spec.LEN_S]], batch[spec.ACTION])
    assert stream.env_steps >= DEMO_POOL


WORDLE = ["env.task=wordle", "env.difficulty=medium", "env.options.action_mask=true", "env.options.solver=words"]


def test_demonstrations_of_a_masked_task_carry_the_mask_of_s():
    config = load_config(None, [*WORDLE, "learner.demo_batch_size=32", "actor.n_step=3"])
    batch = demo_source(config).build().next(400)
    shape = task_shape(config.env)
    mask_s = unpack_mask(torch.from_numpy(batch[spec.MASK_S]), shape.vocab_size).numpy()
    rows = np.arange(len(mask_s))
    assert mask_s[rows, batch[spec.ACTION]].all()  # the oracle's token is legal where it was played
    assert (mask_s.sum(axis=1) < shape.vocab_size - 1).all()  # a dictionary keyboard, not all-legal
    # with n = 1 a transition's s is the s' of the previous step's transition, whose mask_next the env gave
    config = load_config(None, [*WORDLE, "learner.demo_batch_size=32", "actor.n_step=1"])
    batch = demo_source(config).build().next(DEMO_POOL)
    mask_s, mask_next = batch[spec.MASK_S], batch[spec.MASK_NEXT]
    after = {batch[spec.TOKENS][i, : batch[spec.LEN_NEXT][i]].tobytes(): i for i in range(DEMO_POOL)}
    matched = 0
    for i in range(DEMO_POOL):
        j = after.get(batch[spec.TOKENS][i, : batch[spec.LEN_S][i]].tobytes())
        if j is not None:
            np.testing.assert_array_equal(mask_s[i], mask_next[j])
            matched += 1
    assert matched > 100


def test_the_legal_only_margin_ignores_tokens_the_task_masks():
    config = load_config(None, [*WORDLE, "learner.demo_batch_size=32"])
    demo = demo_source(config).build().next(32)
    legal_only = _learner(config)
    whole = _learner(load_config(None, [*WORDLE, "learner.demo_batch_size=32", "learner.demo_legal_only=false"]))
    # an illegal token far ahead of every legal one: a rival for the published margin only
    vocab = task_shape(config.env).vocab_size
    mask_s = unpack_mask(torch.from_numpy(demo[spec.MASK_S]), vocab)
    illegal = int(torch.nonzero(~mask_s[0, 1:])[0, 0]) + 1
    for learner in (legal_only, whole):
        with torch.no_grad():
            learner.online.head.value.bias.fill_(0.0)
            learner.online.head.advantage.bias[illegal] = 100.0
    legal_metrics = legal_only.demo_loss(demo)[1]
    whole_metrics = whole.demo_loss(demo)[1]
    assert whole_metrics["demo_margin_loss"].item() > 50  # the illegal token leads by ~100
    assert legal_metrics["demo_margin_loss"].item() < 10
    assert whole_metrics["demo_accuracy"].item() == 0.0


def test_demonstrations_are_off_by_default_and_need_an_oracle():
    assert demo_source(load_config(None, ARITHMETIC)) is None
    with pytest.raises(ConfigError, match="has no oracle"):
        demo_source(load_config(None, ["env.task=tests.fakes:SyntheticEnv", "learner.demo_pretrain_updates=10"]))


def _learner(config):
    shape = task_shape(config.env)
    return Learner(config.network, config.learner, shape.vocab_size, shape.max_len, 0, shape.token_values)


def test_pretraining_on_demonstrations_learns_the_oracle_moves():
    config = load_config(None, [*ARITHMETIC, "learner.demo_pretrain_updates=1"])
    stream, learner = demo_source(config).build(), _learner(config)
    first = metrics_to_floats(learner.demo_update(stream.next(64)))
    for _ in range(400):
        last = metrics_to_floats(learner.demo_update(stream.next(64)))
    assert learner.updates == 401
    assert last["demo_margin_loss"] < first["demo_margin_loss"] / 2
    assert last["demo_accuracy"] >= 0.8  # ~0.95 after 400 updates; 1/15 by chance


def test_an_update_with_demonstrations_adds_their_loss():
    config = load_config(None, [*ARITHMETIC, "learner.demo_batch_size=16"])
    stream = demo_source(config).build()
    batch, demo = stream.next(64), stream.next(16)
    plain, with_demo = _learner(config), _learner(config)
    expected = plain.demo_loss(demo)[0].item()
    _, m0 = plain.update(batch)
    _, m1 = with_demo.update(batch, demo)
    m0, m1 = metrics_to_floats(m0), metrics_to_floats(m1)
    assert m1["loss"] == pytest.approx(m0["loss"] + expected, rel=1e-5)
    assert {"demo_td_loss", "demo_margin_loss", "demo_accuracy"} <= m1.keys()
    assert not any(k.startswith("demo_") for k in m0)


@pytest.mark.parametrize("td_weight, margin_weight", [(0.0, 1.0), (0.5, 2.0), (1.0, 0.0)])
def test_the_demonstration_loss_weighs_its_td_and_margin_parts(td_weight, margin_weight):
    weights = [f"learner.demo_td_weight={td_weight}", f"learner.demo_margin_weight={margin_weight}"]
    config = load_config(None, [*ARITHMETIC, "learner.demo_batch_size=16", *weights])
    demo = demo_source(config).build().next(16)
    loss, metrics = _learner(config).demo_loss(demo)
    td = metrics["demo_td_loss"].item() if td_weight else 0.0  # weight 0: the TD part is not computed at all
    assert ("demo_td_loss" in metrics) == (td_weight > 0)
    assert metrics["demo_margin_loss"].item() > 0 and (td > 0 or not td_weight)
    assert loss.item() == pytest.approx(td_weight * td + margin_weight * metrics["demo_margin_loss"].item(), rel=1e-6)


@pytest.mark.parametrize("episodes", [False, True])
def test_without_its_td_part_the_demonstration_loss_reads_the_same_q_of_s(episodes):
    """`demo_td_weight` 0 skips the target pass and the s' positions; the margin on Q(s, .) is the one the full
    pass gives, single transitions and whole episodes alike."""
    base = [*WORDLE, "env.options.solver_choice=random", "learner.demo_batch_size=8"]
    base.append(f"learner.demo_episodes={str(episodes).lower()}")
    demo = demo_source(load_config(None, base)).build().next(8)
    margins = []
    for td_weight in (1.0, 0.0):
        config = load_config(None, [*base, f"learner.demo_td_weight={td_weight}"])
        loss, metrics = _learner(config).demo_loss(demo)
        margins.append(metrics["demo_margin_loss"].item())
        if not td_weight:
            assert loss.item() == pytest.approx(margins[-1], rel=1e-6)
    assert margins[0] == pytest.approx(margins[1], rel=1e-5)


@pytest.mark.parametrize("episodes", [False, True])
def test_the_local_runtime_pretrains_before_it_samples_the_replay(tmp_path, episodes):
    config = load_config(
        None,
        [
            *COPY_RUN,
            "learner.demo_pretrain_updates=40",
            "learner.demo_batch_size=8",
            "learner.publish_interval_updates=10",
            f"learner.demo_episodes={str(episodes).lower()}",
            f"learner.demo_pretrain_batch_size={4 if episodes else 0}",
        ],
    )
    runtime = LocalRuntime(config)
    runtime.start()
    asked = []  # what the runtime asks the stream for: batch_size (64), or the pre-training's own size
    draw = runtime.demos.next
    runtime.demos.next = lambda n: asked.append(n) or draw(n)
    progress = runtime.advance(60.0, updates_left=40)
    assert asked == [4 if episodes else 64] * 40
    assert progress.updates == 40 and runtime.limiter.sampled == 0  # demonstrations only, so far
    assert runtime.learner.version >= 4  # pre-training publishes like any update
    assert "learner.demo_margin_loss" in progress.metrics
    progress = runtime.advance(60.0, updates_left=10)
    assert progress.updates == 50 and runtime.limiter.sampled == 10 * 64  # then the replay, with demos beside it
    assert asked[40:] == [8] * 10  # demo_batch_size
    assert {"learner.demo_accuracy", "learner.q_mean"} <= progress.metrics.keys()  # both losses in one update


# ---- whole episodes (learner.demo_episodes) ---------------------------------------------------------------------
EPISODES = [*WORDLE, "learner.demo_episodes=true", "learner.demo_batch_size=8", "actor.n_step=3"]


def test_a_batch_of_episodes_holds_each_episode_whole_on_one_row():
    config = load_config(None, EPISODES)
    batch = demo_source(config).build().next(6)
    tokens, row, len_s, len_next = batch[spec.TOKENS], batch[spec.ROW], batch[spec.LEN_S], batch[spec.LEN_NEXT]
    assert tokens.shape[0] == 6 and set(row.tolist()) == set(range(6))
    assert (np.diff(row) >= 0).all()  # an episode's transitions together, in row order
    np.testing.assert_array_equal(tokens[row, len_s], batch[spec.ACTION])  # every action is its row's next token
    for r in range(6):
        ls, ln = len_s[row == r], len_next[row == r]
        assert ls[0] == 1 and (np.diff(ls) > 0).all()  # from the prompt (<wordle>) on, in order
        # n = 3: a transition's s' is the s of the one three letters later (a guess's feedback included)
        np.testing.assert_array_equal(ln[:-3], ls[3:])
        guesses = (ln[-1] - 1) // 10  # each guess: 5 letters, then 5 feedback tokens
        assert len(ls) == 5 * guesses  # one transition per letter played
        assert ln.max() == ln[-1] and (tokens[r, ln[-1] :] == 0).all()  # the row is the whole episode, no more
    ends = np.r_[np.flatnonzero(np.diff(row)), len(row) - 1]
    np.testing.assert_array_equal(batch[spec.DISCOUNT][ends], 0.0)  # every episode ended (solved or out of guesses)
    assert len(batch[spec.MASK_S]) == len(row) == len(batch[spec.RETURN])


@pytest.mark.parametrize(
    "network",
    [[], ["network.trunk=transformer", "network.num_layers=2", "network.num_heads=4", "network.hidden_dim=32"]],
)
def test_a_batch_of_episodes_gives_each_transition_the_loss_of_its_own_row(network):
    config = load_config(None, [*EPISODES, *network])
    batch = demo_source(config).build().next(5)
    apart = {k: v for k, v in batch.items() if k != spec.ROW}
    apart[spec.TOKENS] = batch[spec.TOKENS][batch[spec.ROW]]  # one row per transition, as the replay stores them
    a, b = _learner(config), _learner(config)
    (loss_rows, m_rows), (loss_apart, m_apart) = a.demo_loss(batch), b.demo_loss(apart)
    assert loss_rows.item() == pytest.approx(loss_apart.item(), rel=1e-5)
    for key in m_rows:
        assert m_rows[key].item() == pytest.approx(m_apart[key].item(), rel=1e-5, abs=1e-6)
    loss_rows.backward()
    loss_apart.backward()
    for (name, p), q in zip(a.online.named_parameters(), b.online.parameters(), strict=True):
        torch.testing.assert_close(p.grad, q.grad, rtol=1e-4, atol=1e-6, msg=name)


def test_a_batch_of_episodes_costs_one_row_per_episode():
    transitions = demo_source(load_config(None, [*WORDLE, "learner.demo_batch_size=8"])).build().next(8)
    episodes = demo_source(load_config(None, EPISODES)).build().next(8)
    assert transitions[spec.TOKENS].shape[0] == episodes[spec.TOKENS].shape[0] == 8
    assert len(episodes[spec.ACTION]) >= 8 * 5  # at least a guess of five letters per episode
