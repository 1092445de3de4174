"""Config: defaults, YAML, dotted overrides parsed by type, declared ranges, unknown keys, cross-field checks."""

import dataclasses
import json
import typing
from pathlib import Path

import pytest

from distdqn.config import Config, ConfigError, load_config
from distdqn.envs.registry import make_env_from_config
from distdqn.typed import ranges

SHIPPED = sorted((Path(__file__).resolve().parents[2] / "configs").glob("*.yaml"))


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_every_shipped_config_loads_and_builds_its_task(path):
    """Each file in configs/ validates, and its env section (task, level, options) builds the task with both splits
    (the LM config's task needs its pretrained tokenizer on disk: config only)."""
    config = load_config(path)
    assert config.env.difficulty in path.stem or config.network.trunk == "hf"
    if config.network.trunk != "hf":
        for split in ("train", "test"):
            make_env_from_config(config.env, num_envs=2, split=split).reset()


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
    ("override", "key", "value"),
    [
        ("cluster.learner_num_gpus=1", "cluster.learner_num_gpus", "1"),  # a Literal choice, not the int 1
        ("run.name=2024", "run.name", "2024"),  # a str field takes the text as is
        ("run.name=true", "run.name", "true"),
        ("run.run_dir=", "run.run_dir", ""),
        ("actor.num_actors=4", "actor.num_actors", 4),
        ("replay.capacity=1e6", "replay.capacity", 1_000_000),  # integral scientific text is an int
        ("replay.capacity=200_000", "replay.capacity", 200_000),
        ("learner.lr=3e-4", "learner.lr", 3e-4),
        ("learner.lr=1", "learner.lr", 1.0),
        ("network.dueling=false", "network.dueling", False),
        ("network.dueling=Yes", "network.dueling", True),
        ("network.dueling=off", "network.dueling", False),
        ("network.dueling=1", "network.dueling", True),
        ("network.dueling=0", "network.dueling", False),
        ("network.trunk=transformer", "network.trunk", "transformer"),
        ("env.options={held_out: false}", "env.options", {"held_out": False}),
        ("env.options.lr=1e-4", "env.options", {"lr": 1e-4}),  # text under an untyped dict: YAML, '1e-4' a float
        ("env.options.word='7'", "env.options", {"word": "7"}),
    ],
)
def test_override_parsed_by_declared_type(override, key, value):
    section, name = key.split(".")
    got = getattr(getattr(load_config(None, [override]), section), name)
    assert got == value and type(got) is type(value)


def test_cli_name_and_flags_become_typed_overrides():
    from distdqn.cli import build_parser, cli_overrides

    args = build_parser().parse_args(["train", "--name", "2024", "--seed", "3", "cluster.learner_num_gpus=0"])
    config = load_config(args.config, cli_overrides(args))
    assert (config.run.name, config.run.seed, config.cluster.learner_num_gpus) == ("2024", 3, "0")


def test_later_override_extends_an_earlier_mapping():
    config = load_config(None, ["env.options={a: 1}", "env.options.b=x", "learner={lr: 0.5}", "learner.batch_size=32"])
    assert config.env.options == {"a": 1, "b": "x"}
    assert (config.learner.lr, config.learner.batch_size) == (0.5, 32)


