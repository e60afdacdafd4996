"""bench.tick on a few jobs: it runs, starts a run for exactly the due jobs, and counts the same storage
calls whatever the number of jobs."""

from __future__ import annotations

from bench import tick


def test_tick_benchmark_on_a_few_jobs() -> None:
    small, large = tick.measure([10, 50], due=5, repeats=1, idle_ticks=3)  # asserts which jobs got runs

    assert (small.jobs, len(small.due_ids), len(large.due_ids)) == (10, 5, 5)
    for result in (small, large):
        assert len(result.due_tick_ms) == 1 and result.due_tick_ms[0] > 0
        assert len(result.idle_tick_ms) == 3 and all(ms > 0 for ms in result.idle_tick_ms)
        assert result.idle_calls == 1  # one query of the index
    assert small.due_calls == large.due_calls
    assert small.due_calls["table.query"] == 1 and small.due_calls["queue.send"] == 5
    assert "Tick over many scheduled jobs" in tick.report([small, large], repeats=1, idle_ticks=3)
