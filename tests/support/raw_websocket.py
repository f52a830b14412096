"""A WebSocket client written frame by frame, as an attacker's script would speak to us."""
import base64
import os
import socket
import struct

OPCODE_CONTINUATION, OPCODE_TEXT, OPCODE_BINARY, OPCODE_CLOSE = 0x0, 0x1, 0x2, 0x8


class HandshakeRefused(Exception):
    """The server answered the upgrade with something other than 101."""

    def __init__(self, status, headers, body):
        super().__init__(f'{status}: {body!r}')
        self.status = status
        self.headers = headers
        self.body = body


class RawWebSocket:
    """A WebSocket to Engine.IO's endpoint, from the local address ``source`` if given, with
    extra request ``headers``; raises HandshakeRefused if the server does not upgrade."""

    def __init__(self, url, timeout=5.0, receive_buffer=None, source=None, headers=()):
        host, port = url.removeprefix('http://').split(':')
        self.sock = socket.socket()
        if receive_buffer is not None:  # a client that reads slowly, if at all
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
        if source is not None:
            self.sock.bind((source, 0))
        self.sock.settimeout(timeout)
        self.sock.connect((host, int(port)))
        key = base64.b64encode(os.urandom(16)).decode()
        extra = ''.join(f'{name}: {value}\r\n' for name, value in headers)
        self.sock.sendall((
            'GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\n'
            f'Host: {host}:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n'
            f'Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n{extra}\r\n').encode())
        self.buffer = b''
        try:
            while b'\r\n\r\n' not in self.buffer:
                self.buffer += self._recv()
            head, self.buffer = self.buffer.split(b'\r\n\r\n', 1)
            if not head.startswith(b'HTTP/1.1 101'):
                raise self._refusal(head)
        except BaseException:
            self.sock.close()
            raise

    def _refusal(self, head):
        status_line, *header_lines = head.decode('latin-1').split('\r\n')
        headers = {name.strip().lower(): value.strip() for name, value in
                   (line.split(':', 1) for line in header_lines)}
        length = int(headers.get('content-length', 0))
        while len(self.buffer) < length:
            self.buffer += self._recv()
        return HandshakeRefused(int(status_line.split()[1]), headers, self.buffer[:length])

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

    def send_binary(self, payload):
        """Send ``payload`` as one binary frame."""
        self.send_header(len(payload), opcode=OPCODE_BINARY)
        self.sock.sendall(payload)

    def frames_sent_before_close(self, payload, times, opcode=OPCODE_BINARY):
        """Send ``payload`` as a frame up to ``times`` times, stopping once the server has
        closed the connection (a reset or a broken pipe); return how many frames went out."""
        for sent in range(times):
            try:
                self.send_header(len(payload), opcode=opcode)
                self.sock.sendall(payload)
            except OSError:
                return sent
        return times

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

    def read_packet(self, prefix):
        """Return the payload of the next frame that starts with ``prefix``, skipping others."""
        while True:
            opcode, payload = self.read_frame()
            if payload.startswith(prefix):
                return payload

    def ends(self):
        """Read until the server ends the connection (a close frame, Engine.IO's CLOSE packet
        or the socket's end) and return True; False if it is still open at the timeout."""
        try:
            while True:
                opcode, payload = self.read_frame()
                if opcode == OPCODE_CLOSE or payload == b'1':
                    return True
        except TimeoutError:
            return False
        except (ConnectionError, OSError):
            return True

    def close(self):
        """Close the socket."""
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()
