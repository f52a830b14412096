"""The ticker's schedule and lifecycle, with real threads and a fake publisher."""
import random
import threading

from server.tasks import PeriodicTask
from server.ticker import Ticker


class Recorder:
    """Collects published values and lets a test wait for a count of them."""

    def __init__(self):
        self.values = []
        self._changed = threading.Condition()

    def __call__(self, value):
        with self._changed:
            self.values.append(value)
            self._changed.notify_all()

    def wait_for(self, count, timeout=5.0):
        with self._changed:
            assert self._changed.wait_for(lambda: len(self.values) >= count, timeout), self.values
        return list(self.values)


def spawn_thread(target, *args):
    thread = threading.Thread(target=target, args=args, daemon=True)
    thread.start()
    return thread


def threaded(spawn=spawn_thread):
    """A ``periodic`` factory making PeriodicTasks on plain threads."""
    def periodic(name, interval, action):
        return PeriodicTask(name, interval, action, spawn, threading.Event)
    return periodic


def make_ticker(publish, interval=0.02, **kwargs):
    return Ticker(interval, publish, threaded(), **kwargs)


def test_tick_draws_1_to_100_with_increasing_seq_and_keeps_a_bounded_history():
    published = Recorder()
    ticker = make_ticker(published, history_size=3, rng=random.Random(7), clock=lambda: 99)
    values = [ticker.tick() for _ in range(5)]
    assert [v['seq'] for v in values] == [1, 2, 3, 4, 5]
    assert all(1 <= v['data'] <= 100 and v['ts'] == 99 for v in values)
    assert published.values == values
    assert ticker.history() == values[-3:]


def test_draws_cover_the_whole_range():
    ticker = make_ticker(lambda value: None, rng=random.Random(1))
    assert {ticker.tick()['data'] for _ in range(5000)} == set(range(1, 101))


def test_first_client_starts_one_task_and_it_publishes_at_the_interval():
    published = Recorder()
    spawned = []
    ticker = Ticker(0.02, published,
                    threaded(lambda *a: spawned.append(spawn_thread(*a)) or spawned[-1]))
    ticker.client_connected()
    ticker.client_connected()
    values = published.wait_for(3)
    assert len(spawned) == 1 and ticker.running
    assert [v['seq'] for v in values[:3]] == [1, 2, 3]
    ticker.stop()
    assert not ticker.running and not spawned[0].is_alive()


def test_last_client_leaving_stops_the_task_and_the_next_one_resumes_seq():
    published = Recorder()
    ticker = make_ticker(published)
    ticker.client_connected()
    ticker.client_connected()
    published.wait_for(2)
    ticker.client_disconnected()
    assert ticker.running
    ticker.client_disconnected()
    assert not ticker.running
    stopped_at = ticker.seq
    ticker.client_connected()
    values = published.wait_for(len(published.values) + 2)
    assert values[-1]['seq'] > stopped_at
    assert [v['seq'] for v in values] == list(range(1, len(values) + 1))
    ticker.stop()


def test_stop_ends_a_long_wait_at_once():
    ticker = make_ticker(lambda value: None, interval=3600)
    ticker.client_connected()
    finished = threading.Event()
    threading.Thread(target=lambda: (ticker.stop(timeout=5), finished.set()), daemon=True).start()
    assert finished.wait(1.0)


def test_a_failing_publish_does_not_kill_the_task():
    calls = Recorder()

    def flaky(value):
        calls(value)
        if value['seq'] == 1:
            raise OSError('queue down')

    ticker = make_ticker(flaky)
    ticker.client_connected()
    assert [v['seq'] for v in calls.wait_for(3)][:3] == [1, 2, 3]
    ticker.stop()


def test_after_a_stop_for_good_no_client_starts_the_task_again():
    ticker = make_ticker(lambda value: None)
    ticker.client_connected()
    ticker.stop()
    ticker.client_disconnected()
    ticker.client_connected()
    assert not ticker.running
