"""The copy head: a bonus exactly for the tokens in the visible prefix, equal to their best attention score."""

import numpy as np
import pytest
import torch

from distdqn.copy_head import CopyHead

torch.set_num_threads(1)
V, H, E = 9, 6, 5


def _setup(seed=0):
    torch.manual_seed(seed)
    head = CopyHead(H, E, V, dim=4)
    tokens = torch.tensor([[3, 5, 3, 7, 0, 0], [2, 2, 8, 1, 4, 6]])
    embeds = torch.randn(2, 6, E)
    return head, tokens, embeds


def test_bonus_is_the_best_score_of_each_visible_token_and_zero_elsewhere():
    head, tokens, embeds = _setup()
    positions = torch.tensor([[0, 2, 5], [1, 3, 5]])
    features = torch.randn(2, 3, H)
    with torch.no_grad():
        bonus = head(features, embeds, tokens, positions)
        scores = torch.einsum("bkd,bld->bkl", head.query(features), head.key(embeds)) * head.scale
    for b in range(2):
        for k in range(3):
            t = int(positions[b, k])
            for a in range(V):
                js = [j for j in range(t + 1) if int(tokens[b, j]) == a and a != 0]
                want = max(float(scores[b, k, j]) for j in js) if js else 0.0
                assert abs(float(bonus[b, k, a]) - want) < 1e-5, (b, k, a)


def test_causal_tokens_after_the_position_do_not_count():
    head, tokens, embeds = _setup()
    positions = torch.tensor([[1], [2]])
    features = torch.randn(2, 1, H)
    changed, embeds2 = tokens.clone(), embeds.clone()
    changed[0, 2:] = 4
    changed[1, 3:] = 5
    embeds2[:, 3:] = torch.randn(2, 3, E)
    with torch.no_grad():
        before = head(features, embeds, tokens, positions)
        after = head(features, embeds2, changed, positions)
    torch.testing.assert_close(before, after)
    assert float(after[0, 0, 4]) == 0.0 and float(after[1, 0, 5]) == 0.0


def test_pad_never_gets_a_bonus_and_gradients_are_finite():
    head, tokens, embeds = _setup()
    positions = torch.tensor([[5], [5]])
    features = torch.randn(2, 1, H, requires_grad=True)
    bonus = head(features, embeds, tokens, positions)
    assert np.all(bonus[:, :, 0].detach().numpy() == 0.0)
    bonus.sum().backward()
    for p in [features.grad, *[q.grad for q in head.parameters()]]:
        assert p is not None and torch.isfinite(p).all()
    assert features.grad.abs().sum() > 0


def test_positional_keys_start_at_zero_and_then_point_by_place():
    torch.manual_seed(0)
    content = CopyHead(H, E, V, dim=4)
    placed = CopyHead(H, E, V, dim=4, max_len=6)
    placed.load_state_dict({**content.state_dict(), "position.weight": torch.zeros(6, 4)})
    tokens = torch.tensor([[3, 5, 3, 7, 0, 0], [2, 2, 8, 1, 4, 6]])
    embeds, features = torch.randn(2, 6, E), torch.randn(2, 2, H)
    positions = torch.tensor([[3, 3], [5, 5]])
    with torch.no_grad():
        torch.testing.assert_close(
            placed(features, embeds, tokens, positions), content(features, embeds, tokens, positions)
        )
        # Keys of no content and one-hot places: a query for place j scores the token at j highest, whatever it is.
        placed.key.weight.zero_()
        placed.key.bias.zero_()
        placed.position.weight.copy_(torch.eye(6, 4) * 10)
        placed.query.weight.zero_()
        for j in range(4):
            placed.query.bias.copy_(torch.eye(4)[j])
            bonus = placed(features, embeds, tokens, positions)
            for b in range(2):
                assert int(bonus[b, 0].argmax()) == int(tokens[b, j]), (b, j)
    with pytest.raises(ValueError, match="knows 6 positions"):
        placed(features, torch.randn(2, 7, E), torch.ones(2, 7, dtype=torch.long), positions)
