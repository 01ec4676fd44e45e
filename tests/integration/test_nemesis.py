"""A slice of the nemesis run (tests/stress/nemesis.py, docs/reliability.md): three real
nodes on one PostgreSQL, the workload and every fault kind for about 75 seconds, and the
checker over the history finds nothing."""

from __future__ import annotations

import pytest

from tests.stress.nemesis import Nemesis, run

pytestmark = pytest.mark.slow


def test_three_nodes_under_faults_never_disagree() -> None:
    result = run(minutes=1.25, seed=19)
    assert result["violations"] == 0, result["violation_list"]
    assert result["operations"] >= 200
    assert all(result["faults"][fault] >= 1 for fault in Nemesis.FAULTS), result["faults"]
    # Every heal converged (a mark that never reached every node is a violation); the
    # 2 s bound itself is a figure (docs/reliability.md), not asserted on a shared machine.
    assert result["convergence_after_heal"]["count"] >= len(Nemesis.FAULTS)
