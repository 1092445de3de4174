"""The alignment head: a softmax over the visible prefix, read through the lexicon; zero until the lexicon learns."""

import pytest
import torch

from distdqn.align_head import MAX_VOCAB, AlignHead
from distdqn.config import NetworkConfig
from distdqn.networks import build_network

torch.set_num_threads(1)
V, H, E, L = 9, 6, 5, 6


def _setup(seed=0):
    torch.manual_seed(seed)
    head = AlignHead(H, E, V, dim=4, max_len=L)
    torch.nn.init.normal_(head.lexicon.weight)
    torch.nn.init.normal_(head.position.weight)
    tokens = torch.tensor([[3, 5, 3, 7, 0, 0], [2, 2, 8, 1, 4, 6]])
    embeds = torch.randn(2, L, E)
    return head, tokens, embeds


def test_bonus_is_the_attention_weighted_lexicon_rows_of_the_visible_tokens():
    head, tokens, embeds = _setup()
    feats, positions = torch.randn(2, 2, H), torch.tensor([[1, 3], [0, 5]])
    bonus = head(feats, embeds, tokens, positions)
    assert bonus.shape == (2, 2, V)
    for b in range(2):
        for k in range(2):
            t = int(positions[b, k])
            seen = [j for j in range(t + 1) if tokens[b, j] != 0]
            q = head.query(feats[b, k])
            scores = torch.stack([q @ (head.key(embeds[b, j]) + head.position.weight[j]) for j in seen]) * head.scale
            alpha = torch.softmax(scores, dim=0)
            expected = sum(a * head.lexicon.weight[tokens[b, j]] for a, j in zip(alpha, seen, strict=True))
            torch.testing.assert_close(bonus[b, k], expected, rtol=1e-5, atol=1e-6)


def test_tokens_after_the_position_and_pads_do_not_count():
    head, tokens, embeds = _setup()
    feats, positions = torch.randn(2, 1, H), torch.tensor([[3], [2]])
    before = head(feats, embeds, tokens, positions)
    later = tokens.clone()
    later[0, 4:] = torch.tensor([8, 8])  # row 0: pads after the position become tokens
    later[1, 3:] = torch.tensor([5, 5, 5])  # row 1: tokens after the position change
    embeds2 = embeds.clone()
    embeds2[0, 4:], embeds2[1, 3:] = torch.randn(L - 4, E), torch.randn(L - 3, E)
    torch.testing.assert_close(head(feats, embeds2, later, positions), before)


def test_a_row_with_nothing_visible_gets_a_finite_bonus():
    head, _, embeds = _setup()
    tokens = torch.zeros(1, L, dtype=torch.long)  # all <pad>
    bonus = head(torch.randn(1, 1, H), embeds[:1], tokens, torch.tensor([[2]]))
    assert torch.isfinite(bonus).all()


def test_a_new_network_with_the_head_gives_the_q_values_of_one_without_it():
    plain = build_network(NetworkConfig(embed_dim=8, hidden_dim=16), vocab_size=V, max_len=L)
    torch.manual_seed(1)
    aligned = build_network(NetworkConfig(embed_dim=8, hidden_dim=16, align_head=True), vocab_size=V, max_len=L)
    aligned.load_state_dict(plain.state_dict(), strict=False)  # the same trunk and heads; the lexicon is zero
    tokens = torch.tensor([[3, 5, 3, 7, 0, 0], [2, 2, 8, 1, 4, 6]])
    torch.testing.assert_close(aligned.q_all(tokens), plain.q_all(tokens))
    aligned.align.lexicon.weight.data.normal_()
    assert not torch.allclose(aligned.q_all(tokens), plain.q_all(tokens))


def test_gradients_reach_the_lexicon_and_the_attention():
    head, tokens, embeds = _setup()
    feats, positions = torch.randn(2, H), torch.tensor([3, 5])
    head.bonus_of(feats, embeds, tokens, positions, torch.tensor([4, 2])).sum().backward()
    assert head.lexicon.weight.grad[[3, 5, 7], 4].abs().min() > 0  # row 0's visible tokens, column of its action
    assert head.lexicon.weight.grad[0].abs().max() == 0  # <pad> is never attended to
    assert head.query.weight.grad.abs().max() > 0 and head.key.weight.grad.abs().max() > 0


def test_a_vocabulary_too_large_for_the_lexicon_is_refused_with_the_key_named():
    with pytest.raises(ValueError, match="network.align_head"):
        AlignHead(H, E, MAX_VOCAB + 1, dim=4, max_len=L)
