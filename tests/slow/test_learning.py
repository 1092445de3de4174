"""Learning tests (slow, `pytest -m slow`): each target task reaches its held-out target with the local runner on a
fixed seed, on CPU, within a budget sized for a 2-core machine (about 2x what it takes there)."""

import pytest

from tests.slow._learning import train_to_target

pytestmark = pytest.mark.slow

CASES = [
    # config, target, budget in seconds
    ("keyword_easy", 0.95, 300),  # held-out success: every concept, grammatical and plausible
    ("grammar_easy", 0.99, 240),  # validity
    ("arithmetic_easy", 0.99, 150),  # exact match on held-out operand pairs (~36k env steps, ~66 s)
    ("shortest_path_easy", 0.95, 120),  # mean optimality on held-out start-goal pairs (action mask on; ~11 s)
]


@pytest.mark.parametrize(
    ("config_name", "target", "budget"),
    CASES,
    ids=["keyword_easy", "grammar_easy", "arithmetic_easy", "shortest_path_easy"],
)
def test_reaches_target(config_name, target, budget, tmp_path):
    summary = train_to_target(config_name, tmp_path, target, budget)
    assert summary["time_to_target_s"] is not None, (
        f"{config_name}: held-out success {summary['best_success']} (best) < {target} after {budget} s"
    )
    assert summary["best_success"] >= target
