"""Presence, typing, direct messages and limits against the real run.py process."""
import re
import signal
import subprocess
import sys

import pytest

from tests.support.live_server import ROOT, LiveServer
from tests.support.sio_client import RecordingClient

pytestmark = pytest.mark.live


def chat_client(server, transports=('websocket',), nick=None):
    client = RecordingClient(server.url, ['/chat'], transports=transports,
                             auth={'nick': nick} if nick else None)
    client.nick = client.wait_for('my_response')[0]['nick']
    return client


@pytest.fixture
def quick_server(output_dir):
    """A server with a short ping timeout, typing timeout and a tight rate limit."""
    server = LiveServer(output_dir / 'server.log', PING_INTERVAL='1', PING_TIMEOUT='1',
                        TYPING_TIMEOUT='0.5', RATE_LIMIT_PER_SECOND='5', RATE_LIMIT_BURST='10',
                        FLOOD_STRIKES='10', RECONNECT_GRACE='0.5')
    with server:
        yield server


def test_nicks_presence_and_direct_messages_across_transports(live_server):
    with chat_client(live_server, nick='Ana') as ana, \
            chat_client(live_server, ('polling',)) as bob:
        assert ana.nick == 'Ana'
        assert bob.call('set_nick', {'nick': 'ana'})['error']['code'] == 'nick_taken'
        assert bob.call('set_nick', {'nick': 'Bob'}) == {'ok': True, 'nick': 'Bob'}
        ana.call('join', {'room': 'lobby'})
        bob.call('join', {'room': 'lobby'})
        assert ana.call('room_members', {'room': 'lobby'})['members'] == ['Ana', 'Bob']

        ack = ana.call('direct_message', {'to': 'BOB', 'text': 'just you'})
        (received,) = bob.wait_for('direct_message')
        assert received['from'] == 'Ana' and received['to'] == 'Bob'
        assert received['id'] == ack['id'] and received['text'] == 'just you'


def start_stalled_client(server, room, nick=None):
    process = subprocess.Popen(
        [sys.executable, '-m', 'tests.support.stalled_client', server.url, room,
         *([nick] if nick else [])], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    nick, session = process.stdout.readline().split()
    return process, nick, session


def stop_stalled_client(process):
    process.kill()
    process.wait(5)
    process.stdout.close()


def test_an_abrupt_drop_frees_the_nick_and_tells_the_room_after_the_ping_timeout(quick_server):
    stalled, nick, _ = start_stalled_client(quick_server, 'lobby')
    try:
        assert nick.startswith('guest-')
        with chat_client(quick_server) as watcher:
            assert nick in watcher.call('join', {'room': 'lobby'})['members']
            stalled.send_signal(signal.SIGSTOP)
            left = watcher.wait_for('room_info', timeout=10,
                                    where=lambda i: i['msg'] == 'Member left: lobby')
            assert left[0]['nick'] == nick and left[0]['members'] == [watcher.nick]
            assert watcher.call('set_nick', {'nick': nick}) == {'ok': True, 'nick': nick}
    finally:
        stop_stalled_client(stalled)


def test_a_session_resumes_at_once_with_its_nick_and_the_direct_messages_it_missed(live_server):
    # The default ping timeout (45 s in all) would hold the frozen connection's nick far longer
    # than this test may take: the session token is what lets the client back in at once.
    stalled, nick, session = start_stalled_client(live_server, 'lobby', nick='Bob')
    try:
        with chat_client(live_server, nick='Carl') as carl:
            stalled.send_signal(signal.SIGSTOP)
            sent = carl.call('direct_message', {'to': 'Bob', 'text': 'while you were frozen'})
            assert sent['ok'] is True
            with RecordingClient(live_server.url, ['/chat'],
                                 auth={'nick': 'Bob', 'session': session}) as bob:
                assert bob.wait_for('my_response')[0]['nick'] == 'Bob'
                history = bob.call('direct_history', {'since_id': 0})
                assert [(m['id'], m['from'], m['text']) for m in history['messages']] == [
                    (sent['id'], 'Carl', 'while you were frozen')]
                assert bob.call('join', {'room': 'lobby'})['members'] == ['Bob']
    finally:
        stop_stalled_client(stalled)


def test_typing_reaches_others_and_expires_by_itself(quick_server):
    with chat_client(quick_server) as ana, chat_client(quick_server) as bob:
        ana.call('join', {'room': 'lobby'})
        bob.call('join', {'room': 'lobby'})
        ana.call('typing', {'room': 'lobby', 'typing': True})
        flags = bob.wait_for('typing', 2, timeout=5)
        assert [(f['nick'], f['typing']) for f in flags] == [(ana.nick, True), (ana.nick, False)]
        assert ana.received('typing') == []


def test_a_hasty_client_is_refused_and_a_flooding_one_dropped_while_others_chat(quick_server):
    with chat_client(quick_server) as flooder, chat_client(quick_server) as calm:
        flooder.call('join', {'room': 'lobby'})
        calm.call('join', {'room': 'lobby'})
        replies = [flooder.call('my_event', {'data': 'hurry'}) for _ in range(12)]
        assert any(r['ok'] is False and r['error']['code'] == 'rate_limited' for r in replies)
        assert calm.call('room_message', {'room': 'lobby', 'text': 'unbothered'})['ok'] is True

        for _ in range(40):
            flooder.emit('my_event', {'data': 'flood'})
        flooder.wait_disconnected(timeout=10)
        left = calm.wait_for('room_info', where=lambda i: i['msg'] == 'Member left: lobby')
        assert left[0]['nick'] == flooder.nick
        assert calm.call('room_message', {'room': 'lobby', 'text': 'still here'})['ok'] is True
    assert re.search(rf'disconnecting {re.escape(flooder.nick)} \(\S+ from 127\.0\.0\.1\): it '
                     'kept flooding /chat', quick_server.output())


def test_the_connection_a_session_leaves_is_told_why_it_is_closed(live_server):
    with chat_client(live_server, nick='Ana') as first:
        token = first.wait_for('my_response')[0]['session']
        with chat_client(live_server, nick='Ana') as impostor:
            assert impostor.nick != 'Ana'
        with RecordingClient(live_server.url, ['/chat'],
                             auth={'nick': 'Ana', 'session': token}) as second:
            assert second.wait_for('my_response')[0]['nick'] == 'Ana'
            assert first.wait_for('session_moved') == [{}]
            first.wait_disconnected()
