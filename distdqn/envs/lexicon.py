"""A typed toy-English lexicon (three sizes) and the sentence grammars built from it, with selectional restrictions.

Nouns have semantic types (agent, food, place, thing). Adjectives, verbs and prepositions list the noun types they
accept, so the *typed* grammar only derives plausible sentences ("the hungry dog eats the sweet cake") while the
*syntactic* grammar collapses the types and also derives "the red park sleeps". Sentence shapes:

    S      -> NP_t VP_t                               (t: the subject's type)
    NP_t   -> DET N_t | DET ADJ_t N_t                 (ADJ_t: adjectives that fit type t; when adjectives are on)
    VP_t   -> VI_t [ADV] [PP] | VT_{t,o} NP_o [PP]    (ADV, PP when enabled; PP -> P_p NP_p)
"""

from __future__ import annotations

import dataclasses

from distdqn.envs.cfg import Grammar

AGENT, FOOD, PLACE, THING = "agent", "food", "place", "thing"


@dataclasses.dataclass(frozen=True)
class Lexicon:
    """Word lists with types. verbs_i: word -> subject types; verbs_t: word -> (subject types, object types);
    adjectives: word -> noun types it may modify; preps: word -> object types of the prepositional phrase."""

    dets: tuple[str, ...]
    nouns: dict[str, tuple[str, ...]]
    adjectives: dict[str, tuple[str, ...]]
    verbs_i: dict[str, tuple[str, ...]]
    verbs_t: dict[str, tuple[tuple[str, ...], tuple[str, ...]]]
    adverbs: tuple[str, ...] = ()
    preps: dict[str, tuple[str, ...]] = dataclasses.field(default_factory=dict)
    object_adjectives: bool = True  # adjectives allowed inside object / PP noun phrases

    def words(self) -> list[str]:
        out = list(self.dets) + [w for ws in self.nouns.values() for w in ws]
        out += list(self.adjectives) + list(self.verbs_i) + list(self.verbs_t) + list(self.adverbs) + list(self.preps)
        return sorted(set(out))

    def noun_type(self, noun: str) -> str:
        for t, ws in self.nouns.items():
            if noun in ws:
                return t
        raise KeyError(f"{noun!r} is not a noun of this lexicon")


EASY = Lexicon(
    dets=("the", "a"),
    nouns={AGENT: ("dog", "cat", "bird", "boy", "girl"), FOOD: ("cake", "fish", "pie"), PLACE: ("park",)},
    adjectives={"happy": (AGENT,), "small": (AGENT, FOOD), "sweet": (FOOD,), "red": (FOOD,)},
    verbs_i={"runs": (AGENT,), "sleeps": (AGENT,), "sings": (AGENT,), "jumps": (AGENT,), "eats": (AGENT,)},
    verbs_t={"eats": ((AGENT,), (FOOD,))},
    preps={"in": (PLACE,)},
    object_adjectives=False,
)

MEDIUM = Lexicon(
    dets=("the", "a", "every", "one"),
    nouns={
        AGENT: ("dog", "cat", "bird", "boy", "girl", "man", "woman", "horse", "child", "teacher"),
        FOOD: ("cake", "fish", "pie", "bread", "soup", "rice"),
        PLACE: ("park", "house", "garden", "river", "kitchen"),
        THING: ("ball", "book", "box", "chair", "cup"),
    },
    adjectives={
        "happy": (AGENT,),
        "hungry": (AGENT,),
        "old": (AGENT, PLACE, THING),
        "small": (AGENT, FOOD, PLACE, THING),
        "sweet": (FOOD,),
        "hot": (FOOD,),
        "red": (FOOD, THING),
        "quiet": (AGENT, PLACE),
        "big": (AGENT, PLACE, THING),
    },
    verbs_i={
        "runs": (AGENT,),
        "sleeps": (AGENT,),
        "sings": (AGENT,),
        "jumps": (AGENT,),
        "eats": (AGENT,),
        "falls": (AGENT, THING),
    },
    verbs_t={
        "eats": ((AGENT,), (FOOD,)),
        "cooks": ((AGENT,), (FOOD,)),
        "finds": ((AGENT,), (FOOD, THING)),
        "holds": ((AGENT,), (FOOD, THING)),
        "sees": ((AGENT,), (AGENT, PLACE, THING, FOOD)),
    },
    adverbs=("quickly", "slowly", "today"),
    preps={"in": (PLACE,), "near": (PLACE, AGENT, THING)},
)

