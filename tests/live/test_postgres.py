"""run.py with its history in a real PostgreSQL: kept across restarts of either, never blocking.

An outage of the database refuses sends and history reads with ``unavailable`` (never an ack for
a message not stored), and the server carries on by itself once the database is back.
"""
import concurrent.futures
import time

import psycopg
import pytest
import requests

from tests.support.live_server import LiveServer
from tests.support.postgres_server import wait_for_lock_waiters
from tests.support.sio_client import RecordingClient

pytestmark = pytest.mark.live

WAIT_S = 10


def chat_client(server, nick):
    client = RecordingClient(server.url, ['/chat'], auth={'nick': nick})
    client.wait_for('my_response')
    return client


def send(client, text, room='lobby', client_id=None):
    payload = {'room': room, 'text': text}
    if client_id:
        payload['client_id'] = client_id
    return client.call('room_message', payload)


def stored_texts(database_url, room='lobby'):
    """Return the room's messages as PostgreSQL holds them, in id order."""
    with psycopg.connect(database_url) as conn:
        return conn.execute('SELECT id, text FROM room_messages WHERE room = %s ORDER BY id',
                            (room,)).fetchall()


def test_history_is_kept_in_postgres_across_server_restarts(output_dir, postgres_url):
    with LiveServer(output_dir / 'first.log', DATABASE_URL=postgres_url) as server:
        with chat_client(server, 'ana') as ana:
            assert ana.call('join', {'room': 'lobby'})['history'] == []
            acks = [send(ana, f'm{n}', client_id=f'c-{n}') for n in (1, 2, 3)]
            assert [(ack['id'], ack['duplicate']) for ack in acks] == [(1, False), (2, False),
                                                                       (3, False)]
            assert send(ana, 'm3', client_id='c-3') == {**acks[2], 'duplicate': True}
    assert stored_texts(postgres_url) == [(1, 'm1'), (2, 'm2'), (3, 'm3')]

    with LiveServer(output_dir / 'second.log', DATABASE_URL=postgres_url) as server:
        with chat_client(server, 'bob') as bob:
            joined = bob.call('join', {'room': 'lobby'})
            assert [(m['id'], m['text'], m['nick']) for m in joined['history']] == [
                (1, 'm1', 'ana'), (2, 'm2', 'ana'), (3, 'm3', 'ana')]
            assert send(bob, 'm4')['id'] == 4
            page = bob.call('history', {'room': 'lobby', 'before_id': 3, 'limit': 1})
            assert [m['text'] for m in page['messages']] == ['m2'] and page['more'] is True


@pytest.mark.parametrize('outage', ['stop', 'kill'])
def test_postgres_going_down_mid_conversation_refuses_then_recovers(
        output_dir, postgres_server, postgres_url, outage):
    with LiveServer(output_dir / 'server.log', DATABASE_URL=postgres_url) as server, \
            chat_client(server, 'ana') as ana, chat_client(server, 'bob') as bob:
        ana.call('join', {'room': 'lobby'})
        bob.call('join', {'room': 'lobby'})
        acked = [send(ana, f'before {n}', client_id=f'b-{n}') for n in (1, 2)]
        getattr(postgres_server, outage)()
        try:
            refused = [send(ana, f'during {n}', client_id=f'd-{n}') for n in (1, 2)]
            history = bob.call('history', {'room': 'lobby'})
            assert ana.call('my_event', {'data': 'still here'})['ok'] is True
            health = requests.get(f'{server.url}/healthz', timeout=10)
            assert (health.status_code, health.json()) == (
                503, {'status': 'unavailable', 'store': 'unavailable'})
        finally:
            postgres_server.start()
        for reply in [*refused, history]:
            assert reply['ok'] is False and reply['error']['code'] == 'unavailable', reply
        # The client resends what was refused, as its outbox would, then goes on.
        acked += [send(ana, f'during {n}', client_id=f'd-{n}') for n in (1, 2)]
        acked.append(send(ana, 'after', client_id='a-1'))
        assert requests.get(f'{server.url}/healthz', timeout=10).status_code == 200
        assert [(ack['ok'], ack['id'], ack['duplicate']) for ack in acked] == [
            (True, n, False) for n in range(1, 6)]
        texts = ['before 1', 'before 2', 'during 1', 'during 2', 'after']
        history = bob.call('history', {'room': 'lobby'})['messages']
        assert [(m['id'], m['text']) for m in history] == list(enumerate(texts, start=1))
        delivered = bob.wait_for('chat_message', 5)
        assert [(m['id'], m['text']) for m in delivered] == list(enumerate(texts, start=1))
    assert 'Traceback' not in server.output() and 'internal_error' not in server.output()
    assert 'history database unavailable' in server.output()


def test_a_slow_query_holds_up_only_its_own_client(output_dir, postgres_url):
    """psycopg under gevent parks the greenlet that waits for PostgreSQL, not the server."""
    with LiveServer(output_dir / 'server.log', DATABASE_URL=postgres_url) as server, \
            chat_client(server, 'ana') as ana, chat_client(server, 'bob') as bob:
        ana.call('join', {'room': 'slow'})
        bob.call('join', {'room': 'fast'})
        send(ana, 'first', room='slow')
        with psycopg.connect(postgres_url) as holder, \
                psycopg.connect(postgres_url, autocommit=True) as watcher, \
                concurrent.futures.ThreadPoolExecutor(1) as pool:
            # Another transaction holds the room's counter: ana's send waits in PostgreSQL.
            holder.execute("SELECT 1 FROM id_counters WHERE name = 'slow' FOR UPDATE")
            slow = pool.submit(send, ana, 'waits', 'slow')
            wait_for_lock_waiters(watcher, 1)
            started = time.monotonic()
            assert send(bob, 'quick', room='fast')['id'] == 1
            assert bob.call('history', {'room': 'fast'})['messages'][0]['text'] == 'quick'
            assert time.monotonic() - started < 1.0
            assert not slow.done()
            holder.rollback()
            assert slow.result(WAIT_S)['id'] == 2

