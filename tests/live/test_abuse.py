"""Hostile and broken clients against the real run.py: each gets a clear end, nobody else waits.

The clients here speak raw WebSocket or Engine.IO, as an attacker's script would.
"""
import base64
import os
import re
import socket
import struct
import time

import pytest
import requests

from server.namespaces.replies import GARBAGE_LIMIT
from tests.support.live_server import LiveServer
from tests.support.sio_client import RecordingClient

pytestmark = pytest.mark.live

OPCODE_CONTINUATION, OPCODE_TEXT, OPCODE_CLOSE = 0x0, 0x1, 0x8


class RawWebSocket:
    """A WebSocket to Engine.IO's endpoint, written frame by frame."""

    def __init__(self, url, timeout=5.0, receive_buffer=None):
        host, port = url.removeprefix('http://').split(':')
        self.sock = socket.socket()
        if receive_buffer is not None:  # a client that reads slowly, if at all
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
        self.sock.settimeout(timeout)
        self.sock.connect((host, int(port)))
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall((
            'GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\n'
            f'Host: {host}:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n'
            f'Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n').encode())
        self.buffer = b''
        while b'\r\n\r\n' not in self.buffer:
            self.buffer += self._recv()
        head, self.buffer = self.buffer.split(b'\r\n\r\n', 1)
        assert head.startswith(b'HTTP/1.1 101'), head

    def _recv(self):
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ConnectionError('closed by the server')
        return chunk

    def send_header(self, length, opcode=OPCODE_TEXT, fin=True):
        """Announce a frame of ``length`` bytes with an all-zero mask, so that its payload (up
        to the caller) goes as it is."""
        if length < 126:
            size = struct.pack('!B', 0x80 | length)
        elif length < 65536:
            size = struct.pack('!BH', 0x80 | 126, length)
        else:
            size = struct.pack('!BQ', 0x80 | 127, length)
        self.sock.sendall(struct.pack('!B', 0x80 * fin | opcode) + size + bytes(4))

    def send_text(self, payload):
        """Send ``payload`` as one text frame."""
        self.send_header(len(payload))
        self.sock.sendall(payload)

    def read_frame(self):
        """Return (opcode, payload) of the next frame from the server (never masked)."""
        while len(self.buffer) < 2:
            self.buffer += self._recv()
        opcode, length = self.buffer[0] & 0x0F, self.buffer[1] & 0x7F
        offset = 2
        if length == 126:
            length, offset = struct.unpack('!H', self.buffer[2:4])[0], 4
        while len(self.buffer) < offset + length:
            self.buffer += self._recv()
        payload = self.buffer[offset:offset + length]
        self.buffer = self.buffer[offset + length:]
        return opcode, payload

    def close(self):
        self.sock.close()


def test_a_frame_announcing_more_than_the_limit_is_refused_from_its_header(live_server):
    raw = RawWebSocket(live_server.url)
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
    # The server is as it was for everyone else.
    assert requests.get(f'{live_server.url}/healthz', timeout=2).status_code == 200
    with RecordingClient(live_server.url, ['/chat']) as client:
        assert client.call('my_event', {'data': 'still here'}) == {'ok': True}


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


def test_undecodable_packets_are_logged_once_and_their_sender_is_closed(live_server):
    raw = RawWebSocket(live_server.url)
    try:
        raw.read_frame()
        for _ in range(GARBAGE_LIMIT):
            raw.send_text(b'42/chat,{')
        opcode, payload = raw.read_frame()
        while opcode != OPCODE_CLOSE and payload != b'1':  # Engine.IO's CLOSE, or the frame
            opcode, payload = raw.read_frame()
    finally:
        raw.close()
    log = live_server.output()
    assert len(re.findall(r'undecodable packet from connection', log)) == 1, log
    assert 'kept sending undecodable packets' in log
    assert 'Traceback' not in log and 'message handler error' not in log
    with RecordingClient(live_server.url, ['/chat']) as client:
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
        raw = RawWebSocket(url, receive_buffer=4096)
        try:
            raw.read_frame()
            raw.send_text(b'40/chat,')
            raw.read_frame()
            raw.send_text(b'42/chat,1["join",{"room":"big"}]')
            # Asks for ~12 MB of history pages and reads none of them.
            for ack in range(2, 62):
                raw.send_text(b'42/chat,%d["history",{"room":"big","limit":200}]' % ack)
            left = writer.wait_for('room_info', timeout=15,
                                   where=lambda info: info['kind'] == 'leave')
            assert [info['members'] for info in left] == [[writer.received('my_response')[0][
                'nick']]]
        finally:
            raw.close()
        assert re.search(r'closing connection \S+: it left \d+ bytes in \d+ packets unread',
                         unlimited_server.output())
        assert writer.call('my_event', {'data': 'unharmed'}) == {'ok': True}
