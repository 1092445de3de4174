"""Finite context-free grammars compiled to DFA transition tables over token ids (validity = one lookup per token).

A `Grammar` maps nonterminals to alternatives (sequences of symbols); a symbol that is not a nonterminal is a
terminal word. Grammars here are non-recursive ("finite depth"), so their languages are finite and regular: we
inline every nonterminal occurrence into an epsilon-NFA (Thompson construction), determinise it (subset
construction) and minimise it (Moore partition refinement). The result is a `Dfa` whose table has one row per
state and one column per vocabulary id, with two reserved states:

    DEAD = 0   no continuation of the prefix is a sentence (absorbing);
    FINAL = 1  the sentence was accepted: `<eos>` was read in an accepting state (every move from FINAL is DEAD).

So per step a batched env does `state = table[state, action]`; `<eos>` ends the sentence and the sentence is valid
iff `state == FINAL`. `dist[s]` is the fewest tokens (counting `<eos>`) that lead from s to FINAL, which gives
oracles that always finish inside a token budget. Compilation is cached per (grammar, vocabulary).
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Iterable, Mapping, Sequence

import numpy as np

from distdqn.envs.base import EOS, Vocab

DEAD = 0
FINAL = 1
UNREACHABLE = np.iinfo(np.int32).max // 2  # dist of states that cannot reach FINAL (only DEAD)


@dataclasses.dataclass(frozen=True)
class Grammar:
    """A finite CFG: `rules` is ((nonterminal, (alternative, ...)), ...); an alternative is a tuple of symbols."""

    start: str
    rules: tuple[tuple[str, tuple[tuple[str, ...], ...]], ...]

    @classmethod
    def from_dict(cls, start: str, rules: Mapping[str, Iterable[Sequence[str] | str]]) -> Grammar:
        """Build from {nonterminal: [alternative, ...]}; an alternative given as a string is split on spaces."""
        frozen = []
        for lhs, alts in rules.items():
            alts_t = tuple(tuple(a.split()) if isinstance(a, str) else tuple(a) for a in alts)
            if not alts_t:
                raise ValueError(f"grammar nonterminal {lhs!r} has no alternatives")
            frozen.append((lhs, alts_t))
        grammar = cls(start, tuple(frozen))
        if start not in grammar.nonterminals():
            raise ValueError(f"grammar start symbol {start!r} has no rule")
        return grammar

    def nonterminals(self) -> set[str]:
        return {lhs for lhs, _ in self.rules}

    def terminals(self) -> list[str]:
        """Every terminal word, sorted."""
        nts = self.nonterminals()
        return sorted({s for _, alts in self.rules for alt in alts for s in alt if s not in nts})


@dataclasses.dataclass(frozen=True, eq=False)
class Dfa:
    """A compiled grammar. table: [S, V] int32 next state; accepting: [S] bool (`<eos>` allowed); dist: [S] int32
    fewest tokens to FINAL (including `<eos>`; UNREACHABLE for DEAD); start: the initial state."""

    table: np.ndarray
    accepting: np.ndarray
    dist: np.ndarray
    start: int
    eos_id: int

    @property
    def num_states(self) -> int:
        return self.table.shape[0]

    def run(self, ids: Sequence[int] | np.ndarray, state: int | None = None) -> int:
        """The state after reading `ids` from `state` (default: start)."""
        s = self.start if state is None else state
        for t in ids:
            s = int(self.table[s, int(t)])
        return s

    def accepts(self, ids: Sequence[int] | np.ndarray) -> bool:
        """Whether the token ids (without `<eos>`) form a sentence."""
        return self.run(list(ids) + [self.eos_id]) == FINAL

    def run_batch(self, ids: np.ndarray, state: np.ndarray | None = None) -> np.ndarray:
        """States after reading rows of ids [N, T] (pad 0 columns are skipped per row), vectorised over rows."""
        s = np.full(ids.shape[0], self.start, np.int32) if state is None else state.astype(np.int32).copy()
        for j in range(ids.shape[1]):
            col = ids[:, j]
            s = np.where(col != 0, self.table[s, col], s)
        return s


def compile_grammar(grammar: Grammar, vocab: Vocab) -> Dfa:
    """The minimal DFA of `grammar` over `vocab` (which must contain `<eos>` and every terminal); cached."""
    return _compile(grammar, tuple(vocab.tokens))


@functools.lru_cache(maxsize=64)
def _compile(grammar: Grammar, tokens: tuple[str, ...]) -> Dfa:
    index = {t: i for i, t in enumerate(tokens)}
    if EOS not in index:
        raise ValueError("the vocabulary has no <eos> token")
    missing = [w for w in grammar.terminals() if w not in index]
    if missing:
        raise ValueError(f"grammar words missing from the vocabulary: {missing[:10]}")
    eps, moves, start, end = _thompson(grammar, index)
    table, accepting = _determinise(eps, moves, start, end, len(tokens), index[EOS])
    table, accepting, start_state = _minimise(table, accepting)
    table.setflags(write=False)
    accepting.setflags(write=False)
    dist = _distances(table)
    dist.setflags(write=False)
    return Dfa(table=table, accepting=accepting, dist=dist, start=start_state, eos_id=index[EOS])


def _thompson(grammar: Grammar, index: dict[str, int]):
    """An epsilon-NFA: eps[q] = [q'], moves[q] = [(token id, q')]; every nonterminal occurrence is inlined."""
    rules = dict(grammar.rules)
    eps: list[list[int]] = []
    moves: list[list[tuple[int, int]]] = []

    def new() -> int:
        eps.append([])
        moves.append([])
        return len(eps) - 1

    def expand(symbol: str, q: int, path: tuple[str, ...]) -> int:
        if symbol not in rules:
            end = new()
            moves[q].append((index[symbol], end))
            return end
        if symbol in path:
            raise ValueError(f"grammar is recursive: {' -> '.join(path + (symbol,))}")
        end = new()
        for alt in rules[symbol]:
            cur = q  # alternatives share the entry state: their first moves all lead into fresh states
            for s in alt:
                cur = expand(s, cur, path + (symbol,))
            eps[cur].append(end)
        return end

    start = new()
    end = expand(grammar.start, start, ())
    return eps, moves, start, end


def _determinise(eps, moves, start: int, end: int, vocab_size: int, eos_id: int):
    """Subset construction; DFA ids 0 and 1 are DEAD and FINAL, the start set gets id 2."""

    def closure(states: Iterable[int]) -> frozenset[int]:
        stack, seen = list(states), set(states)
        while stack:
            for r in eps[stack.pop()]:
                if r not in seen:
                    seen.add(r)
                    stack.append(r)
        return frozenset(seen)

    ids: dict[frozenset[int], int] = {}
    rows: list[tuple[int, dict[int, int], bool]] = []
    todo = [closure([start])]
    ids[todo[0]] = 2
    while todo:
        subset = todo.pop()
        targets: dict[int, set[int]] = {}
        for q in subset:
            for tok, r in moves[q]:
                targets.setdefault(tok, set()).add(r)
        row = {}
        for tok, rs in targets.items():
            nxt = closure(rs)
            if nxt not in ids:
                ids[nxt] = len(ids) + 2
                todo.append(nxt)
            row[tok] = ids[nxt]
        rows.append((ids[subset], row, end in subset))
    num = len(ids) + 2
    table = np.zeros((num, vocab_size), dtype=np.int32)
    acc = np.zeros(num, dtype=bool)
    for sid, row, is_acc in rows:
        for tok, nxt in row.items():
            table[sid, tok] = nxt
        if is_acc:
            acc[sid] = True
            table[sid, eos_id] = FINAL
    return table, acc


def _minimise(table: np.ndarray, accepting: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """Moore refinement: states are merged while no token distinguishes them. Keeps DEAD=0, FINAL=1, start=2 -> s."""
    num = table.shape[0]
    init = np.where(np.arange(num) == DEAD, 0, np.where(np.arange(num) == FINAL, 1, 2 + accepting.astype(np.int64)))
    cls = init
    while True:
        sig = np.concatenate([cls[:, None], cls[table]], axis=1)
        _, new = np.unique(sig, axis=0, return_inverse=True)
        new = new.reshape(-1)
        if new.max() == cls.max() and len(np.unique(new)) == len(np.unique(cls)):
            break
        cls = new
    # renumber classes: DEAD's class -> 0, FINAL's -> 1, the rest in order of first appearance
    order = {int(cls[DEAD]): DEAD, int(cls[FINAL]): FINAL}
    for c in cls:
        if int(c) not in order:
            order[int(c)] = len(order)
    remap = np.array([order[int(c)] for c in cls], dtype=np.int32)
    out = np.zeros((len(order), table.shape[1]), dtype=np.int32)
    acc = np.zeros(len(order), dtype=bool)
    out[remap] = remap[table]
    acc[remap] = accepting
    return out, acc, int(remap[2])


def _distances(table: np.ndarray) -> np.ndarray:
    """Fewest tokens from each state to FINAL (Bellman iteration; the DFA is acyclic apart from DEAD)."""
    dist = np.full(table.shape[0], UNREACHABLE, dtype=np.int64)
    dist[FINAL] = 0
    while True:
        nxt = np.minimum(dist, dist[table].min(axis=1) + 1)
        nxt[DEAD] = UNREACHABLE
        nxt[FINAL] = 0
        if np.array_equal(nxt, dist):
            return np.minimum(dist, UNREACHABLE).astype(np.int32)
        dist = nxt


def feasible_actions(dfa: Dfa, state: np.ndarray, remaining: np.ndarray) -> np.ndarray:
    """[B, V] bool: tokens after which FINAL is still reachable within `remaining` [B] tokens (this one included)."""
    return dfa.dist[dfa.table[state]] <= (remaining[:, None] - 1)


def random_feasible(mask: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One uniformly random True column per row of `mask` [B, V] (column 0 where a row has none)."""
    return (rng.random(mask.shape) * mask).argmax(axis=1).astype(np.int64)
