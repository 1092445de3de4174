"""N-step assembly: the episode-boundary table, run for several slots at once in one assembler."""

import numpy as np
import pytest

from distdqn import spec
from distdqn.envs.base import Obs, StepInfo
from distdqn.nstep import ENV_SLOT, NStepAssembler

L = 24
Q_NEXT, Q_FINAL, Q_SA = 10.0, 20.0, 1.0


def run_script(scripts, n, gamma, prompt_len=2, growth=1, with_mask=False, with_env_slot=False):
    """Drive one assembler with B scripted slots. scripts[b] = list of (reward, outcome) with outcome in
    {'', 'term', 'trunc'}; slot b's k-th action is 10*b + k + 1, so emitted items name their slot and step.
    Each step appends the action and growth-1 feedback tokens. Returns emitted items per slot, sorted by action."""
    b_count, steps = len(scripts), len(scripts[0])
    asm = NStepAssembler(b_count, n, gamma, vocab_size=100, max_len=L, with_mask=with_mask, with_env_slot=with_env_slot)
    seqs = [[7] * prompt_len for _ in range(b_count)]
    for k in range(steps):
        len_s = np.array([len(s) for s in seqs])
        actions = np.array([10 * b + k + 1 for b in range(b_count)])
        reward = np.array([scripts[b][k][0] for b in range(b_count)], np.float32)
        outcome = [scripts[b][k][1] for b in range(b_count)]
        for b in range(b_count):
            seqs[b] += [actions[b]] + [99] * (growth - 1)
        done = np.array([b for b in range(b_count) if outcome[b]], dtype=np.int64)
        final = np.zeros((done.size, L), np.int32)
        for i, b in enumerate(done):
            final[i, : len(seqs[b])] = seqs[b]
        final_len = np.array([len(seqs[b]) for b in done], np.int32)
        for b in done:
            seqs[b] = [7] * prompt_len
        tokens = np.zeros((b_count, L), np.int32)
        for b in range(b_count):
            tokens[b, : len(seqs[b])] = seqs[b]
        mask = np.ones((b_count, 100), bool) if with_mask else None
        obs = Obs(tokens, np.array([len(s) for s in seqs], np.int32), mask)
        info = StepInfo(done, final, final_len, np.zeros(done.size, np.float32))
        terminated = np.array([o == "term" for o in outcome])
        asm.add(
            len_s,
            actions,
            np.full(b_count, Q_SA),
            reward,
            terminated,
            obs,
            info,
            np.full(b_count, Q_NEXT, np.float32),
            np.full(done.size, Q_FINAL, np.float32),
        )
    fields, prio = asm.drain()
    items = {b: [] for b in range(b_count)}
    for i in range(len(prio)):
        a = int(fields[spec.ACTION][i])
        row = fields[spec.TOKENS][i]
        assert row[fields[spec.LEN_S][i]] == a  # the action sits right after s in the shared row
        items[(a - 1) // 10].append(
            (
                a % 10,
                int(fields[spec.LEN_S][i]),
                int(fields[spec.LEN_NEXT][i]),
                round(float(fields[spec.RETURN][i]), 6),
                round(float(fields[spec.DISCOUNT][i]), 6),
                round(float(prio[i]), 6),
            )
        )
    return {b: sorted(v) for b, v in items.items()}, fields


def prio(ret, disc, boot):
    return round(abs(ret + disc * boot - Q_SA), 6)


# name, script of (reward, outcome) per step, expected items (step+1, len_s, len_next, return, discount, priority)
# n = 3, gamma = 0.5, prompt length 2
CASES = [
    ("window not full yet at episode start", [(1, ""), (2, "")], []),
    (
        "normal emission once the window fills",
        [(1, ""), (2, ""), (4, ""), (8, "")],
        [(1, 2, 5, 3.0, 0.125, prio(3, 0.125, Q_NEXT)), (2, 3, 6, 6.0, 0.125, prio(6, 0.125, Q_NEXT))],
    ),
    (
        "terminated inside the window flushes with discount 0",
        [(1, ""), (2, "term")],
        [(1, 2, 4, 2.0, 0.0, 1.0), (2, 3, 4, 2.0, 0.0, 1.0)],
    ),
    (
        "truncated flushes with gamma^m",
        [(1, ""), (2, "trunc")],
        [(1, 2, 4, 2.0, 0.25, prio(2, 0.25, Q_FINAL)), (2, 3, 4, 2.0, 0.5, prio(2, 0.5, Q_FINAL))],
    ),
    (
        "terminated on the step the window fills",
        [(1, ""), (2, ""), (4, "term")],
        [(1, 2, 5, 3.0, 0.0, 2.0), (2, 3, 5, 4.0, 0.0, 3.0), (3, 4, 5, 4.0, 0.0, 3.0)],
    ),
    (
        "back-to-back episodes in one slot",
        [(1, "term"), (4, "trunc"), (2, ""), (8, "term")],
        [
            (1, 2, 3, 1.0, 0.0, 0.0),
            (2, 2, 3, 4.0, 0.5, prio(4, 0.5, Q_FINAL)),
            (3, 2, 4, 6.0, 0.0, 5.0),
            (4, 3, 4, 8.0, 0.0, 7.0),
        ],
    ),
    (
        "no emission crosses an episode boundary",
        [(1, ""), (2, "term"), (4, ""), (8, ""), (16, "")],
        [(1, 2, 4, 2.0, 0.0, 1.0), (2, 3, 4, 2.0, 0.0, 1.0), (3, 2, 5, 4 + 4 + 4, 0.125, prio(12, 0.125, Q_NEXT))],
    ),
]


