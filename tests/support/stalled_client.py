"""A chat client in its own process, so a test can freeze it (SIGSTOP) like a dead network.

Usage: python -m tests.support.stalled_client URL ROOM [NICK] — once it has joined ROOM it
prints its nick and its session token on one line, then idles until killed.
"""
import sys
import time

import socketio


def main(url, room, nick=None):
    """Join the room, report nick and session on stdout, then idle until killed."""
    client = socketio.Client(reconnection=False)
    greeting = {}
    client.on('my_response', lambda data: greeting.setdefault('welcome', data), namespace='/chat')
    client.connect(url, namespaces=['/chat'], transports=['websocket'], wait_timeout=5,
                   auth={'nick': nick} if nick else None)
    client.call('join', {'room': room}, namespace='/chat', timeout=5)
    print(greeting['welcome']['nick'], greeting['welcome']['session'], flush=True)
    while True:
        time.sleep(1)


if __name__ == '__main__':
    main(*sys.argv[1:4])
