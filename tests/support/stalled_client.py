"""A chat client in its own process, so a test can freeze it (SIGSTOP) like a dead network.

Usage: python -m tests.support.stalled_client URL ROOM — prints its nick once it has joined.
"""
import sys
import time

import socketio


def main(url, room):
    """Join the room, report the nick on stdout, then idle until killed."""
    client = socketio.Client(reconnection=False)
    greeting = {}
    client.on('my_response', lambda data: greeting.setdefault('nick', data['nick']),
              namespace='/chat')
    client.connect(url, namespaces=['/chat'], transports=['websocket'], wait_timeout=5)
    client.call('join', {'room': room}, namespace='/chat', timeout=5)
    print(greeting['nick'], flush=True)
    while True:
        time.sleep(1)


if __name__ == '__main__':
    main(*sys.argv[1:3])
