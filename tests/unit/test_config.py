"""Config: defaults, YAML, dotted overrides, unknown keys with suggestions, type errors, cross-field checks."""

import pytest

from distdqn.config import Config, ConfigError, load_config, parse_value


def test_defaults_validate():
    config = load_config()
    assert isinstance(config, Config)
    assert config.actor.num_actors >= 1


def test_yaml_then_overrides(tmp_path):
    path = tmp_path / "x.yaml"
    path.write_text("learner:\n  lr: 0.01\nactor:\n  num_actors: 3\n")
    config = load_config(path, ["learner.lr=1e-4", "env.options={num_concepts: 2}"])
    assert config.learner.lr == pytest.approx(1e-4)
    assert config.actor.num_actors == 3
    assert config.env.options == {"num_concepts": 2}


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ("learner.lrr=1", "unknown key 'learner.lrr' (did you mean 'learner.lr'?)"),
        ("lerner.lr=1", "no section 'lerner' (did you mean 'learner'?)"),
        ("learner.target_sync_interval=5", "did you mean 'learner.target_sync_interval_updates'?"),
        ("learner.lr=fast", "learner.lr: expected float, got 'fast'"),
        ("actor.num_actors=2.5", "actor.num_actors: expected int, got 2.5"),
        ("network.trunk=gr", "expected one of ['gru', 'transformer'], got 'gr' (did you mean 'gru'?)"),
        ("learner.double_dqn=maybe", "learner.double_dqn: expected bool"),
    ],
)
def test_bad_keys_and_types_are_named(override, expected):
    with pytest.raises(ConfigError) as e:
        load_config(None, [override])
    assert expected in str(e.value)


def test_unknown_key_in_yaml_names_dotted_path(tmp_path):
    path = tmp_path / "x.yaml"
    path.write_text("replay:\n  capacty: 10\n")
    with pytest.raises(ConfigError, match=r"unknown key 'replay.capacty' \(did you mean 'replay.capacity'\?\)"):
        load_config(path)


def test_cross_field_problems_reported_together_with_arithmetic():
    with pytest.raises(ConfigError) as e:
        load_config(
            None,
            ["replay.capacity=1000", "replay.num_shards=4", "learner.batch_size=512", "replay.min_size_to_sample=2000"],
        )
    problems = e.value.problems
    assert any("1000 / 4 = 250" in p for p in problems)
    assert any("exceeds replay.capacity" in p for p in problems)
    assert len(problems) >= 2


def test_every_problem_collected_at_once():
    with pytest.raises(ConfigError) as e:
        load_config(None, ["learner.lrr=1", "actor.gama=0.9"])
    assert len(e.value.problems) == 2


@pytest.mark.parametrize(
    ("text", "value"), [("1e-4", 1e-4), ("3", 3), ("true", True), ("[1, 2]", [1, 2]), ("gru", "gru")]
)
def test_parse_value(text, value):
    assert parse_value(text) == value


def test_architecture_hash_ignores_run_keys():
    a = load_config(None, ["run.seed=1"])
    b = load_config(None, ["run.seed=2"])
    c = load_config(None, ["network.hidden_dim=96"])
    assert a.hash() == b.hash() != c.hash()
