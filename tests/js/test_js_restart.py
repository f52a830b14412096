"""The official socket.io-client comes back by itself to a restarted server, in its room."""
import time
from pathlib import Path

import pytest

from tests.support.live_server import RestartableServer
from tests.support.node_script import NodeScript
from tests.support.sio_client import RecordingClient

pytestmark = pytest.mark.live
CLIENT = Path(__file__).with_name('restart_client.mjs')
WAIT_S = 20


class NodeClient(NodeScript):
    """restart_client.mjs in its own process."""

    def __init__(self, url, transport, nick, room):
        super().__init__(CLIENT, url, transport, nick, room)
        self.seen = []

    def next(self, event):
        """Return the next report of ``event``, skipping others (kept in ``seen``)."""
        deadline = time.monotonic() + WAIT_S
        while True:
            report = self.next_line(deadline)
            if report is None:
                raise AssertionError(f'no {event} in {WAIT_S}s; seen: {self.seen}')
            self.seen.append(report)
            if report['event'] == event:
                return report


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
