"""The seed's flow on keyword_text: DQN fine-tuning of a weakly pretrained tiny LM against the same network from a
random LM, with the same budget (local runtime, configs/lm_keyword.yaml, one seed).

Arms (each a `distdqn pretrain` model of the same tokenizer and shape, then `distdqn train` on it):
  warm      `pretrain --task keyword_text --max-steps WARM_STEPS`: fluent sentences, usually only the first concept;
            its greedy held-out success is well below target (seed 0: 0.0 at 35 steps, 0.50 at 40, 0.19 at 45)
  scratch   `pretrain --max-steps 0`: the random LM
  warm-uniform (with --explore-uniform)  warm, with `actor.explore: uniform` instead of the config's `lm`
Prints every held-out evaluation (env steps, updates, success) of each arm and a summary table.

    .venv/bin/python scripts/lm_warmstart.py [--env-steps N] [--max-seconds S] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from distdqn.config import load_config  # noqa: E402
from distdqn.pretrain import pretrain, task_corpus  # noqa: E402
from distdqn.trainer import build_supervisor  # noqa: E402

CONFIG = Path(__file__).resolve().parents[1] / "configs" / "lm_keyword.yaml"
WARM_STEPS = 45


def base_model(directory: Path, steps: int) -> str:
    documents, extra = task_corpus("keyword_text")
    pretrain(documents, directory, extra, max_steps=steps, seed=0)
    return str(directory)


def fine_tune(model: str, run_dir: Path, env_steps: int, max_seconds: float, overrides: list[str]) -> list[dict]:
    """One local run; its held-out evaluations [{env_steps, updates, wall_s, success}]."""
    config = load_config(
        CONFIG,
        [
            f"network.pretrained={model}",
            f"run.max_env_steps={env_steps}",
            f"run.max_seconds={max_seconds}",
            "run.eval_interval_s=4",
            "run.eval_episodes=100",
            "run.seed=0",
            "checkpoint.interval_s=0",
            *overrides,
        ],
    )
    supervisor = build_supervisor(config, run_dir, "local", quiet=True)
    try:
        supervisor.run()
    finally:
        supervisor.close()
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [
        {"env_steps": r["env_steps"], "updates": r["updates"], "wall_s": r["wall_s"], "success": r["eval.success"]}
        for r in records
        if r.get("kind") == "eval"
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env-steps", type=int, default=12_000, help="env-step budget of every arm")
    parser.add_argument("--max-seconds", type=float, default=150.0, help="wall-clock cap of every arm")
    parser.add_argument("--explore-uniform", action="store_true", help="add the warm arm with uniform exploration")
    parser.add_argument("--json", type=Path, help="also write the curves as JSON to this path")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        arms = {
            "warm": (base_model(tmp / "warm", WARM_STEPS), []),
            "scratch": (base_model(tmp / "scratch", 0), []),
        }
        if args.explore_uniform:
            arms["warm-uniform"] = (arms["warm"][0], ["actor.explore=uniform"])
        for arm, (model, overrides) in arms.items():
            curve = fine_tune(model, tmp / f"run-{arm}", args.env_steps, args.max_seconds, overrides)
            for point in curve:
                print(f"  {arm}: {point}", flush=True)
            rows.append({"arm": arm, "curve": curve})
    print("\n| arm | first eval | best | last | env steps to 0.95 |")
    print("|---|---|---|---|---|")
    for row in rows:
        c = row["curve"]
        hit = next((p["env_steps"] for p in c if p["success"] >= 0.95), None)
        best = max(p["success"] for p in c)
        print(f"| {row['arm']} | {c[0]['success']:.2f} | {best:.2f} | {c[-1]['success']:.2f} | {hit or '-'} |")
    if args.json:
        args.json.write_text(json.dumps({"rows": rows}, indent=2))


if __name__ == "__main__":
    main()
