"""Chat clients that speak the raw Engine.IO/Socket.IO protocol, join a room, then go silent.

A silent client never reads again and never answers a ping, like a browser tab whose laptop
was shut or a phone that left the network: only the server's ping timeout can notice it is gone.
WebSocket clients keep their socket open; long-polling clients simply stop polling.
"""
import json
from urllib.parse import urlsplit

import requests
import websocket

RECORD_SEPARATOR = '\x1e'
WAIT_S = 5


def _socket_io_url(server_url, transport, sid=None):
    url = f'{server_url}/socket.io/?EIO=4&transport={transport}'
    return url if sid is None else f'{url}&sid={sid}'


def _event(namespace, ack_id, name, payload):
    return f'42{namespace},{ack_id}{json.dumps([name, payload])}'


class _Conversation:
    """Sends Socket.IO packets and reads until an expected one arrives, answering nothing."""

    def connect(self, namespace, auth):
        """Connect to a namespace and return its greeting (``my_response``) payload."""
        self.send(f'40{namespace},{json.dumps(auth)}')
        seen = {}

        def note(packet):
            # The greeting, emitted by the connect handler, comes before the connect packet.
            if packet.startswith(f'40{namespace},'):
                seen['connected'] = True
            elif packet.startswith(f'42{namespace},["my_response"'):
                seen['greeting'] = json.loads(packet[packet.index('['):])[1]
            return len(seen) == 2

        self.read_until(note)
        return seen['greeting']

    def call(self, namespace, ack_id, name, payload):
        """Send an event asking for an acknowledgement and return the acknowledgement."""
        self.send(_event(namespace, ack_id, name, payload))
        prefix = f'43{namespace},{ack_id}['
        ack = self.read_until(lambda packet: packet.startswith(prefix))
        return json.loads(ack[len(prefix) - 1:])[0]

    def read_until(self, wanted):
        """Return the first packet for which ``wanted(packet)`` holds; pings go unanswered."""
        while True:
            for packet in self.receive():
                if wanted(packet):
                    return packet


class SilentWebSocketClient(_Conversation):
    """A raw WebSocket Socket.IO client."""

    def __init__(self, server_url):
        host = urlsplit(server_url).netloc
        self.ws = websocket.create_connection(
            _socket_io_url(f'ws://{host}', 'websocket'), timeout=WAIT_S)
        self.read_until(lambda packet: packet.startswith('0{'))

    def send(self, packet):
        """Send one Engine.IO packet."""
        self.ws.send(packet)

    def receive(self):
        """Return the next Engine.IO packets."""
        return [self.ws.recv()]

    def close(self):
        """Close the socket (the server may have closed its end long before)."""
        self.ws.abort()
        self.ws.close()


class SilentPollingClient(_Conversation):
    """A raw long-polling Socket.IO client."""

    def __init__(self, server_url):
        self.server_url = server_url
        self.http = requests.Session()
        self.sid = None
        opening = self.receive()[0]
        self.sid = json.loads(opening[1:])['sid']

    def send(self, packet):
        """POST one Engine.IO packet."""
        reply = self.http.post(_socket_io_url(self.server_url, 'polling', self.sid),
                               data=packet.encode(), timeout=WAIT_S)
        reply.raise_for_status()

    def receive(self):
        """Poll once and return the Engine.IO packets in the reply."""
        reply = self.http.get(_socket_io_url(self.server_url, 'polling', self.sid),
                              timeout=WAIT_S)
        reply.raise_for_status()
        return reply.text.split(RECORD_SEPARATOR)

    def close(self):
        """Drop the HTTP connections; the server is never told."""
        self.http.close()


CLIENTS = {'websocket': SilentWebSocketClient, 'polling': SilentPollingClient}


def join_and_go_silent(server_url, transport, nick, room):
    """Connect to /chat as ``nick``, join ``room``; return (client, greeting, join ack)."""
    client = CLIENTS[transport](server_url)
    greeting = client.connect('/chat', {'nick': nick})
    ack = client.call('/chat', 1, 'join', {'room': room})
    return client, greeting, ack
