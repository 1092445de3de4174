"""Checkpoint files: atomic directory writes (a killed writer never damages the previous checkpoint), safe loading
with errors naming the file, pruning, discovery, and the architecture check of a resume."""

import json
import os
import signal
import subprocess
import sys
import textwrap

import pytest
import torch

from distdqn import checkpoint as ck
from distdqn.config import load_config
from distdqn.typed import ConfigError


def _learner_state(seed: int) -> dict:
    g = torch.Generator().manual_seed(seed)
    online = {"w": torch.randn(3, 4, generator=g), "b": torch.randn(4, generator=g)}
    return {
        "online": online,
        "target": {k: v.clone() for k, v in online.items()},
        "optimizer": {
            "state": {0: {"step": torch.tensor(3.0), "exp_avg": torch.randn(3, 4, generator=g)}},
            "param_groups": [{"lr": 1e-3, "params": [0]}],
        },
        "updates": 17,
    }


def _write(directory, seed):
    ck.save_learner_state(directory, _learner_state(seed))
    (directory / ck.STATE_FILE).write_text(json.dumps({"format": 1, "seed": seed}))


def test_learner_state_round_trip(tmp_path):
    state = _learner_state(0)
    ck.save_learner_state(tmp_path, state)
    loaded = ck.load_learner_state(tmp_path)
    assert torch.equal(loaded["online"]["w"], state["online"]["w"])
    assert torch.equal(loaded["target"]["b"], state["target"]["b"])
    assert torch.equal(loaded["optimizer"]["state"][0]["exp_avg"], state["optimizer"]["state"][0]["exp_avg"])
    assert loaded["updates"] == 17


def test_write_atomic_latest_and_prune(tmp_path):
    root = tmp_path / "checkpoints"
    for step in range(5):
        ck.write_atomic(root, f"{step:010d}", lambda d, s=step: _write(d, s), keep_last=2)
    names = [p.name for p in ck.list_checkpoints(root)]
    assert names == ["0000000003", "0000000004"]
    assert ck.find_checkpoint(tmp_path) == root / "0000000004"
    assert ck.read_state(ck.find_checkpoint(tmp_path))["seed"] == 4


def test_failed_write_keeps_previous(tmp_path):
    root = tmp_path / "checkpoints"
    ck.write_atomic(root, "0000000001", lambda d: _write(d, 1), keep_last=3)

    def broken(d):
        (d / ck.STATE_FILE).write_text("{")
        raise OSError("disk full")

    with pytest.raises(OSError):
        ck.write_atomic(root, "0000000002", broken, keep_last=3)
    assert ck.find_checkpoint(tmp_path).name == "0000000001"
    assert not any(p.name.startswith(".tmp") for p in root.iterdir())


def test_killed_writer_never_damages_previous_checkpoint(tmp_path):
    root = tmp_path / "checkpoints"
    ck.write_atomic(root, "0000000001", lambda d: _write(d, 1), keep_last=3)
    script = textwrap.dedent(f"""
        import time, pathlib
        from distdqn import checkpoint as ck
        def slow(d):
            (d / "model.safetensors").write_bytes(b"x" * 1000)
            print("writing", flush=True)
            time.sleep(60)
        ck.write_atomic(pathlib.Path({str(root)!r}), "0000000002", slow, keep_last=3)
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "writing"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    found = ck.find_checkpoint(tmp_path)
    assert found.name == "0000000001"
    assert ck.read_state(found)["seed"] == 1
    assert torch.equal(ck.load_learner_state(found)["online"]["w"], _learner_state(1)["online"]["w"])
    # the next write cleans the leftover temporary directory
    ck.write_atomic(root, "0000000003", lambda d: _write(d, 3), keep_last=3)
    assert not any(p.name.startswith(".tmp") for p in root.iterdir())


@pytest.mark.parametrize("damage", ["truncate", "garbage", "missing"])
@pytest.mark.parametrize("filename", [ck.MODEL_FILE, ck.OPTIMIZER_FILE])
def test_corrupt_files_name_the_file(tmp_path, damage, filename):
    ck.save_learner_state(tmp_path, _learner_state(0))
    path = tmp_path / filename
    if damage == "truncate":
        path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])
    elif damage == "garbage":
        path.write_bytes(b"\x80\x04not a checkpoint" * 10)
    else:
        path.unlink()
    with pytest.raises(ck.CheckpointError, match=filename):
        ck.load_learner_state(tmp_path)


def test_corrupt_state_json_named(tmp_path):
    (tmp_path / ck.STATE_FILE).write_text('{"format": 1, "trunc')
    with pytest.raises(ck.CheckpointError, match="state.json"):
        ck.read_state(tmp_path)


def test_optimizer_file_is_never_unpickled(tmp_path):
    """A pickle that would run code on load is refused by weights_only loading."""
    import pickle

    class Evil:
        def __reduce__(self):
            return (os.system, ("touch " + str(tmp_path / "pwned"),))

    ck.save_learner_state(tmp_path, _learner_state(0))
    (tmp_path / ck.OPTIMIZER_FILE).write_bytes(pickle.dumps(Evil()))
    with pytest.raises(ck.CheckpointError):
        ck.load_learner_state(tmp_path)
    assert not (tmp_path / "pwned").exists()


def test_architecture_mismatch_names_the_key():
    saved = load_config(None, ["network.hidden_dim=64"]).to_dict()
    with pytest.raises(ConfigError, match="network.hidden_dim: checkpoint has 64, this run asks for 128"):
        ck.check_architecture(saved, load_config(None, ["network.hidden_dim=128"]))
    ck.check_architecture(saved, load_config(None, ["network.hidden_dim=64", "actor.num_actors=7"]))


def test_find_checkpoint_errors(tmp_path):
    with pytest.raises(FileNotFoundError):
        ck.find_checkpoint(tmp_path / "nope")
    with pytest.raises(ck.CheckpointError, match="no checkpoint found"):
        ck.find_checkpoint(tmp_path)


@pytest.mark.parametrize("ema", [False, True])
def test_inference_takes_the_published_weights(tmp_path, ema):
    from distdqn.run import Counters

    state = _learner_state(0)
    if ema:  # learner.weight_ema: the average is the policy a run publishes, so eval and generate read it
        state["ema"] = {"w": state["online"]["w"] + 1.0}
    config = load_config(None, [])
    ck.save_run(tmp_path, config, Counters(updates=5), state, [], {})
    _, weights, _ = ck.load_for_inference(tmp_path)
    assert torch.equal(torch.from_numpy(weights["w"]), state["online"]["w"] + (1.0 if ema else 0.0))
    assert torch.equal(torch.from_numpy(weights["b"]), state["online"]["b"])  # not averaged: the online one
