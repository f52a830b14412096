"""One /test_conn ticker for several run.py workers sharing a real Redis (PUSH_INTERVAL=0.2 s)."""
import contextlib
import re
import time
from datetime import datetime

import pytest

from tests.support.live_server import LiveServer
from tests.support.queue_listener import QueueListener
from tests.support.sio_client import RecordingClient

pytestmark = pytest.mark.live
NS = '/test_conn'
INTERVAL = 0.2
HISTORY = 5
LEASE_EVENT = re.compile(r'ticker lease (taken|held by another worker|released)')


@pytest.fixture
def workers(output_dir, redis_url):
    """Start ``count`` run.py workers on one Redis; each is stopped (or found dead) after."""
    with contextlib.ExitStack() as stack:
        def start(count):
            return [stack.enter_context(LiveServer(
                output_dir / f'worker-{n}.log', MESSAGE_QUEUE=redis_url, PUSH_INTERVAL=INTERVAL,
                TICKER_HISTORY=HISTORY)) for n in range(count)]
        yield start


def ticker_client(worker, transports=('websocket',)):
    return RecordingClient(worker.url, [NS], transports=transports)


def seqs_received(client):
    return [v['seq'] for v in client.received('server_response', NS)]


def assert_one_tick_per_interval(seen):
    """Each seq once, one after another, and no faster than one publisher would send them."""
    seqs = [v['seq'] for v in seen]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs))), seqs
    mean_gap = (seen[-1]['ts'] - seen[0]['ts']) / 1000 / (len(seen) - 1)
    assert mean_gap > 0.75 * INTERVAL, (mean_gap, seen)


def logged(worker, pattern, timeout=5.0):
    """Wait until a line of the worker's log matches ``pattern``; return its time and match."""
    deadline = time.monotonic() + timeout
    while not (match := re.search(rf'^(?P<at>\S+ \S+) .*{pattern}', worker.output(), re.M)):
        assert time.monotonic() < deadline, f'{pattern!r} not logged:\n{worker.output()}'
        time.sleep(0.02)
    return datetime.strptime(match['at'], '%Y-%m-%d %H:%M:%S,%f'), match


def lease_holder(workers):
    """Return the worker whose latest lease event in its log is taking the lease."""
    holders = [w for w in workers
               if (events := LEASE_EVENT.findall(w.output())) and events[-1] == 'taken']
    assert len(holders) == 1, [LEASE_EVENT.findall(w.output()) for w in workers]
    return holders[0]


def test_every_client_on_every_worker_gets_each_tick_once_and_the_same_history(workers,
                                                                                redis_url):
    cluster = workers(3)
    with ticker_client(cluster[0]) as a, ticker_client(cluster[1], ('polling',)) as b, \
            ticker_client(cluster[2]) as c, QueueListener(redis_url) as queue:
        first = max(client.wait_for('server_response', namespace=NS)[0]['seq']
                    for client in (a, b, c))
        seen = [client.wait_for('server_response', 8, namespace=NS,
                                where=lambda v: v['seq'] > first)[:8] for client in (a, b, c)]
        assert_one_tick_per_interval(seen[0])
        assert seen[1] == seen[0] and seen[2] == seen[0]
        # What crosses between workers is python-socketio's JSON, never pickle.
        queue.wait_for_emit('server_response')

        histories = []
        for worker in cluster:
            with ticker_client(worker) as late:
                histories.append(late.wait_for('ticker_history', namespace=NS)[0]['values'])
    merged = {}
    for value in [*seen[0], *(v for history in histories for v in history)]:
        assert merged.setdefault(value['seq'], value) == value
    for history in histories:
        seqs = [v['seq'] for v in history]
        assert seqs == list(range(seqs[0], seqs[0] + HISTORY)) and seqs[-1] >= seen[0][-1]['seq']


def test_killing_the_lease_holder_hands_the_ticker_to_a_surviving_worker(workers):
    cluster = workers(3)
    clients = [ticker_client(worker) for worker in cluster]
    try:
        for client in clients:
            client.wait_for('server_response', 3, namespace=NS)
        holder = lease_holder(cluster)
        survivors = [c for w, c in zip(cluster, clients) if w is not holder]
        holder.process.kill()
        killed_at = time.monotonic()
        # Let what the holder sent just before it died arrive: the takeover takes longer.
        time.sleep(INTERVAL / 2)
        last = max((v for c in survivors for v in c.received('server_response', NS)),
                   key=lambda v: v['seq'])

        firsts = [c.wait_for('server_response', namespace=NS, timeout=5,
                             where=lambda v: v['seq'] > last['seq'])[0] for c in survivors]
        took = time.monotonic() - killed_at
        # Seq goes on from Redis: at most one value the holder drew as it died is lost.
        lost = firsts[0]['seq'] - last['seq'] - 1
        assert firsts[0] == firsts[1] and lost in (0, 1), (last, firsts)
        # The lease lasts 1.75 intervals after the holder's last value, and a survivor takes it
        # as it runs out: its first value is drawn within two intervals of the holder's last.
        gap = (firsts[0]['ts'] - last['ts']) / 1000
        assert gap < (2 + lost) * INTERVAL, gap
        assert took < 2 * INTERVAL + 0.3, took
        for client in survivors:
            after = client.wait_for('server_response', 6, namespace=NS,
                                    where=lambda v: v['seq'] >= firsts[0]['seq'])
            assert_one_tick_per_interval(after)
            seqs = seqs_received(client)
            assert seqs == sorted(set(seqs))  # nothing repeated across the takeover
        new_holder = lease_holder([w for w in cluster if w is not holder])
        assert f'ticker lease taken at seq {firsts[0]["seq"]}' in new_holder.output()
    finally:
        for client in clients:
            client.close()


def test_the_holder_losing_its_last_client_hands_the_ticker_over_at_once(workers):
    cluster = workers(2)
    leaves = ticker_client(cluster[0])  # the first worker with a client takes the lease
    try:
        leaves.wait_for('server_response', namespace=NS)
        with ticker_client(cluster[1]) as stays:
            stays.wait_for('server_response', 2, namespace=NS)
            assert lease_holder(cluster) is cluster[0]
            leaves.close()
            released_at, _ = logged(cluster[0], r'ticker lease released')
            taken_at, taken = logged(cluster[1], r'ticker lease taken at seq (?P<seq>\d+)')
            stays.wait_for('server_response', namespace=NS,
                           where=lambda v: v['seq'] >= int(taken['seq']) + 2)
    finally:
        leaves.close()
    # Given up, not left to expire: the other worker's next tick took it.
    assert (taken_at - released_at).total_seconds() < INTERVAL + 0.1, (released_at, taken_at)
    seqs = seqs_received(stays)
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs))), seqs


def test_a_worker_on_a_message_queue_stops_promptly_on_sigterm(workers):
    first, second = workers(2)
    with ticker_client(first) as client, ticker_client(second) as other:
        client.wait_for('server_response', 2, namespace=NS)
        holder = lease_holder([first, second])
        asked_at = time.monotonic()
        assert holder.stop(timeout=10) == 0
        stopped_in = time.monotonic() - asked_at
        assert stopped_in < 3.0, stopped_in
        survivor = other if holder is first else client
        last = max(v['seq'] for v in survivor.received('server_response', NS))
        survivor.wait_for('server_response', namespace=NS, where=lambda v: v['seq'] > last)
    log = holder.output()
    assert 'ticker lease released' in log and log.rstrip().endswith('run: stopped')
    assert 'Traceback' not in log
