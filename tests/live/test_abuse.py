"""Hostile and broken clients against the real run.py: each gets a clear end, nobody else waits.

The clients here speak raw WebSocket or Engine.IO, as an attacker's script would.
"""
import re
import struct
import time

import pytest
import requests

from server.namespaces.replies import GARBAGE_LIMIT
from tests.support.calm_client import stays_calm
from tests.support.live_server import LiveServer
from tests.support.raw_websocket import (OPCODE_CLOSE, OPCODE_CONTINUATION, OPCODE_TEXT,
                                         RawWebSocket)
from tests.support.sio_client import RecordingClient

pytestmark = pytest.mark.live


def test_a_frame_announcing_more_than_the_limit_is_refused_from_its_header(watched_server):
    # Measured: the calm client's p99 4-8 ms, RSS under +1 MiB. Read and unmasked in full, as
    # gevent-websocket alone did, one such frame stalled everyone for 14 s and added 80 MB.
    with stays_calm(watched_server, max_rss_growth_mib=16):
        raw = RawWebSocket(watched_server.url)
        try:
            opcode, greeting = raw.read_frame()
            assert opcode == OPCODE_TEXT and greeting.startswith(b'0{')  # Engine.IO's open
            raw.send_header(40_000_000)  # and never a byte of it
            started = time.monotonic()
            frames = [raw.read_frame()]
            while frames[-1][0] != OPCODE_CLOSE:
                frames.append(raw.read_frame())
            assert struct.unpack('!H', frames[-1][1][:2])[0] == 1009, frames[-1]
            assert time.monotonic() - started < 2.0
        finally:
            raw.close()
        for _ in range(3):  # offenders that do send the 40 MB
            assert bytes_taken_of_frame(watched_server.url, 40_000_000) < 10_000_000
    # The server is as it was for everyone else.
    assert requests.get(f'{watched_server.url}/healthz', timeout=2).status_code == 200
    with RecordingClient(watched_server.url, ['/chat']) as client:
        assert client.call('my_event', {'data': 'still here'}) == {'ok': True}


def bytes_taken_of_frame(url, length):
    """Send a text frame of ``length`` bytes on a new connection; return how much of its
    payload went out before the server closed the connection."""
    chunk = bytes(1024 * 1024)
    sent = 0
    with RawWebSocket(url) as raw:
        raw.read_frame()
        raw.send_header(length)
        try:
            while sent < length:
                raw.sock.sendall(chunk)
                sent += len(chunk)
        except OSError:  # reset or broken pipe: the server closed it
            pass
    return sent


def test_a_message_split_in_frames_is_limited_as_a_whole(live_server):
    raw = RawWebSocket(live_server.url)
    try:
        raw.read_frame()
        chunk = 40_000  # each frame well under the 64 KiB limit, the message over it
        raw.send_header(chunk, fin=False)
        raw.sock.sendall(b'4' * chunk)
        raw.send_header(chunk, opcode=OPCODE_CONTINUATION)
        opcode, payload = raw.read_frame()
        while opcode != OPCODE_CLOSE:
            opcode, payload = raw.read_frame()
        assert struct.unpack('!H', payload[:2])[0] == 1009
    finally:
        raw.close()


def test_undecodable_packets_are_logged_once_and_their_sender_is_closed(watched_server):
    senders = 20
    # Measured: the calm client's p99 3-12 ms, RSS under +1 MiB. Logged with a traceback each,
    # four senders' packets wrote 250 MB of log in 8 s and kept a core busy.
    with stays_calm(watched_server, max_rss_growth_mib=16):
        for _ in range(senders):
            with RawWebSocket(watched_server.url) as raw:
                raw.read_frame()
                for _ in range(GARBAGE_LIMIT):
                    raw.send_text(b'42/chat,{')
                assert raw.ends()  # Engine.IO's CLOSE, or the close frame
    log = watched_server.output()
    assert len(re.findall(r'undecodable packet from connection', log)) == senders, log
    closes = re.findall(r'from 127\.0\.0\.1: it kept sending undecodable packets', log)
    assert len(closes) == senders, log
    assert 'Traceback' not in log and 'message handler error' not in log
    with RecordingClient(watched_server.url, ['/chat']) as client:
        assert client.call('my_event', {'data': 'unharmed'}) == {'ok': True}


def test_the_ticker_namespace_is_rate_limited_too(live_server):
    with RecordingClient(live_server.url, ['/test_conn']) as client:
        answers = [client.call('ticker_pause', namespace='/test_conn') for _ in range(30)]
    codes = [a.get('error', {}).get('code') for a in answers]
    assert codes[0] is None and 'rate_limited' in codes, codes


def test_every_socketio_response_carries_the_security_headers_and_jsonp_is_refused(live_server):
    handshake = requests.get(f'{live_server.url}/socket.io/?EIO=4&transport=polling', timeout=2)
    assert handshake.status_code == 200
    assert handshake.headers['X-Content-Type-Options'] == 'nosniff'
    assert "default-src 'self'" in handshake.headers['Content-Security-Policy']
    page = requests.get(live_server.url, timeout=2)
    assert page.headers['X-Content-Type-Options'] == 'nosniff'
    jsonp = requests.get(f'{live_server.url}/socket.io/?EIO=4&transport=polling&j=0', timeout=2)
    assert jsonp.status_code == 400 and 'JSONP' in jsonp.text
    assert jsonp.headers['X-Content-Type-Options'] == 'nosniff'


@pytest.fixture
def unlimited_server(output_dir):
    """run.py with the rate limit lifted, a small unsent-output bound and no reconnect grace."""
    with LiveServer(output_dir / 'server.log', RATE_LIMIT_PER_SECOND='1000',
                    RATE_LIMIT_BURST='1000', MAX_UNSENT_BYTES=str(256 * 1024),
                    RECONNECT_GRACE='0') as server:
        yield server


def test_a_client_that_does_not_read_is_closed_and_the_others_go_on(unlimited_server):
    url = unlimited_server.url
    with RecordingClient(url, ['/chat']) as writer:
        writer.call('join', {'room': 'big'})
        for n in range(100):  # about 200 KB of history
            writer.call('room_message', {'room': 'big', 'text': f'{n:04d}' + 'x' * 1996})
        readers = 5
        # Measured: the calm client's p99 5-15 ms, RSS +3-7 MiB. Unbounded, five such readers
        # held 470 MB.
        with stays_calm(unlimited_server, max_rss_growth_mib=40):
            raws = [RawWebSocket(url, receive_buffer=4096) for _ in range(readers)]
            try:
                for raw in raws:
                    raw.read_frame()
                    raw.send_text(b'40/chat,')
                    raw.read_frame()
                    raw.send_text(b'42/chat,1["join",{"room":"big"}]')
                # Each asks for ~12 MB of history pages and reads none of them.
                for ack in range(2, 62):
                    for raw in raws:
                        raw.send_text(b'42/chat,%d["history",{"room":"big","limit":200}]' % ack)
                left = writer.wait_for('room_info', count=readers, timeout=15,
                                       where=lambda info: info['kind'] == 'leave')
                assert [info['members'] for info in left][-1] == [
                    writer.received('my_response')[0]['nick']]
            finally:
                for raw in raws:
                    raw.close()
        assert len(re.findall(r'closing a connection from 127\.0\.0\.1: it left \d+ bytes in '
                              r'\d+ packets unread', unlimited_server.output())) == readers
        assert writer.call('my_event', {'data': 'unharmed'}) == {'ok': True}
