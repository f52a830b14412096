"""How the server writes to its clients: WebSocket frames straight to the socket, the rest
queued behind a backed-up one in order, pings from one greenlet for all, and long-polling
responses a Python client can read however busy the room."""
import json
import time

import pytest

from tests.support.live_server import LiveServer
from tests.support.raw_websocket import RawWebSocket
from tests.support.sio_client import RecordingClient

pytestmark = pytest.mark.live


def chat_member(url, room, receive_buffer=None):
    """A raw WebSocket client on /chat, in ``room``."""
    raw = RawWebSocket(url, receive_buffer=receive_buffer)
    raw.read_frame()
    raw.send_text(b'40/chat,')
    raw.read_packet(b'40/chat,')
    raw.send_text(b'42/chat,1["join",{"room":"%s"}]' % room.encode())
    raw.read_packet(b'43/chat,1')
    return raw


def chat_messages(raw, count):
    """Read ``count`` chat_message events off a raw client, answering pings meanwhile."""
    messages = []
    while len(messages) < count:
        _, payload = raw.read_frame()
        if payload == b'2':
            raw.send_text(b'3')
        elif payload.startswith(b'42/chat,["chat_message"'):
            messages.append(json.loads(payload[len(b'42/chat,'):])[1])
    return messages


def test_a_reader_that_falls_behind_gets_every_frame_whole_and_in_order(output_dir):
    with LiveServer(output_dir / 'server.log', RATE_LIMIT_PER_SECOND='100000',
                    RATE_LIMIT_BURST='100000', MAX_MESSAGE_LENGTH='60000',
                    MAX_UNSENT_BYTES=str(64 * 1024 * 1024)) as server:
        # A small receive buffer, read only once everything is sent: the server's writes
        # to it soon stop being taken whole, and the rest of them wait in its queue.
        texts = [f'{n:04d}' + 'x' * 59_000 for n in range(150)]  # 9 MB: more than the
        # socket buffers of loopback hold
        slow = chat_member(server.url, 'busy', receive_buffer=4096)
        try:
            with RecordingClient(server.url, ['/chat']) as sender:
                sender.call('join', {'room': 'busy'})
                for text in texts:
                    assert sender.call('room_message', {'room': 'busy', 'text': text})['ok']
                time.sleep(0.5)
                received = chat_messages(slow, len(texts))
            assert [message['text'] for message in received] == texts
            assert [message['id'] for message in received] == list(range(1, 151))
        finally:
            slow.close()


def test_every_connection_is_pinged_at_the_interval_and_one_that_answers_stays(output_dir):
    with LiveServer(output_dir / 'server.log', PING_INTERVAL='1', PING_TIMEOUT='1') as server:
        answering = [RawWebSocket(server.url) for _ in range(3)]
        silent = RawWebSocket(server.url)
        try:
            for raw in (*answering, silent):
                raw.read_frame()  # Engine.IO's open
            started = time.monotonic()
            for _ in range(3):
                for raw in answering:
                    assert raw.read_packet(b'2') == b'2'
                    raw.send_text(b'3')
            # Three pings one interval apart, each answered: alive after three intervals.
            assert 2.5 < time.monotonic() - started < 4.5
            assert silent.read_packet(b'2') == b'2'  # pinged too, never answers
            assert silent.ends()
        finally:
            for raw in (*answering, silent):
                raw.close()


def test_a_python_client_on_long_polling_takes_a_burst_of_many_packets(output_dir):
    rooms = [f'room-{n}' for n in range(20)]
    with LiveServer(output_dir / 'server.log', RATE_LIMIT_BURST='100') as server, \
            RecordingClient(server.url, ['/chat'], transports=('polling',)) as reader, \
            RecordingClient(server.url, ['/chat']) as renamer:
        for room in rooms:
            for client in (reader, renamer):
                assert client.call('join', {'room': room})['ok']
        # One rename, announced in each of 20 rooms at once: 20 packets queued for the
        # reader before its next poll (python-engineio's client reads 16 at most).
        assert renamer.call('set_nick', {'nick': 'Renamed'})['ok']
        renames = reader.wait_for('room_info', len(rooms), timeout=10,
                                  where=lambda info: info['kind'] == 'rename')
        assert sorted(info['room'] for info in renames) == sorted(rooms)
        assert reader.disconnects == []


def test_a_client_gone_silent_has_its_connection_ended_at_the_ping_timeout(output_dir):
    with LiveServer(output_dir / 'server.log', PING_INTERVAL='1', PING_TIMEOUT='1') as server:
        silent = RawWebSocket(server.url, timeout=10)
        try:
            silent.read_frame()  # Engine.IO's open; then it reads nothing more for a while
            time.sleep(3.5)  # a ping at 1 s, unanswered; given up at about 2 s
            silent.sock.settimeout(2)
            # Its connection is ended, not only marked gone: the socket reaches its end (the
            # ping it never read, at most, before it), instead of a timeout.
            while silent.sock.recv(65536):
                pass
        finally:
            silent.close()
