"""Clients that vanish without a word are removed whole: from the room, their nick and the caps."""
import collections
import time

import pytest

from tests.support.live_server import LiveServer
from tests.support.silent_client import join_and_go_silent
from tests.support.sio_client import RecordingClient

pytestmark = pytest.mark.live

GHOSTS = 200
PING_INTERVAL = 2
PING_TIMEOUT = 2.0
# The server notices a silent client one ping interval plus the ping timeout after its last
# sign of life, and announces its leave when its reconnect grace is over; the margin covers
# sweeping 200 of them on a busy 2-core machine.
GRACE = 1.0
NOTICED_WITHIN = PING_INTERVAL + PING_TIMEOUT + GRACE + 10.0
ROOM = 'haunted'


def haunt(server, transport, nicks):
    """Put one silent client per nick into the room; each must get its nick and its seat."""
    ghosts = []
    for nick in nicks:
        client, greeting, ack = join_and_go_silent(server.url, transport, nick, ROOM)
        ghosts.append(client)
        assert greeting['nick'] == nick, 'a nick held by a vanished client was not freed'
        assert ack['ok'] is True, ack
    return ghosts


def leaves(watcher):
    return [info['nick'] for info in watcher.received('room_info') if info['kind'] == 'leave']


@pytest.mark.parametrize('transport', ['websocket', 'polling'])
def test_silent_clients_leave_the_room_within_the_ping_timeout(output_dir, transport):
    nicks = [f'ghost-{n:03d}' for n in range(GHOSTS)]
    ghosts = []
    server = LiveServer(output_dir / 'server.log', PING_INTERVAL=PING_INTERVAL,
                        PING_TIMEOUT=PING_TIMEOUT, RECONNECT_GRACE=GRACE,
                        MAX_ROOM_MEMBERS=GHOSTS + 1)
    try:
        with server, RecordingClient(server.url, ['/chat'], auth={'nick': 'watcher'}) as watcher:
            watcher.call('join', {'room': ROOM})
            ghosts += haunt(server, transport, nicks)
            watcher.wait_for('room_info', GHOSTS, timeout=NOTICED_WITHIN,
                             where=lambda info: info['kind'] == 'leave')
            time.sleep(PING_INTERVAL)  # a second leave for anyone would arrive by now
            assert collections.Counter(leaves(watcher)) == collections.Counter(nicks)
            assert watcher.call('room_members', {'room': ROOM})['members'] == ['watcher']
            assert watcher.call('direct_message', {'to': nicks[0], 'text': 'still there?'})[
                'error']['code'] == 'unknown_nick'

            # The room's cap and every nick are free again: a second wave fits exactly.
            ghosts += haunt(server, transport, nicks)
            members = watcher.call('room_members', {'room': ROOM})['members']
            assert len(members) == GHOSTS + 1
        log = server.output()
        assert 'RecursionError' not in log and 'Traceback' not in log, log[-5000:]
    finally:
        for ghost in ghosts:
            ghost.close()
