"""The periodic task's schedule, with a fake clock."""
from server.tasks import PeriodicTask


def test_schedule_does_not_drift_and_skips_ticks_it_missed():
    now = [0.0]
    waits = []
    published = []

    class FakeStop:
        def wait(self, timeout):
            waits.append(round(timeout, 6))
            now[0] += timeout + (5.0 if len(waits) == 3 else 0.01)
            return len(waits) > 5

    task = PeriodicTask('test', 1.0, lambda: published.append(now[0]), None, None,
                        monotonic=lambda: now[0])
    task._run(FakeStop())
    assert len(published) == 5
    # Each wait aims at the next whole-second deadline despite 10 ms of work per tick;
    # after a 5 s stall the missed deadlines are skipped rather than fired in a burst.
    assert waits[:3] == [1.0, 0.99, 0.99]
    assert waits[3] == 1.0

