"""Task registry: names, suggestions, `module:Class` plug-ins, option and difficulty errors."""

import numpy as np
import pytest

from distdqn.envs import TextEnv, Vocab, known_tasks, make_env
from distdqn.envs.registry import BUILTIN_TASKS
from distdqn.typed import ConfigError


class EchoTask(TextEnv):
    """A user's task defined outside the package: say the prompt's word back. Reward 1 iff it matches."""

    name = "echo"

    def __init__(self, num_envs, seed=0, split="train", difficulty="easy", words=("hi", "yo")):
        super().__init__(num_envs, Vocab(["<pad>", *words]), max_len=3, max_steps=1, seed=seed, split=split)
        self.word = np.zeros(num_envs, dtype=np.int32)

    def _reset_slots(self, idx):
        self.word[idx] = self.rng.integers(1, self.vocab_size, size=len(idx))
        self.tokens[idx, 0] = self.word[idx]
        self.length[idx] = 1

    def _score(self, actions):
        ok = actions == self.word
        return ok.astype(np.float32), np.ones(self.num_envs, dtype=bool), ok.astype(np.float32)

    def oracle_actions(self):
        return self.word.astype(np.int64)


def make_echo(num_envs, seed=0, split="train", difficulty="easy", **options):
    return EchoTask(num_envs, seed=seed, split=split, difficulty=difficulty, **options)


def test_every_builtin_name_is_known():
    assert set(BUILTIN_TASKS) <= set(known_tasks())


@pytest.mark.parametrize("name, suggestion", [("arithmatic", "arithmetic"), ("wordl", "wordle"), ("zzz", None)])
def test_unknown_task_lists_known_ones_and_suggests(name, suggestion):
    with pytest.raises(ValueError) as err:
        make_env(name)
    message = str(err.value)
    assert f"unknown task {name!r}" in message and all(t in message for t in BUILTIN_TASKS)
    assert (f"did you mean '{suggestion}'" in message) if suggestion else ("did you mean" not in message)


@pytest.mark.parametrize("attr", ["EchoTask", "make_echo"])
def test_module_colon_class_plugin(attr):
    env = make_env(f"{__name__}:{attr}", num_envs=4, seed=0, words=("a", "b", "c"))
    assert isinstance(env, EchoTask) and env.vocab.tokens == ["<pad>", "a", "b", "c"]
    env.reset()
    _, reward, terminated, _, info = env.step(env.oracle_actions())
    assert reward.tolist() == [1.0] * 4 and terminated.all() and info.success.tolist() == [1.0] * 4


@pytest.mark.parametrize(
    "task, named",
    [
        ("no_such_module_xyz:Task", "cannot import module 'no_such_module_xyz'"),
        (f"{__name__}:Missing", "has no attribute 'Missing'"),
    ],
)
def test_bad_plugin_paths_are_named(task, named):
    with pytest.raises(ValueError, match=named):
        make_env(task)


@pytest.mark.parametrize(
    "task, options, error, named",
    [
        ("arithmetic", {"num_digits": 9}, ValueError, "env.options.num_digits must be in 1..4, got 9"),
        ("arithmetic", {"num_digits": "two"}, ConfigError, "env.options.num_digits: expected int, got 'two'"),
        ("arithmetic", {"num_digit": 2}, ConfigError, "unknown key 'env.options.num_digit'.*num_digits"),
        ("shortest_path", {"split_by": "edge"}, ConfigError, "env.options.split_by: expected one of"),
        ("shortest_path", {"num_nodes": 2}, ValueError, "env.options.num_nodes"),
        ("wordle", {"max_guess": 3}, ConfigError, "unknown key 'env.options.max_guess'.*max_guesses"),
        ("wordle", {"valid_guesses": "word"}, ConfigError, "valid_guesses.*did you mean 'words'"),
    ],
)
def test_wrong_options_are_named(task, options, error, named):
    with pytest.raises(error, match=named):
        make_env(task, **options)


@pytest.mark.parametrize("task", ["arithmetic", "shortest_path", "wordle"])
def test_bad_difficulty_and_split(task):
    with pytest.raises(ValueError, match="difficulty must be one of"):
        make_env(task, difficulty="insane")
    with pytest.raises(ValueError, match="split must be 'train' or 'test'"):
        make_env(task, split="valid")


@pytest.mark.parametrize("task", ["arithmetic", "shortest_path", "wordle"])
@pytest.mark.parametrize("difficulty", ["easy", "medium", "hard"])
def test_options_override_presets(task, difficulty):
    env = make_env(task, difficulty=difficulty, test_fraction=0.3)
    assert env.options.test_fraction == 0.3 and env.name == task


def test_tokenizer_tasks_are_exactly_the_builtins_over_strings():
    from distdqn.envs.registry import TOKENIZER_TASKS, resolve
    from distdqn.envs.text import TextTask

    over_strings = {t for t in BUILTIN_TASKS if isinstance(f := resolve(t), type) and issubclass(f, TextTask)}
    assert over_strings == set(TOKENIZER_TASKS)