HARD = Lexicon(
    dets=("the", "a", "every", "one", "some", "this", "that"),
    nouns={
        AGENT: (
            "dog",
            "cat",
            "bird",
            "boy",
            "girl",
            "man",
            "woman",
            "horse",
            "child",
            "teacher",
            "farmer",
            "doctor",
            "baby",
            "king",
            "queen",
            "student",
        ),
        FOOD: ("cake", "fish", "pie", "bread", "soup", "rice", "apple", "cheese", "egg", "salad", "pizza"),
        PLACE: ("park", "house", "garden", "river", "kitchen", "school", "forest", "city", "beach", "room"),
        THING: ("ball", "book", "box", "chair", "cup", "hat", "key", "letter", "lamp", "stone", "rope"),
    },
    adjectives={
        "happy": (AGENT,),
        "hungry": (AGENT,),
        "sad": (AGENT,),
        "brave": (AGENT,),
        "tired": (AGENT,),
        "clever": (AGENT,),
        "old": (AGENT, PLACE, THING),
        "young": (AGENT,),
        "small": (AGENT, FOOD, PLACE, THING),
        "big": (AGENT, PLACE, THING, FOOD),
        "sweet": (FOOD,),
        "hot": (FOOD, PLACE),
        "fresh": (FOOD,),
        "salty": (FOOD,),
        "red": (FOOD, THING),
        "green": (FOOD, THING, PLACE),
        "heavy": (THING,),
        "broken": (THING,),
        "quiet": (AGENT, PLACE),
        "dark": (PLACE,),
    },
    verbs_i={
        "runs": (AGENT,),
        "sleeps": (AGENT,),
        "sings": (AGENT,),
        "jumps": (AGENT,),
        "eats": (AGENT,),
        "falls": (AGENT, THING),
        "laughs": (AGENT,),
        "cries": (AGENT,),
        "waits": (AGENT,),
        "rolls": (THING,),
    },
    verbs_t={
        "eats": ((AGENT,), (FOOD,)),
        "cooks": ((AGENT,), (FOOD,)),
        "finds": ((AGENT,), (FOOD, THING, AGENT)),
        "holds": ((AGENT,), (FOOD, THING)),
        "sees": ((AGENT,), (AGENT, PLACE, THING, FOOD)),
        "reads": ((AGENT,), (THING,)),
        "buys": ((AGENT,), (FOOD, THING)),
        "cleans": ((AGENT,), (PLACE, THING)),
        "visits": ((AGENT,), (AGENT, PLACE)),
        "likes": ((AGENT,), (AGENT, FOOD, PLACE, THING)),
    },
    adverbs=("quickly", "slowly", "today", "again", "loudly"),
    preps={"in": (PLACE,), "near": (PLACE, AGENT, THING), "with": (AGENT, THING), "under": (THING, PLACE)},
)

LEXICONS = {"easy": EASY, "medium": MEDIUM, "hard": HARD}


def sentence_grammar(lex: Lexicon, typed: bool = True, subject: str | None = None) -> Grammar:
    """The sentence grammar of `lex`. typed=False drops the selectional restrictions (syntax only); `subject`
    restricts the subject noun to one word (used to require an opening)."""
    types = list(lex.nouns) if typed else ["any"]

    def nouns(t: str) -> list[str]:
        return [w for ws in lex.nouns.values() for w in ws] if t == "any" else list(lex.nouns[t])

    def fits(allowed: tuple[str, ...], t: str) -> bool:
        return t == "any" or t in allowed

    rules: dict[str, list] = {"DET": [[d] for d in lex.dets]}
    subj_types = [
        t
        for t in types
        if any(fits(s, t) for s in lex.verbs_i.values()) or any(fits(s, t) for s, _ in lex.verbs_t.values())
    ]
    if subject is not None:
        st = lex.noun_type(subject) if typed else "any"
        subj_types = [st]
    for t in types:
        adjs = [a for a, ts in lex.adjectives.items() if fits(ts, t)]
        rules[f"N_{t}"] = [[w] for w in nouns(t)]
        rules[f"NP_{t}"] = [["DET", f"N_{t}"]] + (
            [["DET", f"ADJ_{t}", f"N_{t}"]] if adjs and lex.object_adjectives else []
        )
        rules[f"SNP_{t}"] = [["DET", f"N_{t}"]] + ([["DET", f"ADJ_{t}", f"N_{t}"]] if adjs else [])
        if subject is not None:
            rules[f"SNP_{t}"] = [["DET", subject]] + ([["DET", f"ADJ_{t}", subject]] if adjs else [])
        if adjs:
            rules[f"ADJ_{t}"] = [[a] for a in adjs]
    tails = [[]] + ([["ADV"]] if lex.adverbs else [])
    if lex.adverbs:
        rules["ADV"] = [[a] for a in lex.adverbs]
    pps = []
    for p, objs in lex.preps.items():
        pps += [["P_" + p, f"NP_{t}"] for t in types if fits(objs, t)]
        rules["P_" + p] = [[p]]
    if pps:
        rules["PP"] = pps
        tails = tails + [t + ["PP"] for t in tails]
    rules["S"] = []
    for t in subj_types:
        vp = []
        vi = [v for v, ss in lex.verbs_i.items() if fits(ss, t)]
        if vi:
            rules[f"VI_{t}"] = [[v] for v in vi]
            vp += [[f"VI_{t}"] + tail for tail in tails]
        for o in types:
            vt = [v for v, (ss, os) in lex.verbs_t.items() if fits(ss, t) and fits(os, o)]
            if vt:
                rules[f"VT_{t}_{o}"] = [[v] for v in vt]
                vp += [[f"VT_{t}_{o}", f"NP_{o}"]] + ([[f"VT_{t}_{o}", f"NP_{o}", "PP"]] if pps else [])
        if vp:
            rules[f"VP_{t}"] = vp
            rules["S"].append([f"SNP_{t}", f"VP_{t}"])
    return Grammar.from_dict("S", rules)
