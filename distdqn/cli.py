"""The `distdqn` command line: train (on Ray by default, `--local` in one process), status and scale (of a running
or finished run), eval, generate, plot, sweep (on Ray Tune), show-config, tasks, and pretrain (a small causal LM
for `network.pretrained`)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from distdqn.config import Config, ConfigError, dump_yaml, load_config
from distdqn.extras import MissingExtra

# CLI flag -> dotted config key (the flags are shortcuts for dotted overrides)
FLAG_KEYS = {
    "actors": "actor.num_actors",
    "envs_per_actor": "env.envs_per_actor",
    "shards": "replay.num_shards",
    "task": "env.task",
    "difficulty": "env.difficulty",
    "seed": "run.seed",
    "name": "run.name",
    "run_dir": "run.run_dir",
    "max_env_steps": "run.max_env_steps",
    "max_updates": "run.max_updates",
    "max_seconds": "run.max_seconds",
    "target_success": "run.target_success",
    "address": "cluster.address",
    "num_cpus": "cluster.num_cpus",
}


def _add_config_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", "-c", help="YAML experiment config (see configs/)")
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="dotted overrides, e.g. learner.lr=3e-4")


def _add_run_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--task", help="task name or module:Class (env.task)")
    p.add_argument("--difficulty", choices=["easy", "medium", "hard"], help="task preset (env.difficulty)")
    p.add_argument("--seed", type=int, help="master seed (run.seed)")
    p.add_argument("--name", help="run name (run.name; default <task>_<difficulty>); run dir defaults to runs/<name>")
    p.add_argument("--run-dir", help="run directory (run.run_dir)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="distdqn", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    t = sub.add_parser("train", help="train a Q-network (embedded local Ray by default)")
    _add_config_args(t)
    _add_run_args(t)
    t.add_argument("--local", action="store_true", help="run everything in this process (no Ray): debugging mode")
    t.add_argument("--address", help="join an existing Ray cluster ('auto' or host:port) instead of a local one")
    t.add_argument("--num-cpus", type=int, help="CPUs of the embedded Ray instance (cluster.num_cpus)")
    t.add_argument("--actors", type=int, help="number of actors (actor.num_actors)")
    t.add_argument("--envs-per-actor", type=int, help="environments per actor (env.envs_per_actor)")
    t.add_argument("--shards", type=int, help="replay shards (replay.num_shards)")
    t.add_argument("--max-env-steps", type=int, help="budget in env steps, whole run (run.max_env_steps)")
    t.add_argument("--max-updates", type=int, help="budget in learner updates, whole run (run.max_updates)")
    t.add_argument(
        "--max-seconds",
        type=float,
        help="budget in seconds of training on the run clock, which --resume carries over (run.max_seconds)",
    )
    t.add_argument("--target-success", type=float, help="stop when held-out success reaches this (run.target_success)")
    t.add_argument("--resume", metavar="DIR", help="continue a run from its run directory or a checkpoint path")
    t.add_argument("--json", metavar="PATH", help="write the run summary as JSON")
    t.add_argument("--quiet", action="store_true", help="no live progress line")
    t.add_argument("--examples", type=int, default=5, help="held-out generations printed at the end")

    for name, helptext in (
        ("eval", "greedy evaluation on held-out prompts"),
        ("generate", "print greedy generations for held-out prompts"),
    ):
        e = sub.add_parser(name, help=helptext)
        e.add_argument("run", metavar="RUN_DIR_OR_CHECKPOINT", help="a run directory or a checkpoint directory")
        e.add_argument(
            "--episodes", type=int, default=500 if name == "eval" else 10, help="episodes to play (default %(default)s)"
        )
        e.add_argument(
            "--split", choices=["train", "test"], default="test", help="prompts to play (default %(default)s: held out)"
        )
        e.add_argument("--seed", type=int, default=0, help="seed of the episodes drawn (default %(default)s)")
        e.add_argument("--json", metavar="PATH", help="write the evaluation summary as JSON")

    st = sub.add_parser("status", help="state, progress and health of a run (live or finished), from its run directory")
    st.add_argument("run", metavar="RUN_DIR", help="the run directory (runs/<name>, or --run-dir of the run)")
    st.add_argument("--json", action="store_true", help="print the status record as JSON")

    sc = sub.add_parser("scale", help="change the actor count of a running run")
    sc.add_argument("run", metavar="RUN_DIR", help="the run directory of the running run")
    sc.add_argument("--actors", type=int, required=True, help="the new number of actors")
    sc.add_argument(
        "--wait",
        type=float,
        default=60.0,
        help="seconds to wait for the run to apply it (default %(default)s; 0: don't wait)",
    )

    pl = sub.add_parser("plot", help="learning curves of one or more runs to a PNG (needs distdqn[plot])")
    pl.add_argument("runs", nargs="+", metavar="RUN", help="run directories (or their metrics.jsonl), overlaid")
    pl.add_argument(
        "--metric",
        action="extend",
        nargs="+",
        help="metrics.jsonl keys to draw, one panel each (default: held-out and training success, loss, env steps/s, "
        "updates/s)",
    )
    pl.add_argument("--x", choices=["env_steps", "wall_s"], default="env_steps", help="the x axis")
    pl.add_argument("--out", required=True, metavar="FILE.png", help="the PNG to write")

    sw = sub.add_parser("sweep", help="a hyper-parameter grid as Ray Tune trials (needs distdqn[tune])")
    sw.add_argument("--config", "-c", help="the base YAML experiment config (see configs/)")
    sw.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="base overrides (before --grid)")
    sw.add_argument("--grid", nargs="+", action="extend", default=[], metavar="KEY=V1,V2", help="values to try")
    sw.add_argument("--sweep", metavar="FILE.yaml", help="a sweep file: grid, samples, config, overrides")
    sw.add_argument("--samples", type=int, help="runs per grid point, seeds run.seed + 0, 1, ... (default 1)")
    sw.add_argument("--name", help="the sweep's name; its directory defaults to sweeps/<name> (run.name)")
    sw.add_argument("--sweep-dir", help="the sweep's directory")
    sw.add_argument("--address", help="join an existing Ray cluster ('auto' or host:port) instead of a local one")
    sw.add_argument("--num-cpus", type=int, help="CPUs of the embedded Ray instance (cluster.num_cpus)")
    sw.add_argument("--trial-cpus", type=float, default=1.0, help="CPUs of each trial's own process (evaluation)")
    sw.add_argument("--max-concurrent", type=int, default=0, help="trials at once (0: as many as resources allow)")
    sw.add_argument("--json", metavar="PATH", help="write the ranked results as JSON")
    sw.add_argument("--quiet", action="store_true", help="no Tune progress output")

    s = sub.add_parser("show-config", help="print the resolved config (defaults <- YAML <- overrides)")
    _add_config_args(s)

    t = sub.add_parser("tasks", help="list the built-in tasks, or describe one (its rules, options and presets)")
    t.add_argument("name", nargs="?", help="a built-in task: print its description, options and difficulty presets")

    pt = sub.add_parser("pretrain", help="supervised warm-start: train a small causal LM, write a Hugging Face dir")
    source = pt.add_mutually_exclusive_group(required=True)
    source.add_argument("--task", help="a task over text (e.g. keyword_text): its train demonstrations")
    source.add_argument("--text", metavar="FILE", help="a corpus: one document per non-empty line")
    pt.add_argument("--out", required=True, metavar="DIR", help="the model directory to write (network.pretrained)")
    pt.add_argument("--difficulty", choices=["easy", "medium", "hard"], default="easy")
    pt.add_argument("--layers", type=int, default=2)
    pt.add_argument("--dim", type=int, default=64)
    pt.add_argument("--heads", type=int, default=2)
    pt.add_argument("--max-steps", type=int, default=2000, help="budget in optimizer steps")
    pt.add_argument("--max-seconds", type=float, default=0.0, help="budget in wall-clock seconds (0: none)")
    pt.add_argument("--lr", type=float, default=3e-3)
    pt.add_argument("--seed", type=int, default=0)
    return parser


def cli_overrides(args: argparse.Namespace) -> list[str]:
    """Dotted overrides from the positional KEY=VALUE items and the shortcut flags (flags win)."""
    overrides = list(getattr(args, "overrides", []) or [])
    for flag, key in FLAG_KEYS.items():
        value = getattr(args, flag, None)
        if value is not None:
            overrides.append(f"{key}={value}")
    return overrides


def resolve_config(args: argparse.Namespace) -> Config:
    return load_config(args.config, cli_overrides(args))


def cmd_pretrain(args: argparse.Namespace) -> int:
    from distdqn.pretrain import pretrain, task_corpus

    if args.task:
        documents, extra = task_corpus(args.task, args.difficulty)
    else:
        lines = [line.strip() for line in Path(args.text).read_text().splitlines() if line.strip()]
        documents, extra = [("", line) for line in lines], []
    if not documents:
        raise ValueError("nothing to train on: the task has no demonstrations or the file no text")
    stats = pretrain(
        documents,
        args.out,
        extra,
        layers=args.layers,
        dim=args.dim,
        heads=args.heads,
        max_steps=args.max_steps,
        max_seconds=args.max_seconds,
        lr=args.lr,
        seed=args.seed,
    )
    print(
        f"wrote {args.out}: {stats['parameters']:,} parameters, {stats['steps']} steps in {stats['seconds']:.1f} s, "
        f"final loss {stats['loss']:.3f}"
    )
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from distdqn.envs import task_shape
    from distdqn.run import prepare_run_dir, write_json
    from distdqn.trainer import train

    if args.resume:
        from distdqn.checkpoint import config_for_resume

        if args.config:
            raise ValueError(
                "--config cannot be combined with --resume: the checkpoint's config is used; "
                "change it with dotted overrides or flags"
            )
        config, _ = config_for_resume(Path(args.resume), cli_overrides(args))
    else:
        config = resolve_config(args)
    task_shape(config.env)  # the task and its options are checked before anything is written or started
    directory = prepare_run_dir(config, resuming=args.resume is not None)
    summary = train(
        config,
        directory,
        runtime="local" if args.local else "ray",
        resume=Path(args.resume) if args.resume else None,
        quiet=args.quiet,
        examples=args.examples,
    )
    if args.json:
        write_json(args.json, summary)
    print(_summary_line(summary))
    return 1 if str(summary.get("stop_reason")).startswith("failed") else 0


def _summary_line(s: dict) -> str:
    if s.get("time_to_target_s") is not None:
        ttt = f"{s['time_to_target_s']:.1f}s"
    else:
        ttt = "not reached" if s.get("target_success") else "no target"
    final = f"{s['final_success']:.3f}" if s.get("final_success") is not None else "n/a"
    startup = f" (+{s['startup_s']:.1f}s start-up)" if s.get("startup_s") is not None else ""
    return (
        f"done: {s.get('stop_reason')}; env_steps={s['env_steps']} updates={s['updates']} "
        f"wall={s['wall_s']:.1f}s{startup} time_to_target={ttt} held-out success={final} run_dir={s['run_dir']}"
    )


def cmd_eval(args: argparse.Namespace, print_all: bool) -> int:
    from distdqn.checkpoint import load_for_inference
    from distdqn.evaluation import evaluate
    from distdqn.run import write_json

    config, weights, where = load_for_inference(Path(args.run))
    result = evaluate(
        config.network,
        weights,
        config.env,
        episodes=args.episodes,
        seed=args.seed,
        split=args.split,
        examples=args.episodes if print_all else 5,
    )
    for prompt, text, ok in result.examples:
        print(f"{'+' if ok >= 1 else '-'} [{ok:.2f}] {prompt} -> {text}")
    summary = {
        "checkpoint": str(where),
        "split": args.split,
        "episodes": result.episodes,
        "final_success": result.success,
        "mean_return": result.mean_return,
        "mean_length": result.mean_length,
    }
    print(f"{args.split} success={result.success:.4f} return={result.mean_return:.3f} over {result.episodes} episodes")
    if args.json:
        write_json(args.json, summary)
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    import json

    from distdqn.control import format_status, read_status

    status = read_status(Path(args.run))
    print(json.dumps(status, indent=1) if args.json else format_status(status))
    return 0


def cmd_scale(args: argparse.Namespace) -> int:
    import time

    from distdqn.control import read_status, request_scale

    status = read_status(Path(args.run))
    if not status["live"]:
        raise ValueError(f"{args.run}: the run is not running (state: {status['state']}); resume it with --actors")
    request = request_scale(Path(args.run), args.actors)
    print(f"asked {args.run} for {args.actors} actors (request {request})")
    deadline = time.monotonic() + args.wait
    while time.monotonic() < deadline:
        status = read_status(Path(args.run))
        if status.get("control_request") == request and status.get("control_refused"):
            raise ValueError(f"{args.run}: the run refused {args.actors} actors: {status['control_refused']}")
        if status.get("control_request") == request and status.get("actors_alive") == args.actors:
            print(f"running {args.actors} actors; epsilons {sorted(status['epsilons'].values(), reverse=True)}")
            return 0
        if not status["live"]:
            raise ValueError(f"{args.run}: the run stopped before applying the request (state: {status['state']})")
        time.sleep(0.5)
    if args.wait:
        print(f"not applied within {args.wait:g} s (alive: {status.get('actors_alive')}); `distdqn status` will tell")
        return 1
    return 0


def cmd_plot(args: argparse.Namespace) -> int:
    from distdqn.plot import plot_runs

    out = plot_runs([Path(run) for run in args.runs], Path(args.out), metrics=args.metric, x=args.x)
    print(f"wrote {out}")
    return 0


def cmd_sweep(args: argparse.Namespace) -> int:
    from distdqn.extras import require

    require("ray.tune", "tune", "distdqn sweep")
    from distdqn.config import task_run_name
    from distdqn.distributed.sweep import SweepSpec, format_table, parse_grid, read_sweep_file, run_sweep
    from distdqn.run import write_json

    data = read_sweep_file(Path(args.sweep)) if args.sweep else {}
    if args.config and data.get("config"):
        raise ValueError("give the base config once: --config or the sweep file's `config`, not both")
    args.config = args.config or data.get("config")
    args.overrides = [*data.get("overrides", []), *(args.overrides or [])]
    grid = {**data.get("grid", {}), **parse_grid(args.grid)}
    if not grid:
        raise ValueError("nothing to sweep: give --grid KEY=V1,V2 or a --sweep file with a grid")
    config = resolve_config(args)
    samples = args.samples or data.get("samples", 1)
    sweep_dir = Path(args.sweep_dir or Path("sweeps") / (config.run.name or task_run_name(config.env)))
    spec = SweepSpec(config.to_dict(), grid, samples)
    rows = run_sweep(spec, sweep_dir, trial_cpus=args.trial_cpus, max_concurrent=args.max_concurrent, quiet=args.quiet)
    print(format_table(rows))
    if (sweep_dir / "best.yaml").is_file():
        print(f"best config: {sweep_dir / 'best.yaml'}  (distdqn train -c {sweep_dir / 'best.yaml'})")
    if args.json:
        write_json(args.json, {"rows": rows})
    return 0 if rows and all("error" not in row for row in rows) else 1


def cmd_tasks(name: str | None) -> int:
    import importlib

    from distdqn.envs.registry import BUILTIN_TASKS, DIFFICULTIES, TOKENIZER_TASKS, make_env
    from distdqn.typed import suggest

    if name is not None:
        if name not in BUILTIN_TASKS:
            raise ValueError(f"no built-in task {name!r}{suggest(name, BUILTIN_TASKS)}; `distdqn tasks` lists them")
        print(_describe_task(importlib.import_module(BUILTIN_TASKS[name]), DIFFICULTIES))
        return 0
    for name, module in BUILTIN_TASKS.items():
        task_module = importlib.import_module(module)
        doc = (task_module.__doc__ or "").strip().splitlines()
        summary = getattr(task_module, "SUMMARIES", {}).get(name) or (doc[0] if doc else "")
        if name in TOKENIZER_TASKS:
            sizes = "over text: runs in a tokenizer's id space (env.tokenizer, or network.pretrained with trunk hf)"
        else:
            sizes = ", ".join(
                f"{level} V={e.vocab_size} L={e.max_len}"
                for level in DIFFICULTIES
                for e in [make_env(name, num_envs=1, difficulty=level)]
            )
        print(f"{name:14s} {summary}\n{'':14s} {sizes}")
    print("\none task's rules, options (env.options.KEY) and presets: distdqn tasks NAME")
    return 0


def _describe_task(module, difficulties) -> str:
    """A built-in task module's docstring, its `Options` fields as written (defaults and comments), and `PRESETS`."""
    import ast
    import inspect
    import textwrap

    parts = [(module.__doc__ or "").strip()]
    options, presets = getattr(module, "Options", None), getattr(module, "PRESETS", None)
    if options is None or presets is None:
        return "\n".join([*parts, f"options: see {module.__file__}"])
    source = textwrap.dedent(inspect.getsource(options))
    fields = [n for n in ast.parse(source).body[0].body if isinstance(n, ast.AnnAssign)]
    lines = source.splitlines()
    start = fields[0].lineno - 1
    while lines[start - 1].strip().startswith("#"):  # the first field's comment lines above it
        start -= 1
    parts.append("\noptions (env.options.KEY): the defaults below, then the difficulty's preset, then your config")
    body = textwrap.dedent("\n".join(line for line in lines[start : fields[-1].end_lineno] if line.strip()))
    parts.append(textwrap.indent(body, "  "))
    parts.append("\npresets (env.difficulty):")
    parts += [f"  {level:7s} " + " ".join(f"{k}={v}" for k, v in presets[level].items()) for level in difficulties]
    return "\n".join(parts)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    # dotted overrides may come after flags (`--actors 4 learner.lr=1e-4`): argparse leaves those in `extra`
    unknown = [item for item in extra if item.startswith("-") or "=" not in item]
    if unknown or (extra and not hasattr(args, "overrides")):
        parser.error(f"unrecognized arguments: {' '.join(unknown or extra)}")
    if extra:
        args.overrides = [*(args.overrides or []), *extra]
    try:
        if args.command == "train":
            return cmd_train(args)
        if args.command in ("eval", "generate"):
            return cmd_eval(args, print_all=args.command == "generate")
        if args.command == "status":
            return cmd_status(args)
        if args.command == "scale":
            return cmd_scale(args)
        if args.command == "sweep":
            return cmd_sweep(args)
        if args.command == "plot":
            return cmd_plot(args)
        if args.command == "show-config":
            print(dump_yaml(resolve_config(args)), end="")
            return 0
        if args.command == "tasks":
            return cmd_tasks(args.name)
        if args.command == "pretrain":
            return cmd_pretrain(args)
    except KeyboardInterrupt:  # a second stop signal (the first one stops the run after a final checkpoint)
        print("distdqn: stopped at once by a second signal; the last complete checkpoint stands", file=sys.stderr)
        return 130
    except ConfigError as e:
        print(f"distdqn: {e}", file=sys.stderr)
        return 2
    except (FileNotFoundError, ValueError, ConnectionError, MissingExtra) as e:  # bad input, no cluster, no extra
        if os.environ.get("DISTDQN_DEBUG"):
            raise
        print(f"distdqn: error: {e}", file=sys.stderr)
        return 2
    except Exception as e:  # anything else (an unwritable run directory, a task that raises, ...): one line
        if os.environ.get("DISTDQN_DEBUG"):
            raise
        from distdqn.supervisor import describe

        print(f"distdqn: error: {describe(e)} (DISTDQN_DEBUG=1 shows the traceback)", file=sys.stderr)
        return 1
    return 1


if __name__ == "__main__":
    sys.exit(main())
