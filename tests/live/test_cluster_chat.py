"""Two workers behind one Redis behave as one chat server: presence, nicks, rooms, messages."""
import threading
import time

import pytest
import requests

from tests.support.live_server import LiveServer
from tests.support.queue_listener import QueueListener
from tests.support.redis_server import RedisServer
from tests.support.resuming_client import ResumingChatClient
from tests.support.sio_client import RecordingClient

pytestmark = pytest.mark.live

HEARTBEAT = 0.3
GIVEN_UP_WITHIN = 3 * HEARTBEAT + 2 * HEARTBEAT + 5.0  # lapse, a reaper's round, a margin
HEALED_WITHIN = 15.0  # python-socketio's queue listener retries after 1, 2, 4... seconds


@pytest.fixture
def workers(output_dir, redis_url):
    """Two run.py workers sharing one Redis; stopped after the test."""
    started = []
    try:
        for name in ('a', 'b'):
            started.append(LiveServer(output_dir / f'worker-{name}.log', MESSAGE_QUEUE=redis_url,
                                      WORKER_HEARTBEAT=HEARTBEAT, MAX_ROOM_MEMBERS=2).start())
        yield started
    finally:
        for worker in started:
            try:
                worker.stop()
            finally:
                worker.kill()


def chat_client(worker, nick=None, transports=('websocket',)):
    client = RecordingClient(worker.url, ['/chat'], transports=transports,
                             auth={'nick': nick} if nick else None)
    client.nick = client.wait_for('my_response')[0]['nick']
    return client


def test_nicks_rooms_messages_and_caps_span_the_workers(workers):
    a, b = workers
    with chat_client(a, 'Ana') as ana, chat_client(b, 'ANA') as impostor, \
            chat_client(b, transports=('polling',)) as bob, chat_client(b) as carl:
        assert impostor.nick != 'ANA', 'a nick held on worker a was given out on worker b'
        assert bob.call('set_nick', {'nick': 'ana'})['error']['code'] == 'nick_taken'
        assert bob.call('set_nick', {'nick': 'Bob'})['ok'] is True

        ana.call('join', {'room': 'lobby'})
        joined = bob.call('join', {'room': 'lobby'})
        assert joined['members'] == ['Ana', 'Bob']
        assert ana.wait_for('room_info', where=lambda i: i['nick'] == 'Bob')[0]['members'] == [
            'Ana', 'Bob']
        assert carl.call('join', {'room': 'lobby'})['error']['code'] == 'room_full'

        sent = ana.call('room_message', {'room': 'lobby', 'text': 'across'})
        (received,) = bob.wait_for('chat_message')
        assert (received['id'], received['text'], received['nick']) == (sent['id'], 'across',
                                                                         'Ana')
        dm = bob.call('direct_message', {'to': 'ANA', 'text': 'just you'})
        assert dm['ok'] is True and ana.wait_for('direct_message')[0]['id'] == dm['id']
        carl.call('my_broadcast_event', {'data': 'everyone'})
        for client in (ana, bob, carl):
            client.wait_for('my_response', where=lambda r: r.get('data') == 'everyone')
        assert bob.call('close_room', {'room': 'lobby'})['error']['code'] == 'forbidden'


