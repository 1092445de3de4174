"""The task's shape and the env built from a run's `env` section: options reach the task, sizes reach the layout."""

import subprocess
import sys

import numpy as np
import pytest

from distdqn import spec
from distdqn.config import EnvConfig
from distdqn.envs import TaskShape, make_env_from_config, task_shape


@pytest.mark.parametrize(
    ("options", "vocab_size", "max_len"),
    [({}, 32, 4 + 16), ({"vocab_size": 300, "prompt_len": 2, "max_steps": 5}, 300, 2 + 5)],
)
def test_task_shape_reads_the_configured_task(options, vocab_size, max_len):
    shape = task_shape(EnvConfig(task="tests.fakes:SyntheticEnv", options=options))
    assert (shape.vocab_size, shape.max_len, shape.with_mask) == (vocab_size, max_len, False)
    assert shape.token_values.shape == (vocab_size,) and np.isnan(shape.token_values).all()  # no integer tokens
    assert shape.transition_dtypes() == spec.transition_dtypes(vocab_size, max_len, False)


def test_masked_task_shape_has_the_mask_field():
    shape = task_shape(EnvConfig(task="shortest_path", options={"action_mask": True}))
    assert shape.with_mask and spec.MASK_NEXT in shape.transition_dtypes()


def test_token_values_of_a_numeric_vocabulary():
    shape = task_shape(EnvConfig(task="tests.fakes:FeedbackEnv"))
    assert shape.token_values[2:7].tolist() == [0, 1, 2, 3, 4] and np.isnan(shape.token_values[[0, 1, 7]]).all()


def test_make_env_from_config_passes_seed_split_difficulty_and_options():
    config = EnvConfig(task="tests.fakes:SyntheticEnv", options={"prompt_len": 3})
    a, b = (make_env_from_config(config, num_envs=4, seed=7, split="test") for _ in range(2))
    assert a.num_envs == 4 and a.split == "test" and TaskShape.of(a).max_len == 3 + 16
    np.testing.assert_array_equal(a.reset().tokens, b.reset().tokens)  # the seed reached the env
    with pytest.raises(ValueError, match="difficulty"):
        make_env_from_config(EnvConfig(task="tests.fakes:SyntheticEnv", difficulty="huge"), num_envs=1)


def test_envs_import_neither_torch_nor_ray():
    code = "import sys, distdqn.envs\nprint(sorted(m for m in ('ray', 'torch') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
