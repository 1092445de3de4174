"""The CI learning test (runs in the default suite): the fastest-learning target task, grammar (easy), reaches
held-out validity 0.99 with the local runner on a fixed seed. It stops at the target (usually well inside the
budget); the budget leaves headroom for a slower 2-core machine."""

from tests.slow._learning import train_to_target

BUDGET_S = 150


def test_grammar_easy_learns(tmp_path):
    summary = train_to_target("grammar_easy", tmp_path, target=0.99, max_seconds=BUDGET_S)
    assert summary["time_to_target_s"] is not None, (
        f"grammar easy: held-out validity {summary['best_success']} (best) < 0.99 after {BUDGET_S} s"
    )