def test_yaml_values_keep_their_types(tmp_path):
    path = tmp_path / "x.yaml"
    path.write_text("cluster:\n  learner_num_gpus: 1\nrun:\n  name: abc\nactor:\n  num_actors: 4.0\n")
    config = load_config(path)
    assert (config.cluster.learner_num_gpus, config.run.name, config.actor.num_actors) == ("1", "abc", 4)
    path.write_text("run:\n  name: 2024\nnetwork:\n  dueling: 1\n")  # a YAML int is not a str or a bool
    with pytest.raises(ConfigError) as e:
        load_config(path)
    assert e.value.problems == ["run.name: expected str, got 2024", "network.dueling: expected bool, got 1"]


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ("learner.lrr=1", "unknown key 'learner.lrr' (did you mean 'learner.lr'?)"),
        ("lerner.lr=1", "no section 'lerner' (did you mean 'learner'?)"),
        ("learner.target_sync_interval=5", "did you mean 'learner.target_sync_interval_updates'?"),
        ("learner.lr=fast", "learner.lr: expected float, got 'fast'"),
        ("actor.num_actors=2.5", "actor.num_actors: expected int, got '2.5'"),
        ("actor.num_actors=1e-1", "actor.num_actors: expected int, got '1e-1'"),
        ("actor.num_actors=four", "actor.num_actors: expected int, got 'four'"),
        ("network.trunk=gr", "expected one of ['gru', 'transformer', 'hf'], got 'gr' (did you mean 'gru'?)"),
        ("cluster.learner_num_gpus=2", "cluster.learner_num_gpus: expected one of ['auto', '0', '1'], got '2'"),
        ("learner.double_dqn=maybe", "learner.double_dqn: expected bool, got 'maybe'"),
        ("env.options=3", "env.options: expected a mapping, got 3"),
        ("learner.lr", "override 'learner.lr' must look like section.key=value"),
    ],
)
def test_bad_keys_and_types_are_named(override, expected):
    with pytest.raises(ConfigError) as e:
        load_config(None, [override])
    assert expected in str(e.value)


# Every out-of-range value is one problem line naming the key and its allowed range.
@pytest.mark.parametrize(
    ("override", "problem"),
    [
        ("learner.lr=nan", "learner.lr: must be > 0, got nan"),
        ("learner.lr=inf", "learner.lr: must be finite and > 0, got inf"),
        ("learner.lr=0", "learner.lr: must be > 0, got 0.0"),
        ("learner.max_grad_norm=-1", "learner.max_grad_norm: must be > 0, got -1.0"),
        ("learner.huber_delta=0", "learner.huber_delta: must be > 0, got 0.0"),
        ("learner.adam_eps=-1", "learner.adam_eps: must be > 0, got -1.0"),
        ("learner.polyak_tau=1", "learner.polyak_tau: must be in [0, 1), got 1.0"),
        ("cluster.call_timeout_s=0", "cluster.call_timeout_s: must be > 0, got 0.0"),
        ("cluster.actor_num_cpus=-1", "cluster.actor_num_cpus: must be > 0, got -1.0"),
        ("cluster.shard_num_cpus=-0.5", "cluster.shard_num_cpus: must be >= 0, got -0.5"),
        ("cluster.learner_num_cpus=-1", "cluster.learner_num_cpus: must be >= 0, got -1.0"),
        ("cluster.num_cpus=-1", "cluster.num_cpus: must be >= 0, got -1"),
        ("run.max_seconds=-1", "run.max_seconds: must be >= 0, got -1.0"),
        ("run.max_seconds=inf", "run.max_seconds: must be finite and >= 0, got inf"),
        ("run.target_success=1.5", "run.target_success: must be in [0, 1], got 1.5"),
        ("run.seed=-1", "run.seed: must be >= 0, got -1"),
        ("replay.priority_eps=0", "replay.priority_eps: must be > 0, got 0.0"),
        ("replay.samples_per_insert=nan", "replay.samples_per_insert: must be >= 0, got nan"),
        ("replay.samples_per_insert_tolerance=1", "replay.samples_per_insert_tolerance: must be in [0, 1), got 1.0"),
        ("replay.alpha=-0.1", "replay.alpha: must be in [0, 1], got -0.1"),
        ("actor.gamma=0", "actor.gamma: must be in (0, 1], got 0.0"),
        ("actor.gamma=1.01", "actor.gamma: must be in (0, 1], got 1.01"),
        ("actor.eps_base=2", "actor.eps_base: must be in [0, 1], got 2.0"),
        ("actor.num_actors=0", "actor.num_actors: must be >= 1, got 0"),
        ("env.envs_per_actor=0", "env.envs_per_actor: must be >= 1, got 0"),
        ("network.copy_dim=0", "network.copy_dim: must be >= 1, got 0"),
        ("checkpoint.keep_last=0", "checkpoint.keep_last: must be >= 1, got 0"),
    ],
)
def test_out_of_range_values_are_one_line_naming_key_and_range(override, problem):
    with pytest.raises(ConfigError) as e:
        load_config(None, [override])
    assert e.value.problems == [problem]


