"""The ticker's schedule, lifecycle and lease, with real threads and a fake publisher.

Every test taking ``store`` runs twice: on the in-process state and on a real Redis. Tickers
made from one ``store`` share it, as the workers of a cluster share one Redis.
"""
import logging
import random
import threading
import time

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from server.tasks import PeriodicTask
from server.ticker import Ticker
from server.ticker_state import MemoryTickerState, RedisTickerState
from tests.support.live_server import free_port
from tests.support.redis_server import RedisServer


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


def threaded(spawn=spawn_thread, tasks=None):
    """A ``periodic`` factory making PeriodicTasks on plain threads (kept in ``tasks``)."""
    def periodic(name, interval, action):
        task = PeriodicTask(name, interval, action, spawn, threading.Event)
        if tasks is not None:
            tasks.append(task)
        return task
    return periodic


def redis_state(url, history_size=60):
    client = redis.Redis.from_url(url, decode_responses=True, socket_timeout=1,
                                  socket_connect_timeout=1, retry=Retry(NoBackoff(), 0))
    return RedisTickerState(client, history_size)


class Store:
    """Makes states over one store: the same object in memory, a new client on one Redis."""

    def __init__(self, kind, redis_url=None):
        self.kind = kind
        self.redis_url = redis_url
        self.tickers = []
        self._memory = None

    def state(self, history_size):
        if self.kind == 'redis':
            return redis_state(self.redis_url, history_size)
        self._memory = self._memory or MemoryTickerState(history_size)
        return self._memory

    def ticker(self, publish, interval=0.02, periodic=None, history_size=60, **kwargs):
        ticker = Ticker(interval, publish, periodic or threaded(), self.state(history_size),
                        **kwargs)
        self.tickers.append(ticker)
        return ticker


@pytest.fixture(params=['memory', 'redis'])
def store(request):
    """A store of either kind; every ticker made from it is stopped (state closed) after."""
    url = request.getfixturevalue('redis_url') if request.param == 'redis' else None
    made = Store(request.param, url)
    yield made
    for ticker in made.tickers:
        ticker.stop()


def seqs(values):
    return [value['seq'] for value in values]


def test_tick_draws_1_to_100_with_increasing_seq_and_keeps_a_bounded_history(store):
    published = Recorder()
    ticker = store.ticker(published, history_size=3, rng=random.Random(7), clock=lambda: 99)
    values = [ticker.tick() for _ in range(5)]
    assert seqs(values) == [1, 2, 3, 4, 5]
    assert all(1 <= v['data'] <= 100 and v['ts'] == 99 for v in values)
    assert published.values == values
    assert ticker.history() == values[-3:]


def test_draws_cover_the_whole_range():
    ticker = Ticker(0.02, lambda value: None, threaded(), rng=random.Random(1))
    assert {ticker.tick()['data'] for _ in range(5000)} == set(range(1, 101))


def test_first_client_starts_one_task_and_it_publishes_at_the_interval(store):
    published = Recorder()
    spawned = []
    spawn = threaded(lambda *a: spawned.append(spawn_thread(*a)) or spawned[-1])
    ticker = store.ticker(published, periodic=spawn)
    ticker.client_connected()
    ticker.client_connected()
    values = published.wait_for(3)
    assert len(spawned) == 1 and ticker.running
    assert seqs(values[:3]) == [1, 2, 3]
    ticker.stop()
    assert not ticker.running and not spawned[0].is_alive()


def test_last_client_leaving_stops_the_task_and_the_next_one_resumes_seq(store):
    published = Recorder()
    ticker = store.ticker(published)
    ticker.client_connected()
    ticker.client_connected()
    published.wait_for(2)
    ticker.client_disconnected()
    assert ticker.running
    ticker.client_disconnected()
    assert not ticker.running
    stopped_at = ticker.history()[-1]['seq']
    ticker.client_connected()
    values = published.wait_for(len(published.values) + 2)
    assert values[-1]['seq'] > stopped_at
    assert seqs(values) == list(range(1, len(values) + 1))


def test_stop_ends_a_long_wait_at_once(store):
    ticker = store.ticker(lambda value: None, interval=3600)
    ticker.client_connected()
    finished = threading.Event()
    threading.Thread(target=lambda: (ticker.stop(timeout=5), finished.set()), daemon=True).start()
    assert finished.wait(1.0)


def test_a_failing_publish_does_not_kill_the_task(store):
    calls = Recorder()

    def flaky(value):
        calls(value)
        if value['seq'] == 1:
            raise OSError('queue down')

    ticker = store.ticker(flaky)
    ticker.client_connected()
    assert seqs(calls.wait_for(3))[:3] == [1, 2, 3]


