"""A slice of the nemesis run (tests/stress/nemesis.py, docs/reliability.md): three real
nodes on one PostgreSQL, the workload and every fault kind for about 75 seconds, and the
checker over the history finds nothing."""

from __future__ import annotations

from tests.stress.nemesis import Nemesis, run


def test_three_nodes_under_faults_never_disagree() -> None:
    result = run(minutes=1.25, seed=19)
    assert result["violations"] == 0, result["violation_list"]
    assert result["operations"] >= 200
    assert all(result["faults"][fault] >= 1 for fault in Nemesis.FAULTS), result["faults"]
    assert result["convergence_after_heal"]["max_ms"] <= 2000
