"""Benchmark of the msgpack wire format: encode + decode throughput of transition messages on one core.

Usage: python scripts/bench_wire.py [--quick] [--json PATH]. Goal: >= 2,000,000 transitions/s encode + decode with
64-token rows in batches of 1024.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

from distdqn import spec, wire  # noqa: E402

GOAL_TRANSITIONS_PER_S = 2_000_000


def make_batch(vocab: int, max_len: int, n: int, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    batch = spec.empty_batch(vocab, max_len, n)
    batch[spec.TOKENS][:] = rng.integers(0, vocab, batch[spec.TOKENS].shape)
    batch[spec.RETURN][:] = rng.normal(size=n)
    return batch


def rate(fn, seconds: float, repeats: int = 7) -> float:
    """Calls per second of `fn`: the median over `repeats` runs of about seconds / repeats each (robust to the
    preemptions of a shared machine without picking the luckiest run)."""
    fn()  # warm-up
    rates = []
    for _ in range(repeats):
        calls, start = 0, time.perf_counter()
        while (elapsed := time.perf_counter() - start) < seconds / repeats:
            fn()
            calls += 1
        rates.append(calls / elapsed)
    return float(np.median(rates))


def bench(vocab: int, max_len: int, batch_size: int, seconds: float) -> dict:
    batch = make_batch(vocab, max_len, batch_size)
    priorities = np.random.default_rng(1).random(batch_size).astype(np.float32)
    schema = spec.transition_dtypes(vocab, max_len)
    data = wire.encode_transitions(batch, priorities, 1, 0, 0)
    encode = rate(lambda: wire.encode_transitions(batch, priorities, 1, 0, 0), seconds)
    decode = rate(lambda: wire.decode_transitions(data, schema), seconds)
    both = rate(lambda: wire.decode_transitions(wire.encode_transitions(batch, priorities, 1, 0, 0), schema), seconds)
    return {
        "tokens": f"{max_len} x {schema[spec.TOKENS][0]}",
        "batch": batch_size,
        "message_bytes": len(data),
        "encode_transitions_per_s": encode * batch_size,
        "decode_transitions_per_s": decode * batch_size,
        "roundtrip_transitions_per_s": both * batch_size,
        "roundtrip_mb_per_s": both * len(data) / 1e6,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="shorter measurements (a few seconds in all)")
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    args = parser.parse_args()
    seconds = 0.3 if args.quick else 2.0
    cases = [(32_000, 64, 1024), (70_000, 64, 1024), (200, 64, 1024), (32_000, 64, 256), (32_000, 256, 1024)]
    rows = [bench(v, length, n, seconds) for v, length, n in cases]
    header = (
        f"{'tokens':>14} {'batch':>6} {'msg KB':>8} {'encode/s':>12} {'decode/s':>12} {'enc+dec/s':>12} {'MB/s':>8}"
    )
    print("transitions per second, one core")
    print(header)
    for r in rows:
        print(
            f"{r['tokens']:>14} {r['batch']:>6} {r['message_bytes'] / 1024:>8.1f} "
            f"{r['encode_transitions_per_s']:>12,.0f} {r['decode_transitions_per_s']:>12,.0f} "
            f"{r['roundtrip_transitions_per_s']:>12,.0f} {r['roundtrip_mb_per_s']:>8.0f}"
        )
    goal_rows = [r for r in rows if r["batch"] == 1024 and r["tokens"].startswith("64 ")]
    worst = min(r["roundtrip_transitions_per_s"] for r in goal_rows)
    verdict = "met" if worst >= GOAL_TRANSITIONS_PER_S else "MISSED"
    print(f"goal: encode+decode >= {GOAL_TRANSITIONS_PER_S:,}/s with 64-token rows, batches of 1024: {verdict} "
          f"(worst {worst:,.0f}/s)")  # fmt: skip
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"rows": rows, "goal_transitions_per_s": GOAL_TRANSITIONS_PER_S, "goal_met": verdict == "met"},
                      f, indent=2)  # fmt: skip


if __name__ == "__main__":
    main()
