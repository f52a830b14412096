"""/test_conn against the real run.py process (PUSH_INTERVAL=0.2 s)."""
import statistics
import time

import pytest

from tests.support.sio_client import RecordingClient

pytestmark = pytest.mark.live
NS = '/test_conn'


def ticker_client(server, transports=('websocket',)):
    return RecordingClient(server.url, [NS], transports=transports)


def test_two_clients_see_the_same_values_at_the_interval(live_server):
    with ticker_client(live_server) as a, ticker_client(live_server, ('polling',)) as b:
        seen_a = a.wait_for('server_response', 6, namespace=NS)
        first_seq = seen_a[0]['seq']
        seen_b = b.wait_for('server_response', 6, namespace=NS,
                            where=lambda v: v['seq'] >= first_seq)
        by_seq = {v['seq']: v for v in seen_b}
        for value in seen_a:
            if value['seq'] in by_seq:
                assert by_seq[value['seq']] == value
        seqs = [v['seq'] for v in seen_a]
        assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))
        assert all(isinstance(v['data'], int) and 1 <= v['data'] <= 100 for v in seen_a)
        gaps = [(later['ts'] - earlier['ts']) / 1000 for earlier, later in zip(seen_a, seen_a[1:])]
        assert 0.1 < statistics.median(gaps) < 0.4, gaps


def test_a_new_client_gets_the_recent_values_first(live_server):
    with ticker_client(live_server) as first:
        latest = first.wait_for('server_response', 3, namespace=NS)[-1]
        with ticker_client(live_server) as second:
            (history,) = second.wait_for('ticker_history', namespace=NS)
            assert history['interval'] == pytest.approx(0.2)
            seqs = [v['seq'] for v in history['values']]
            assert latest['seq'] in seqs and seqs == sorted(seqs) and len(seqs) <= 60


def test_pause_stops_pushes_to_that_client_alone_and_resume_restarts_them(live_server):
    with ticker_client(live_server) as paused, ticker_client(live_server) as other:
        paused.wait_for('server_response', namespace=NS)
        assert paused.call('ticker_pause', namespace=NS) == {'ok': True, 'paused': True}
        count_at_pause = len(paused.received('server_response', NS))
        last = other.wait_for('server_response', namespace=NS)[-1]['seq']
        other.wait_for('server_response', namespace=NS, where=lambda v: v['seq'] >= last + 4)
        assert len(paused.received('server_response', NS)) == count_at_pause

        assert paused.call('ticker_resume', namespace=NS) == {'ok': True, 'paused': False}
        resumed = paused.wait_for('server_response', count_at_pause + 2, namespace=NS)
        assert resumed[-1]['seq'] > last + 4


def test_the_ticker_stops_when_the_last_client_leaves_and_seq_carries_on(live_server):
    with ticker_client(live_server) as first:
        last_seen = first.wait_for('server_response', 2, namespace=NS)[-1]['seq']
    wait_for_log(live_server, 'ticker stopped')
    with ticker_client(live_server) as again:
        (history,) = again.wait_for('ticker_history', namespace=NS)
        assert history['values'][-1]['seq'] >= last_seen
        value = again.wait_for('server_response', namespace=NS)[0]
        assert value['seq'] == history['values'][-1]['seq'] + 1
    assert live_server.output().count('ticker started') == 2


def wait_for_log(server, text, timeout=5.0):
    deadline = time.monotonic() + timeout
    while text not in server.output():
        assert time.monotonic() < deadline, f'{text!r} not logged:\n{server.output()}'
        time.sleep(0.05)