@pytest.mark.parametrize("name,script,expected", CASES, ids=[c[0] for c in CASES])
def test_boundary_table(name, script, expected):
    got, _ = run_script([script], n=3, gamma=0.5)
    assert got[0] == expected


def test_vectorised_slots_equal_independent_runs():
    steps = max(len(c[1]) for c in CASES) + 2
    scripts = [c[1] + [(3, "")] * (steps - len(c[1])) for c in CASES]
    together, _ = run_script(scripts, n=3, gamma=0.5)
    for b, script in enumerate(scripts):
        alone, _ = run_script([script], n=3, gamma=0.5)
        assert [(i[0] % 10,) + i[1:] for i in together[b]] == alone[0], CASES[b][0]


def test_multi_token_observation_growth():
    got, fields = run_script([[(1, ""), (1, ""), (1, ""), (1, "term")]], n=2, gamma=1.0, growth=3)
    assert got[0] == [
        (1, 2, 8, 2.0, 1.0, prio(2, 1, Q_NEXT)),
        (2, 5, 11, 2.0, 1.0, prio(2, 1, Q_NEXT)),
        (3, 8, 14, 2.0, 0.0, 1.0),
        (4, 11, 14, 1.0, 0.0, 0.0),
    ]
    assert fields[spec.TOKENS].dtype == np.uint8 and fields[spec.LEN_S].dtype == np.int16


def test_n1_emits_every_step():
    got, _ = run_script([[(1, ""), (2, ""), (3, "trunc")]], n=1, gamma=0.9)
    assert got[0] == [
        (1, 2, 3, 1.0, 0.9, prio(1, 0.9, Q_NEXT)),
        (2, 3, 4, 2.0, 0.9, prio(2, 0.9, Q_NEXT)),
        (3, 4, 5, 3.0, 0.9, prio(3, 0.9, Q_FINAL)),
    ]


def test_dtypes_match_spec_and_mask_is_packed():
    _, fields = run_script([[(1, ""), (1, ""), (1, "")]], n=1, gamma=0.9, with_mask=True)
    for name, (dtype, shape) in spec.transition_dtypes(100, L, with_mask=True).items():
        assert fields[name].dtype == dtype and fields[name].shape[1:] == shape, name
    assert np.unpackbits(fields[spec.MASK_NEXT], axis=-1, bitorder="little")[:, :100].all()


def test_with_env_slot_each_transition_names_its_slot():
    steps = max(len(c[1]) for c in CASES) + 2
    scripts = [c[1] + [(3, "")] * (steps - len(c[1])) for c in CASES]
    _, fields = run_script(scripts, n=3, gamma=0.5, with_env_slot=True)
    np.testing.assert_array_equal(fields[ENV_SLOT], (fields[spec.ACTION].astype(int) - 1) // 10)  # action 10b + k
    assert fields[ENV_SLOT].dtype == np.int32 and len(set(fields[ENV_SLOT].tolist())) == len(scripts) > 1
    empty, _ = NStepAssembler(2, 3, 0.9, vocab_size=100, max_len=L, with_env_slot=True).drain()
    assert empty[ENV_SLOT].shape == (0,)
    _, plain = run_script(scripts, n=3, gamma=0.5)
    assert ENV_SLOT not in plain


def test_drain_empty_has_spec_layout():
    fields, prio_ = NStepAssembler(2, 3, 0.9, vocab_size=300, max_len=L).drain()
    assert fields[spec.TOKENS].shape == (0, L) and fields[spec.TOKENS].dtype == np.uint16 and prio_.shape == (0,)


@pytest.mark.parametrize("n", [1, 3])
def test_with_mask_s_each_transition_carries_the_mask_it_was_taken_under(n):
    b_count, vocab, steps = 3, 100, 7
    asm = NStepAssembler(b_count, n, 0.9, vocab_size=vocab, max_len=L, with_mask_s=True)
    tokens = np.full((b_count, L), 7, np.int32)
    for k in range(steps):
        actions = np.array([10 * b + k + 1 for b in range(b_count)])
        mask_s = np.zeros((b_count, vocab), bool)
        mask_s[np.arange(b_count), actions] = True  # step k's mask names step k's action only
        mask_s[:, 50 + k] = True
        tokens[:, 2 + k] = actions
        done = np.array([1], np.int64) if k == 4 else np.zeros(0, np.int64)  # slot 1 terminates at step 4
        info = StepInfo(done, tokens[done].copy(), np.full(done.size, 3 + k, np.int32), np.zeros(done.size, np.float32))
        obs = Obs(tokens.copy(), np.full(b_count, 3 + k, np.int32), None)
        zeros = np.zeros(b_count, np.float32)
        asm.add(
            np.full(b_count, 2 + k),
            actions,
            zeros,
            zeros,
            np.isin(np.arange(b_count), done),
            obs,
            info,
            zeros,
            mask_s=mask_s,
        )
    fields, _ = asm.drain()
    assert fields[spec.MASK_S].shape == (len(fields[spec.ACTION]), (vocab + 7) // 8)
    unpacked = np.unpackbits(fields[spec.MASK_S], axis=-1, bitorder="little")[:, :vocab].astype(bool)
    for row, action in zip(unpacked, fields[spec.ACTION], strict=True):
        k = (int(action) - 1) % 10
        assert set(np.flatnonzero(row)) == {int(action), 50 + k}
    with pytest.raises(ValueError, match="needs mask_s"):
        asm.add(np.full(b_count, 2), actions, zeros, zeros, np.zeros(b_count, bool), obs, info, zeros)
    empty, _ = NStepAssembler(2, 3, 0.9, vocab_size=vocab, max_len=L, with_mask_s=True).drain()
    assert empty[spec.MASK_S].shape == (0, (vocab + 7) // 8)
