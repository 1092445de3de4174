"""Q-network input options: Transformer without positions or with rotary ones, xVal-style numeric token embedding."""

import numpy as np
import pytest
import torch

from distdqn.config import NetworkConfig
from distdqn.envs import numeric_token_values
from distdqn.networks import build_network, rotary_tables, rotate
from tests.unit.network_checks import check_advance_matches_q_all, check_causal

torch.set_num_threads(1)
VARIANTS = [
    NetworkConfig(trunk="transformer", hidden_dim=24, num_layers=2, num_heads=4, positions="none"),
    NetworkConfig(trunk="transformer", hidden_dim=24, num_layers=2, num_heads=4, numeric_embedding=True),
    NetworkConfig(trunk="transformer", hidden_dim=24, num_heads=4, positions="none", numeric_embedding=True),
    NetworkConfig(trunk="gru", embed_dim=16, hidden_dim=24, numeric_embedding=True),
    NetworkConfig(trunk="transformer", hidden_dim=24, num_layers=2, num_heads=2, positions="rotary"),
]
IDS = ["tf-no-positions", "tf-numeric", "tf-no-positions-numeric", "gru-numeric", "tf-rotary"]
# a 10-token vocabulary: pad, 5 integers, 4 others
TOKENS = ["<pad>", "0", "1", "2", "7", "+", "=", "<eos>", "-4", "x"]
VALUES = numeric_token_values(TOKENS)


def _net(cfg, vocab=10, max_len=12, values=VALUES, seed=0):
    torch.manual_seed(seed)
    return build_network(cfg, vocab, max_len, values).eval()


@pytest.mark.parametrize(
    ("tokens", "want"),
    [
        (["<pad>", "0", "9", "12", "-3"], [np.nan, 0, 9, 12, -3]),
        (["+", "-", "=", "<eos>", "x1", "1x", "", "1.5", "²", "٣"], [np.nan] * 10),
    ],
)
def test_numeric_token_values(tokens, want):
    np.testing.assert_array_equal(numeric_token_values(tokens), np.array(want, dtype=np.float32))


@pytest.mark.parametrize("cfg", VARIANTS, ids=IDS)
@pytest.mark.parametrize("task", ["tests.fakes:CopyEnv", "tests.fakes:FeedbackEnv"])
def test_advance_matches_q_all(cfg, task):
    check_advance_matches_q_all(
        lambda env: _net(cfg, env.vocab_size, env.max_len, numeric_token_values(env.vocab.tokens)), task
    )


@pytest.mark.parametrize("cfg", [*VARIANTS[:3], VARIANTS[4]], ids=[*IDS[:3], IDS[4]])
def test_transformer_variants_stay_causal(cfg):
    check_causal(_net(cfg))


@pytest.mark.parametrize(("positions", "invariant"), [("none", True), ("learned", False)])
def test_without_positions_a_prefix_is_a_bag_of_tokens(positions, invariant):
    """`2+7=` and `7+2=` give the same Q at `=` without positions (commutative by construction); learned positions
    tell them apart."""
    net = _net(NetworkConfig(trunk="transformer", hidden_dim=24, num_heads=4, positions=positions))
    ab = torch.tensor([[3, 5, 4, 6]])  # 2 + 7 =
    ba = torch.tensor([[4, 5, 3, 6]])  # 7 + 2 =
    with torch.no_grad():
        same = torch.allclose(net.q_all(ab)[:, 3], net.q_all(ba)[:, 3], atol=1e-5)
    assert same == invariant


def test_rotary_scores_depend_only_on_the_offset():
    """<rot(q, m), rot(k, n)> is a function of m - n: the same pair of vectors scores the same at any shift."""
    torch.manual_seed(0)
    q, k = torch.randn(8), torch.randn(8)
    cos, sin = rotary_tables(20, 8)

    def score(m, n):
        return (rotate(q, cos[m], sin[m]) * rotate(k, cos[n], sin[n])).sum()

    for m, n in [(5, 2), (9, 9), (3, 0)]:
        for shift in (1, 7, 10):
            torch.testing.assert_close(score(m, n), score(m + shift, n + shift))
    assert not torch.isclose(score(5, 2), score(5, 3))  # a different offset scores differently
    torch.testing.assert_close(rotate(q, cos[0], sin[0]), q)  # position 0 is not turned
    torch.testing.assert_close(rotate(q, cos[6], sin[6]).norm(), q.norm())  # a rotation keeps the length


def test_rotary_positions_tell_order_apart_and_keep_no_position_table():
    """`2+7=` and `7+2=` differ with rotary positions; the state dict holds no position weights (the tables are
    fixed buffers, so a checkpoint or a weight broadcast carries nothing extra)."""
    net = _net(NetworkConfig(trunk="transformer", hidden_dim=24, num_heads=2, positions="rotary"))
    with torch.no_grad():
        ab, ba = net.q_all(torch.tensor([[3, 5, 4, 6]])), net.q_all(torch.tensor([[4, 5, 3, 6]]))
    assert not torch.allclose(ab[:, 3], ba[:, 3], atol=1e-5)
    assert not any(k.startswith("trunk.") and ("pos" in k or "rotary" in k) for k in net.state_dict())


def test_rotary_positions_need_an_even_head_width():
    with pytest.raises(ValueError, match="even head width"):
        _net(NetworkConfig(trunk="transformer", hidden_dim=24, num_heads=8, positions="rotary"))


@pytest.mark.parametrize("trunk", ["transformer", "gru"])
def test_numeric_tokens_share_one_embedding_and_differ_by_value(trunk):
    net = _net(NetworkConfig(trunk=trunk, embed_dim=16, hidden_dim=24, numeric_embedding=True))
    embed, numeric = net.trunk.embed, net.trunk.numeric
    with torch.no_grad():
        x = numeric.embed(embed, torch.arange(10))  # [V, dim]
        w = numeric.direction
        scale = 7.0  # the largest |value| among the tokens
        for i, j in [(1, 2), (1, 4), (2, 8), (4, 8)]:  # integer tokens: "0" "1" "7" "-4"
            torch.testing.assert_close(x[i] - x[j], (VALUES[i] - VALUES[j]) / scale * w)
        for i in [5, 6, 7, 9]:  # other tokens keep their own rows
            torch.testing.assert_close(x[i], embed.weight[i])


def test_numeric_state_dict_holds_only_learned_weights_and_round_trips():
    cfg = NetworkConfig(trunk="transformer", hidden_dim=24, num_heads=4, positions="none", numeric_embedding=True)
    a, b = _net(cfg, seed=0), _net(cfg, seed=1)
    state = a.state_dict()
    assert "trunk.numeric.direction" in state and "trunk.pos.weight" not in state
    assert not any(k.endswith(("values", "embed_ids")) for k in state)  # derived from the vocabulary
    b.load_state_dict(state)
    tokens = torch.randint(1, 10, (3, 12))
    with torch.no_grad():
        torch.testing.assert_close(a.q_all(tokens), b.q_all(tokens))


@pytest.mark.parametrize(("values", "match"), [(None, "got none"), (VALUES[:5], "got 5 values")])
def test_numeric_embedding_needs_one_value_per_token(values, match):
    with pytest.raises(ValueError, match=match):
        _net(NetworkConfig(numeric_embedding=True), values=values)


def test_token_values_are_ignored_when_numeric_embedding_is_off():
    cfg = NetworkConfig(trunk="transformer", hidden_dim=24, num_heads=4)
    with_values, without = _net(cfg), _net(cfg, values=None)
    assert with_values.trunk.numeric is None
    assert with_values.state_dict().keys() == without.state_dict().keys()
