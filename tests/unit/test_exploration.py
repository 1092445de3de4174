"""Exploration: the Ape-X ladder, the decay schedule, and masked action selection."""

import numpy as np
import pytest

from distdqn.exploration import boltzmann, decayed_epsilon, epsilon_greedy, epsilon_ladder, greedy, random_legal


@pytest.mark.parametrize(
    "i,n,expected",
    [(0, 1, 0.4), (0, 8, 0.4), (7, 8, 0.4**8), (1, 2, 0.4**8), (2, 3, 0.4**8), (1, 3, 0.4**4.5)],
)
def test_ladder(i, n, expected):
    assert epsilon_ladder(i, n, 0.4, 7.0) == pytest.approx(expected)


def test_ladder_is_monotone_and_rejects_bad_index():
    eps = [epsilon_ladder(i, 16) for i in range(16)]
    assert bool(np.all(np.diff(eps) < 0))
    with pytest.raises(ValueError, match="actor_index"):
        epsilon_ladder(3, 3)


@pytest.mark.parametrize("step,expected", [(0, 1.0), (50, 0.55), (100, 0.1), (1000, 0.1), (-5, 1.0)])
def test_linear_decay(step, expected):
    assert decayed_epsilon(step, 0.1, 100) == pytest.approx(expected)


def test_no_decay_is_the_final_value():
    assert decayed_epsilon(0, 0.3, 0) == 0.3


Q = np.array([[9.0, 1.0, 3.0, 2.0], [9.0, 5.0, 0.0, 1.0]])
MASK = np.array([[True, True, False, True], [True, False, True, True]])


def test_greedy_skips_pad_and_masked():
    assert greedy(Q).tolist() == [2, 1]
    assert greedy(Q, MASK).tolist() == [3, 3]


def test_epsilon_zero_is_greedy_and_one_is_uniform_over_legal():
    rng = np.random.default_rng(0)
    assert epsilon_greedy(Q, 0.0, rng, MASK).tolist() == [3, 3]
    q = np.repeat(Q, 2000, axis=0)
    m = np.repeat(MASK, 2000, axis=0)
    acts = epsilon_greedy(q, 1.0, rng, m)
    assert m[np.arange(len(acts)), acts].all() and (acts != 0).all()
    counts = np.bincount(acts[:2000], minlength=4)  # row 0 (repeated) has legal {1, 3}
    assert counts[1] == pytest.approx(1000, rel=0.1) and counts[3] == pytest.approx(1000, rel=0.1)


def test_per_slot_epsilon_vector():
    rng = np.random.default_rng(1)
    q = np.tile([0.0, 0.0, 0.0, 5.0], (4000, 1))
    eps = np.where(np.arange(4000) < 2000, 0.0, 1.0)
    acts = epsilon_greedy(q, eps, rng)
    assert (acts[:2000] == 3).all() and 0.2 < (acts[2000:] == 3).mean() < 0.45


def test_random_legal_without_mask_never_pad():
    acts = random_legal(np.random.default_rng(0), 1000, 5)
    assert acts.min() == 1 and acts.max() == 4


def test_boltzmann_frequencies_follow_softmax_over_legal():
    rng = np.random.default_rng(0)
    q = np.tile([100.0, 0.0, np.log(3.0), -50.0], (20000, 1))
    acts = boltzmann(q, 1.0, rng)
    freq = np.bincount(acts, minlength=4) / len(acts)
    assert freq[0] == 0 and freq[1] == pytest.approx(0.25, abs=0.02) and freq[2] == pytest.approx(0.75, abs=0.02)
