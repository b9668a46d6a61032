import os

import pytest

import model.cpus as cpus


def test_counts_the_cores_this_process_may_use() -> None:
    assert 1 <= cpus.available_cpus() <= len(os.sched_getaffinity(0))


def test_cgroup_quota_bounds_the_count(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cpus, "_cgroup_cpu_quota", lambda: 0.5)
    assert cpus.available_cpus() == 1
