"""The metrics' own parts: who may read them, the store timing, the ticker's lag, and the
label values a client cannot add to."""
import time

import pytest

from server.metrics import Metrics, TimedStore
from server.tasks import PeriodicTask


def sample(metrics, name, **labels):
    return metrics.registry.get_sample_value(name, labels)


def test_metrics_allow_addresses_and_networks_of_either_family():
    metrics = Metrics(allow=['127.0.0.1', '10.0.0.0/8', '::1'])
    for address in ('127.0.0.1', '10.9.8.7', '::1', '::ffff:10.0.0.1'):
        assert metrics.allows(address), address
    for address in ('127.0.0.2', '11.0.0.1', '::2', '', None, 'localhost', '10.0.0.1%eth0'):
        assert not metrics.allows(address), address


def test_the_default_allows_loopback_alone():
    metrics = Metrics()
    assert metrics.allows('127.0.0.1') and metrics.allows('::1')
    assert not metrics.allows('127.0.0.53') and not metrics.allows('192.168.1.1')


def test_an_event_nobody_handles_is_other_and_an_unknown_reason_too():
    metrics = Metrics()
    counts = metrics.namespace_counts('/chat', ['my_event'])
    for event in ('my_event', 'made_up', 'another', 'my_event'):
        counts.event_in(event)
    counts.disconnected('client disconnect')
    counts.disconnected('a reason of a future python-socketio')
    assert sample(metrics, 'relay_events_received_total', namespace='/chat',
                  event='my_event') == 2
    assert sample(metrics, 'relay_events_received_total', namespace='/chat', event='other') == 2
    assert sample(metrics, 'relay_events_received_total', namespace='/chat',
                  event='made_up') is None
    assert sample(metrics, 'relay_disconnects_total', namespace='/chat', reason='other') == 1


class SlowStore:
    def __init__(self):
        self.closed = False

    def append(self, room, nick, text, sender_key=None, client_id=None):
        time.sleep(0.02)
        return (room, nick, text), False

    def since(self, room, since_id, limit):
        raise RuntimeError('the database is gone')

    def close(self):
        self.closed = True

    def __getattr__(self, name):  # the other operations, never called here
        return lambda *args: None


def test_a_timed_store_times_each_call_by_operation_failures_included():
    metrics = Metrics()
    store = TimedStore(SlowStore(), metrics.store_seconds)
    assert store.append('lobby', 'ana', 'hi', client_id='c1') == (('lobby', 'ana', 'hi'), False)
    with pytest.raises(RuntimeError):
        store.since('lobby', 0, 10)
    assert sample(metrics, 'relay_store_seconds_count', operation='append') == 1
    assert 0.02 <= sample(metrics, 'relay_store_seconds_sum', operation='append') < 1.0
    assert sample(metrics, 'relay_store_seconds_bucket', operation='append', le='0.01') == 0
    assert sample(metrics, 'relay_store_seconds_count', operation='since') == 1
    store.close()  # anything else reaches the store as it is
    assert store.closed


def test_a_periodic_task_tells_how_late_each_run_started():
    now = [0.0]
    lags = []

    class FakeStop:
        calls = 0

        def wait(self, timeout):
            FakeStop.calls += 1
            now[0] += timeout + (0.3 if FakeStop.calls == 2 else 0.0)
            return FakeStop.calls > 3

    task = PeriodicTask('test', 1.0, lambda: None, None, None, monotonic=lambda: now[0],
                        on_lag=lags.append)
    task._run(FakeStop())
    assert [round(lag, 6) for lag in lags] == [0.0, 0.3, 0.0]
