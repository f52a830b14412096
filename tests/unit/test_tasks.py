"""The periodic task's schedule, with a fake clock; the trampoline's order and depth."""
import sys

import pytest

from server.tasks import PeriodicTask, Trampoline


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


def test_an_action_asking_to_run_sooner_moves_the_schedule_there():
    now = [0.0]
    waits = []
    answers = iter([None, 0.25, 5.0, None])

    class FakeStop:
        def wait(self, timeout):
            waits.append(round(timeout, 6))
            now[0] += timeout
            return len(waits) > 4

    task = PeriodicTask('test', 1.0, lambda: next(answers), None, None, monotonic=lambda: now[0])
    task._run(FakeStop())
    # Sooner than its turn: 0.25 s after the second run, then every second from there; a
    # later time than its turn changes nothing.
    assert waits == [1.0, 1.0, 0.25, 1.0, 1.0]



def test_an_action_posted_from_inside_another_runs_after_it_in_a_flat_loop():
    trampoline = Trampoline()
    ran = []
    depth = sys.getrecursionlimit() * 3  # a chain this long would overflow as a recursion

    def step(n):
        ran.append(('start', n))
        if n < depth:
            trampoline.post(lambda: step(n + 1))
        ran.append(('end', n))

    trampoline.post(lambda: step(0))
    assert ran == [(edge, n) for n in range(depth + 1) for edge in ('start', 'end')]


def test_a_failing_action_is_logged_and_the_rest_still_run(caplog):
    trampoline = Trampoline()
    ran = []

    def first():
        trampoline.post(lambda: ran.append('second'))
        raise RuntimeError('telling one member failed')

    trampoline.post(first)
    trampoline.post(lambda: ran.append('later'))
    assert ran == ['second', 'later']
    assert 'a posted action failed' in caplog.text


def test_an_action_killed_mid_run_does_not_wedge_the_trampoline():
    trampoline = Trampoline()
    ran = []

    def killed():
        trampoline.post(lambda: ran.append('queued behind it'))
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        trampoline.post(killed)
    trampoline.post(lambda: ran.append('next'))
    assert ran == ['queued behind it', 'next']
