"""Tasks over text in a tokenizer's id space: prompts tokenized, eos from the tokenizer, action masks from the
task's words, judged strings, a user's TextTask through module:Class, and LM top-k/top-p exploration."""

import numpy as np
import pytest

from distdqn.envs import make_env
from distdqn.envs.text_tasks import KeywordText, SentimentText
from distdqn.exploration import lm_sample
from tests.lm_fixtures import tiny_lm


@pytest.fixture(scope="module")
def tok_dir(tmp_path_factory):
    return str(tiny_lm(tmp_path_factory.mktemp("tiny-lm")))


def play(env, texts: list[str]):
    """Write `texts` (one per slot, then eos) token by token; return the (reward, success) each slot ends with."""
    tok = env.tokenizer
    plans = [tok.encode(t, add_special_tokens=False) + [env.eos_id] for t in texts]
    out = {}
    for step in range(max(len(p) for p in plans)):
        actions = np.array([p[min(step, len(p) - 1)] for p in plans])
        _, reward, _, _, info = env.step(actions)
        for i, b in enumerate(info.done_idx):
            out.setdefault(int(b), (float(reward[b]), float(info.success[i])))
    return [out[b] for b in range(len(texts))]


@pytest.mark.parametrize("task", ["keyword_text", "sentiment_text"])
def test_demonstrations_succeed_and_junk_fails(tok_dir, task):
    env = make_env(task, num_envs=4, seed=0, split="test", tokenizer=tok_dir)
    env.reset()
    task_obj = env.task
    demos = dict(task_obj.demonstrations("test"))
    good = [demos[env.prompt_texts[p]] for p in env.prompt_id]
    assert [s for _, s in play(env, good)] == [1.0] * 4
    env.reset()
    junk = play(env, ["the the", "great great", "runs", "the"])
    assert all(s == 0.0 and r < 0 for r, s in junk)


def test_text_env_runs_in_the_tokenizers_id_space(tok_dir):
    env = make_env("keyword_text", num_envs=3, tokenizer=tok_dir)
    obs = env.reset()
    tok = env.tokenizer
    assert env.vocab_size == len(tok) and env.eos_id == tok.eos_token_id
    for b in range(3):
        assert tok.decode(obs.tokens[b, : obs.length[b]].tolist()) == env.prompt_texts[env.prompt_id[b]]
    allowed = set(np.flatnonzero(obs.action_mask[0]))
    words = {tok.convert_tokens_to_ids(w) for w in KeywordText().allowed_words()}
    assert allowed == words | {env.eos_id} and 0 not in allowed
    assert not make_env("keyword_text", tokenizer=tok_dir, restrict_tokens=False).has_action_mask


def test_budget_without_eos_truncates_with_nothing(tok_dir):
    env = make_env("sentiment_text", num_envs=2, tokenizer=tok_dir, max_new_tokens=2)
    env.reset()
    good = env.tokenizer.convert_tokens_to_ids("good")
    env.step(np.array([good, good]))
    _, reward, terminated, truncated, info = env.step(np.array([good, good]))
    assert truncated.all() and not terminated.any() and (reward == 0).all() and (info.success == 0).all()


def test_own_text_task_through_module_class(tok_dir):
    env = make_env("tests.lm_fixtures:SayTheWord", num_envs=2, tokenizer=tok_dir, words=["dog", "cat"])
    env.reset()
    answers = [env.prompt_texts[p].split()[1] for p in env.prompt_id]
    assert play(env, answers) == [(1.0, 1.0), (1.0, 1.0)]
    assert SentimentText().score("the movie was", "great and nice")[1] == 1.0


def test_text_task_options_are_checked(tok_dir):
    with pytest.raises(ValueError, match="env.options.max_new_tokens"):
        make_env("keyword_text", tokenizer=tok_dir, max_new_tokens=-1)
    with pytest.raises(ValueError, match="tokenizer"):
        make_env("keyword_text")


def test_lm_sample_keeps_to_the_top_k_and_the_nucleus():
    rng = np.random.default_rng(0)
    logp = np.log(np.array([[0.0, 0.5, 0.3, 0.15, 0.05]] * 20000) + 1e-30)
    counts = np.bincount(lm_sample(rng, logp, top_k=3, top_p=1.0), minlength=5) / 20000
    np.testing.assert_allclose(counts, [0, 0.5 / 0.95, 0.3 / 0.95, 0.15 / 0.95, 0], atol=0.015)
    counts = np.bincount(lm_sample(rng, logp, top_k=0, top_p=0.7), minlength=5) / 20000
    np.testing.assert_allclose(counts, [0, 0.5 / 0.8, 0.3 / 0.8, 0, 0], atol=0.015)  # 0.5 < 0.7, 0.8 >= 0.7
    mask = np.array([[True, False, True, True, True]] * 20000)
    assert set(lm_sample(rng, logp, top_k=1, top_p=1.0, mask=mask)) == {2}  # pad and masked never drawn
