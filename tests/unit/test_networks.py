"""Q-network: incremental actor path == learner forward, dueling head, action masks."""

import numpy as np
import pytest
import torch

from distdqn.config import NetworkConfig
from distdqn.networks import PAD_ID, build_network, mask_q, unpack_mask
from tests.unit.network_checks import check_advance_matches_q_all, check_causal

torch.set_num_threads(1)
TRUNKS = [  # the default copy head is on; one variant without it keeps the plain head's paths covered
    NetworkConfig(trunk="gru", embed_dim=16, hidden_dim=24, num_layers=2),
    NetworkConfig(trunk="transformer", hidden_dim=24, num_layers=2, num_heads=4),
    NetworkConfig(trunk="transformer", hidden_dim=24, num_layers=2, num_heads=4, positions="rotary"),
    NetworkConfig(trunk="transformer", hidden_dim=24, num_layers=2, num_heads=4, positions="none", copy_head=False),
    NetworkConfig(trunk="gru", embed_dim=16, hidden_dim=24, num_layers=1, copy_head=False),
    NetworkConfig(trunk="gru", embed_dim=16, hidden_dim=24, num_layers=1, align_head=True, align_dim=8),
]


def _cfg_id(cfg: NetworkConfig) -> str:
    positions = f"-{cfg.positions}" if cfg.trunk == "transformer" else ""
    return cfg.trunk + positions + ("" if cfg.copy_head else "-nocopy") + ("-align" if cfg.align_head else "")


def _net(cfg, vocab=10, max_len=12, seed=0):
    torch.manual_seed(seed)
    net = build_network(cfg, vocab, max_len).eval()
    if net.align is not None:  # its lexicon starts at zero: give the head something to contribute
        torch.nn.init.normal_(net.align.lexicon.weight)
    return net


@pytest.mark.parametrize("cfg", TRUNKS, ids=_cfg_id)
@pytest.mark.parametrize("task", ["tests.fakes:CopyEnv", "tests.fakes:FeedbackEnv"])
def test_advance_matches_q_all_through_resets_and_multi_token_steps(cfg, task):
    check_advance_matches_q_all(lambda env: _net(cfg, env.vocab_size, env.max_len), task)


@pytest.mark.parametrize("cfg", TRUNKS[:3], ids=_cfg_id)
def test_mixed_batch_of_one_and_many_token_advances(cfg):
    """Slots that grew by one token and slots that grew by several go through separate sub-batches (the GRU's
    cell step and sequence forward; the Transformer's cache rows): each gets the Q of its own last position."""
    net = _net(cfg, vocab=10, max_len=12)
    tokens = np.random.default_rng(0).integers(1, 10, size=(4, 12)).astype(np.int32)
    with torch.no_grad():
        state = net.initial_state(4)
        state, _ = net.advance(state, tokens, np.array([2, 3, 1, 4]), np.ones(4, bool))
        state, q = net.advance(state, tokens, np.array([3, 7, 2, 12]))  # +1, +4, +1, +8
        full = net.q_all(torch.from_numpy(tokens).long())
        torch.testing.assert_close(q, full[torch.arange(4), torch.tensor([2, 6, 1, 11])], atol=1e-5, rtol=1e-5)


def test_advance_rejects_slot_that_did_not_grow():
    net = _net(TRUNKS[0])
    tokens = np.ones((2, 12), dtype=np.int32)
    with torch.no_grad():
        state, _ = net.advance(net.initial_state(2), tokens, np.array([2, 2]), np.ones(2, bool))
        with pytest.raises(ValueError, match="did not grow"):
            net.advance(state, tokens, np.array([3, 2]))


@pytest.mark.parametrize("cfg", TRUNKS, ids=_cfg_id)
def test_q_at_equals_q_all_gathered(cfg):
    net = _net(cfg)
    tokens = torch.randint(1, 10, (3, 12))
    pos = torch.tensor([[0, 5], [3, 11], [2, 2]])
    with torch.no_grad():
        full = net.q_all(tokens)
        torch.testing.assert_close(net.q_at(tokens, pos), full[torch.arange(3)[:, None], pos])