def test_room_messages_stored_by_two_workers_at_once_reach_every_member_in_id_order(
        output_dir, redis_url):
    per_lane, lanes = 60, 3
    unlimited = {'MESSAGE_QUEUE': redis_url, 'RATE_LIMIT_PER_SECOND': 10_000,
                 'RATE_LIMIT_BURST': 10_000}
    with LiveServer(output_dir / 'a.log', **unlimited) as a, \
            LiveServer(output_dir / 'b.log', **unlimited) as b, \
            chat_client(a) as sender_a, chat_client(b) as sender_b, \
            chat_client(a) as reader_a, chat_client(b) as reader_b:
        for client in (sender_a, sender_b, reader_a, reader_b):
            client.call('join', {'room': 'race'})

        def send(sender, lane):
            for n in range(per_lane):
                sender.call('room_message', {'room': 'race', 'text': f'{lane}.{n}'})

        # Both workers take ids from the one store at the same moments, and each publishes
        # what it stored: published in the other order, they must still be delivered in it.
        threads = [threading.Thread(target=send, args=(sender, f'{name}{lane}'))
                   for name, sender in (('a', sender_a), ('b', sender_b))
                   for lane in range(lanes)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        total = 2 * lanes * per_lane
        for reader in (reader_a, reader_b, sender_a, sender_b):
            ids = [m['id'] for m in reader.wait_for('chat_message', total, timeout=10)]
            assert ids == list(range(1, total + 1)), [
                (before, after) for before, after in zip(ids, ids[1:]) if after != before + 1]


def test_a_reply_to_a_client_of_this_worker_does_not_cross_the_queue(workers, redis_url):
    a, _ = workers
    with chat_client(a) as client, QueueListener(redis_url) as queue:
        assert client.call('my_event', {'data': 'echo'}) == {'ok': True}
        client.wait_for('my_response', where=lambda r: r.get('data') == 'echo')
        client.call('my_broadcast_event', {'data': 'all'})
        # The broadcast must reach the other worker's clients; the echo concerns nobody there.
        assert queue.emitted_events(0.5) == ['my_response']
        assert client.wait_for('my_response', where=lambda r: r.get('data') == 'all')


def ana_typing_to_bob(a, b):
    """Ana on worker a and Bob on worker b in one room, Bob seeing Ana typing."""
    ana, bob = chat_client(a, 'Ana'), chat_client(b, 'Bob')
    for client in (ana, bob):
        client.call('join', {'room': 'lobby'})
    ana.call('typing', {'room': 'lobby', 'typing': True})
    bob.wait_for('typing')
    return ana, bob


def test_the_clients_of_a_killed_worker_leave_once_and_free_their_nicks(workers):
    a, b = workers
    ana, bob = ana_typing_to_bob(a, b)
    with ana, bob:
        a.kill()
        left = bob.wait_for('room_info', timeout=GIVEN_UP_WITHIN,
                            where=lambda i: i['kind'] == 'leave')
        assert [(i['nick'], i['members']) for i in left] == [('Ana', ['Bob'])]
        # Her typing flag died with her worker; the worker that gave her up clears it.
        assert [(t['nick'], t['typing']) for t in bob.received('typing')] == [
            ('Ana', True), ('Ana', False)]
        assert bob.call('set_nick', {'nick': 'Ana'}) == {'ok': True, 'nick': 'Ana'}
        assert bob.call('room_members', {'room': 'lobby'})['members'] == ['Ana']
        kinds = [info['kind'] for info in bob.received('room_info')]
        assert kinds == ['join', 'leave', 'rename']  # Ana's leave told once


def test_a_typer_whose_worker_died_is_typing_nowhere_once_back_on_another_worker(workers):
    a, b = workers
    ana, bob = ana_typing_to_bob(a, b)
    with ana, bob:
        token = ana.received('my_response')[0]['session']
        told_before = bob.received('room_info')
        a.kill()
        with RecordingClient(b.url, ['/chat'], auth={'session': token}) as back:
            assert back.wait_for('my_response')[0]['nick'] == 'Ana'
            stopped = bob.wait_for('typing', where=lambda t: not t['typing'])
            assert stopped == [{'room': 'lobby', 'nick': 'Ana', 'typing': False}]
            assert back.call('room_members', {'room': 'lobby'})['members'] == ['Ana', 'Bob']
        # Back within the grace: nobody was told she left or came back.
        assert bob.received('room_info') == told_before


def test_a_redis_restart_crashes_no_worker_and_the_cluster_heals(output_dir):
    redis = RedisServer(output_dir / 'redis').start()
    started = []
    try:
        for name in ('a', 'b'):
            started.append(LiveServer(output_dir / f'worker-{name}.log', MESSAGE_QUEUE=redis.url,
                                      WORKER_HEARTBEAT=HEARTBEAT).start())
        a, b = started
        with ResumingChatClient(a.url, 'Ana') as ana, ResumingChatClient(a.url, 'Cara') as cara, \
                ResumingChatClient(b.url, 'Bob') as bob:
            clients = (ana, cara, bob)
            for client in clients:
                client.join('lobby')
            assert ana.send('lobby', 'before')['id'] == 1
            bob.wait_delivered('lobby', 1)

            redis.kill()
            # Stored and acknowledged, and delivered on the sender's own worker meanwhile.
            assert ana.send('lobby', 'during the outage')['id'] == 2
            assert [m['text'] for m in cara.wait_delivered('lobby', 2)][-1] == 'during the outage'
            health = requests.get(f'{a.url}/healthz', timeout=5)
            assert (health.status_code, health.json()) == (
                503, {'status': 'unavailable', 'store': 'ok', 'queue': 'unavailable'})

            redis.start()
            # The workers find the registry empty, end their clients' connections, and the
            # clients come back by themselves, with their nicks and from their cursors.
            for client in clients:
                client.wait(lambda c=client: c.rejoins >= 1, f'{client.nick} did not come back')
            # Healed once a message crosses between the workers again. Until each worker's
            # queue listener is back, a live delivery to the other worker may be lost; the next
            # message shows the gap and the client fetches it from history.
            sent = ['before', 'during the outage']
            deadline = time.monotonic() + HEALED_WITHIN
            while not any(m['text'].startswith('after') for m in bob.delivered('lobby')):
                assert time.monotonic() < deadline, 'the workers never reached each other again'
                sent.append(f'after {len(sent)}')
                assert ana.send('lobby', sent[-1])['id'] == len(sent)
                time.sleep(0.2)
            for client in clients:
                texts = [m['text'] for m in client.wait_delivered('lobby', len(sent))]
                assert texts == sent, client.nick
            assert [client.nick for client in clients] == ['Ana', 'Cara', 'Bob']
            assert requests.get(f'{b.url}/healthz', timeout=5).status_code == 200
            assert all(worker.process.poll() is None for worker in started)
    finally:
        for worker in started:
            try:
                assert worker.stop() == 0
            finally:
                worker.kill()
        redis.stop()