def test_yaml_nan_is_rejected_too(tmp_path):
    path = tmp_path / "x.yaml"
    path.write_text("learner:\n  lr: .nan\n")
    with pytest.raises(ConfigError) as e:
        load_config(path)
    assert e.value.problems == ["learner.lr: must be > 0, got nan"]


@pytest.mark.parametrize(
    "override",
    [
        "run.max_env_steps=0",  # 0 = no limit
        "run.max_updates=0",
        "run.max_seconds=0",
        "run.target_success=0",  # 0 = no target
        "checkpoint.interval_s=0",  # 0 = no periodic checkpoints
        "checkpoint.interval_updates=0",
        "replay.samples_per_insert=0",  # 0 = no rate limiter
        "actor.eps_decay_steps=0",
        "cluster.num_cpus=0",  # 0 = all CPUs
        "actor.gamma=1",
        "learner.polyak_tau=0.005",
    ],
)
def test_zero_and_boundary_values_that_mean_something_are_accepted(override):
    load_config(None, [override])


@pytest.mark.parametrize(("section", "cls"), typing.get_type_hints(Config).items())
def test_every_numeric_key_declares_its_range(section, cls):
    assert dataclasses.is_dataclass(cls)
    missing = [f"{section}.{name}" for name, declared in ranges(cls).items() if declared is None]
    assert not missing, f"int/float keys without a Range (declare one next to the field): {missing}"


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


def test_hard_target_syncs_need_a_period():
    with pytest.raises(ConfigError, match="target_sync_interval_updates must be >= 1 with hard syncs"):
        load_config(None, ["learner.target_sync_interval_updates=0"])
    load_config(None, ["learner.target_sync_interval_updates=0", "learner.polyak_tau=0.01"])


def test_every_problem_collected_at_once():
    with pytest.raises(ConfigError) as e:
        load_config(None, ["learner.lrr=1", "actor.gama=0.9", "learner.lr=nan", "run.seed=x"])
    assert len(e.value.problems) == 4


def test_architecture_hash_ignores_run_keys():
    a = load_config(None, ["run.seed=1"])
    b = load_config(None, ["run.seed=2"])
    c = load_config(None, ["network.hidden_dim=96"])
    assert a.hash() == b.hash() != c.hash()


def test_resume_overrides_take_the_same_typed_path(tmp_path):
    from distdqn.checkpoint import STATE_FILE, config_for_resume

    checkpoint = tmp_path / "run" / "checkpoints" / "0000000010"
    checkpoint.mkdir(parents=True)
    state = {"format": 1, "config": load_config().to_dict(), "counters": {}, "actors": [], "limiter": {}}
    (checkpoint / STATE_FILE).write_text(json.dumps(state))
    config, found = config_for_resume(
        tmp_path / "run", ["run.name=2024", "cluster.learner_num_gpus=1", "actor.num_actors=3"]
    )
    assert found == checkpoint
    assert (config.run.name, config.cluster.learner_num_gpus, config.actor.num_actors) == ("2024", "1", 3)
    assert config.run.run_dir == str(tmp_path / "run")
    with pytest.raises(ConfigError) as e:
        config_for_resume(tmp_path / "run", ["learner.lr=nan"])
    assert e.value.problems == ["learner.lr: must be > 0, got nan"]


def test_the_align_head_is_refused_on_a_pretrained_lm_trunk():
    with pytest.raises(ConfigError) as e:
        load_config(None, ["network.trunk=hf", "network.pretrained=/models/tiny", "network.align_head=true"])
    assert any(p.startswith("network.align_head keeps a vocabulary-squared lexicon") for p in e.value.problems)


def test_rotary_positions_with_an_odd_head_width_are_one_problem_line():
    with pytest.raises(ConfigError) as e:
        load_config(
            None,
            ["network.trunk=transformer", "network.hidden_dim=24", "network.num_heads=8", "network.positions=rotary"],
        )
    assert any("hidden_dim / num_heads = 24 / 8 = 3 must be even" in p for p in e.value.problems)
    load_config(
        None, ["network.trunk=transformer", "network.hidden_dim=24", "network.num_heads=4", "network.positions=rotary"]
    )