@pytest.mark.parametrize("positions", ["learned", "rotary", "none"])
def test_transformer_features_at_equal_the_full_forward_and_so_do_their_gradients(positions):
    """The last block attends from the asked positions only; features and the gradients reaching every weight are
    those of the full forward gathered there."""
    cfg = NetworkConfig(trunk="transformer", hidden_dim=24, num_layers=3, num_heads=4, positions=positions)
    net = _net(cfg)
    tokens = torch.randint(1, 10, (4, 12))
    pos = torch.tensor([[0, 5], [3, 11], [2, 2], [10, 7]])
    full = net.features(tokens)[torch.arange(4)[:, None], pos]
    at = net.features_at(tokens, pos)
    torch.testing.assert_close(at, full, atol=1e-5, rtol=1e-5)
    weights = torch.randn_like(full)
    grads_full = torch.autograd.grad((full * weights).sum(), list(net.trunk.parameters()), allow_unused=True)
    grads_at = torch.autograd.grad((at * weights).sum(), list(net.trunk.parameters()), allow_unused=True)
    for g_full, g_at in zip(grads_full, grads_at, strict=True):
        if g_full is None:
            assert g_at is None or not g_at.any()
        else:
            torch.testing.assert_close(g_at, g_full, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("cfg", TRUNKS, ids=_cfg_id)
def test_causal_future_tokens_do_not_change_earlier_q(cfg):
    check_causal(_net(cfg))


def test_dueling_advantage_is_mean_zero():
    net = _net(TRUNKS[0])
    with torch.no_grad():
        feats = net.features(torch.randint(1, 10, (3, 12)))
        adv = net.head.advantage(feats)
        q = net.head(feats)
        centred = q - net.head.value(feats)
        torch.testing.assert_close(centred, adv - adv.mean(-1, keepdim=True))
        torch.testing.assert_close(centred.mean(-1), torch.zeros(3, 12), atol=1e-6, rtol=0)


def test_mask_q_sets_pad_and_masked_actions_to_minus_inf():
    q = torch.tensor([[5.0, 1.0, 2.0, 3.0], [9.0, 4.0, 0.0, 1.0]])
    mask = torch.tensor([[True, True, True, False], [True, False, True, True]])
    m = mask_q(q, mask)
    assert torch.isinf(m[:, PAD_ID]).all() and m[0, 3] == -np.inf and m[1, 1] == -np.inf
    assert m.argmax(-1).tolist() == [2, 3]
    assert mask_q(q).argmax(-1).tolist() == [3, 1]
    assert q[0, 0] == 5.0  # out of place


def test_unpack_mask_matches_numpy_packbits():
    mask = np.random.default_rng(0).random((4, 13)) < 0.5
    packed = np.packbits(mask, axis=-1, bitorder="little")
    assert unpack_mask(torch.from_numpy(packed), 13).numpy().tolist() == mask.tolist()


@pytest.mark.parametrize("cfg", TRUNKS, ids=_cfg_id)
def test_peek_reads_a_longer_sequence_without_changing_the_state(cfg):
    net = _net(cfg, vocab=10, max_len=12)
    tokens = np.random.default_rng(1).integers(1, 10, size=(3, 12)).astype(np.int32)
    with torch.no_grad():
        state, _ = net.advance(net.initial_state(3), tokens, np.array([2, 3, 4]), np.ones(3, bool))
        hidden = None if state.hidden is None else state.hidden.clone()
        cache = None if state.cache is None else [t.clone() for t in state.cache.keys + state.cache.values]
        q = net.peek(state, np.array([2, 0]), tokens[[2, 0]], np.array([5, 6]))  # +1 and +4 tokens
        full = net.q_all(torch.from_numpy(tokens).long())
        torch.testing.assert_close(q, full[torch.tensor([2, 0]), torch.tensor([4, 5])], atol=1e-5, rtol=1e-5)
        assert state.consumed.tolist() == [2, 3, 4]
        if hidden is not None:
            assert torch.equal(state.hidden, hidden)
        if cache is not None:
            assert all(torch.equal(a, b) for a, b in zip(state.cache.keys + state.cache.values, cache, strict=True))


def test_transformer_cache_holds_each_slots_keys_and_a_reset_slot_starts_over():
    """The cache is the actor's whole memory of a slot: after a slot is reset and refilled with another prompt, its
    Q-values are those of the new prefix alone (stale keys past the new length are never attended), and a slot that
    was not reset keeps its own."""
    net = _net(TRUNKS[1], vocab=10, max_len=12)
    rng = np.random.default_rng(2)
    first, second = (rng.integers(1, 10, size=(2, 12)).astype(np.int32) for _ in range(2))
    with torch.no_grad():
        state, _ = net.advance(net.initial_state(2), first, np.array([9, 9]), np.ones(2, bool))
        mixed = np.stack([second[0], first[1]])  # slot 0: a new, shorter episode; slot 1 goes on
        state, q = net.advance(state, mixed, np.array([3, 10]), np.array([True, False]))
        want = net.q_all(torch.from_numpy(mixed).long())[torch.arange(2), torch.tensor([2, 9])]
        torch.testing.assert_close(q, want, atol=1e-5, rtol=1e-5)


def test_transformer_advance_past_max_len_is_named():
    net = _net(TRUNKS[1], vocab=10, max_len=6)
    tokens = np.ones((1, 8), dtype=np.int32)
    with torch.no_grad(), pytest.raises(ValueError, match="exceeds the network's max_len 6"):
        net.advance(net.initial_state(1), tokens, np.array([8]), np.ones(1, bool))
