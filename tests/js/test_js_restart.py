"""The official socket.io-client comes back by itself to a restarted server, in its room."""
import json
import queue
import shutil
import subprocess
import threading
from pathlib import Path

import pytest

from tests.support.live_server import RestartableServer
from tests.support.sio_client import RecordingClient

pytestmark = pytest.mark.live
CLIENT = Path(__file__).with_name('restart_client.mjs')
WAIT_S = 20


class NodeClient:
    """restart_client.mjs in its own process, its JSON lines read as they come."""

    def __init__(self, url, transport, nick, room):
        node = shutil.which('node')
        assert node, 'Node.js is required: the README quick start installs it'
        self.process = subprocess.Popen([node, str(CLIENT), url, transport, nick, room],
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.lines = queue.Queue()
        self.seen = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.process.stdout:
            self.lines.put(json.loads(line))
        self.process.stdout.close()

    def next(self, event):
        """Return the next report of ``event``, skipping others (kept in ``seen``)."""
        while True:
            try:
                report = self.lines.get(timeout=WAIT_S)
            except queue.Empty:
                raise AssertionError(f'no {event} in {WAIT_S}s; seen: {self.seen}') from None
            self.seen.append(report)
            if report['event'] == event:
                return report

    def close(self):
        self.process.stdin.close()
        try:
            self.process.wait(5)
        finally:
            self.process.kill()


@pytest.mark.parametrize('transport', ['websocket', 'polling'])
def test_the_javascript_client_returns_to_a_restarted_server_in_its_room(output_dir, transport):
    server = RestartableServer(output_dir).start()
    client = NodeClient(server.url, transport, 'Nina', 'lobby')
    try:
        assert client.next('joined') == {'event': 'joined', 'connects': 1, 'nick': 'Nina',
                                          'members': ['Nina']}
        with RecordingClient(server.url, ['/chat']) as sender:
            sender.call('join', {'room': 'lobby'})
            sender.call('room_message', {'room': 'lobby', 'text': 'before'})
        assert client.next('message') == {'event': 'message', 'id': 1, 'text': 'before'}

        server.restart()

        # A lost connection, which socket.io clients retry, not "io server disconnect".
        assert client.next('disconnect')['reason'] in ('transport close', 'transport error')
        back = client.next('joined')
        assert (back['connects'], back['nick'], back['members']) == (2, 'Nina', ['Nina'])
        with RecordingClient(server.url, ['/chat']) as sender:
            sender.call('join', {'room': 'lobby'})
            sender.call('room_message', {'room': 'lobby', 'text': 'after'})
        assert client.next('message') == {'event': 'message', 'id': 2, 'text': 'after'}
    finally:
        client.close()
        server.stop()