def test_after_a_stop_for_good_no_client_starts_the_task_again(store):
    ticker = store.ticker(lambda value: None)
    ticker.client_connected()
    ticker.stop()
    ticker.client_disconnected()
    ticker.client_connected()
    assert not ticker.running


def test_a_ticker_on_the_same_store_carries_seq_and_history_on(store):
    first = store.ticker(lambda value: None)
    drawn = [first.tick() for _ in range(3)]
    first.stop()
    second = store.ticker(lambda value: None)
    assert second.history() == drawn
    assert second.tick()['seq'] == 4


def test_the_lease_lets_one_ticker_of_a_store_publish_until_it_lets_go(store):
    holder = store.ticker(lambda value: None, interval=10)
    other = store.ticker(lambda value: None, interval=10)
    assert holder.tick()['seq'] == 1
    assert other.tick() is None
    assert holder.tick()['seq'] == 2
    holder.client_connected()
    holder.client_disconnected()  # its last client: the lease goes with it
    assert other.tick()['seq'] == 3
    assert holder.tick() is None
    other.stop()  # shutdown lets go too
    assert holder.tick()['seq'] == 4


def test_two_running_tickers_publish_each_seq_once_and_one_at_a_time(store):
    interval = 0.1
    published = Recorder()
    tickers = [store.ticker(published, interval=interval) for _ in range(2)]
    started = time.monotonic()
    for ticker in tickers:
        ticker.client_connected()
    values = published.wait_for(10)
    elapsed = time.monotonic() - started
    assert seqs(values) == list(range(1, len(values) + 1))
    # One value per interval for the pair, not one per ticker.
    assert len(values) <= elapsed / interval + 1


def test_another_ticker_takes_over_when_the_holder_stops_renewing(store):
    interval = 0.1
    published = Recorder()
    holder_tasks = []
    holder = store.ticker(published, interval=interval, periodic=threaded(tasks=holder_tasks))
    assert holder.tick()['seq'] == 1
    holder.client_connected()
    standby = store.ticker(published, interval=interval)
    standby.client_connected()
    published.wait_for(4)
    holder_tasks[0].close(timeout=1)  # a holder that dies: its ticks end, it lets nothing go
    died_at = time.monotonic()
    last = published.values[-1]['seq']
    taken = published.wait_for(len(published.values) + 1)[-1]
    took = time.monotonic() - died_at
    assert taken['seq'] == last + 1
    # The lease lasts 1.75 intervals from the holder's last tick; the standby tries again
    # the moment it runs out.
    assert took < Ticker.LEASE_INTERVALS * interval + 0.3, took
    assert seqs(published.values) == list(range(1, len(published.values) + 1))


def test_a_standby_takes_the_lease_when_it_runs_out_not_at_its_next_tick(store):
    interval, lease_intervals = 0.3, 1.2
    published = Recorder()
    holder = store.ticker(published, interval=interval, lease_intervals=lease_intervals)
    standby = store.ticker(published, interval=interval, lease_intervals=lease_intervals)
    holder.tick()  # and never again, as if it died right after
    taken_at = time.monotonic()
    standby.client_connected()  # ticks at 1 interval (lease still held), then at 2
    published.wait_for(2)
    took = time.monotonic() - taken_at
    assert published.values[1]['seq'] == 2
    # At its first tick the standby learns that the lease has 0.2 intervals left and comes
    # back then, not a whole interval later.
    assert lease_intervals * interval <= took < lease_intervals * interval + 0.15, took


def test_an_outage_is_logged_once_and_the_ticker_goes_on_when_redis_is_back(tmp_path, caplog):
    port = free_port()
    published = Recorder()
    state = redis_state(f'redis://127.0.0.1:{port}/0')
    ticker = Ticker(0.05, published, threaded(), state)
    caplog.set_level(logging.INFO, logger='server.ticker')
    try:
        ticker.client_connected()
        assert ticker.tick() is None and ticker.history() == []
        time.sleep(0.3)  # several ticks into the outage
        assert ticker.running and published.values == []
        with RedisServer(tmp_path, port=port):
            value = published.wait_for(1)[0]
            assert value['seq'] == 1 and ticker.history()[0] == value
            ticker.stop()
    finally:
        ticker.stop()
    messages = [record.getMessage() for record in caplog.records]
    assert len([m for m in messages if 'unavailable' in m]) == 1, messages
    assert len([m for m in messages if 'reachable again' in m]) == 1, messages
