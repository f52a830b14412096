"""The page's worker killed with SIGKILL: the page moves to another worker and loses nothing.

The real launcher (``python -m deploy.cluster``: its own redis-server, two workers sharing one
SQLite file, nginx in front); the page connects through nginx from 127.0.0.1, and another
client, from an address that nginx sends to the other worker, chats with it.
"""
import os
import re
import signal

import pytest
from playwright.sync_api import expect

from tests.support.cluster import ClusterProcess
from tests.support.proxy import CuttableProxy
from tests.support.resuming_client import ResumingChatClient

pytestmark = pytest.mark.browser

ROOM = 'lobby'
PAGE_SOURCE = '127.0.0.1'  # where Chromium's requests come from
WHILE_DEAD = 3  # messages sent while the page's worker is dead
# The launcher starts the dead worker again after this long: the page, which tries again after
# 0.5 to 1.5 s, finds it down and nginx sends it to the other worker.
RESTART_DELAY_S = 4.0
RECONNECT_MS = 20_000  # socket.io-client backs off up to 5 s between attempts
NOT_CONNECTED = re.compile(r'^(reconnecting|offline)$')


@pytest.fixture
def live_server(output_dir):
    """Overrides the shared fixture: the pages of this module connect to nginx in front of two
    workers (with a fast ticker and heartbeat), which the launcher restarts when they die."""
    args = ('--max-restarts', '1', '--restart-delay', str(RESTART_DELAY_S))
    with ClusterProcess(output_dir, workers=2, args=args, PUSH_INTERVAL='0.2',
                        WORKER_HEARTBEAT='0.3') as cluster:
        yield cluster


def test_a_page_whose_worker_is_killed_comes_back_with_its_nick_and_the_whole_history(
        open_page, live_server, output_dir):
    cluster = live_server
    page = open_page()
    page.allow(r'socket\.io/')  # requests to the dead worker fail until nginx moves the page
    nick = page.nick()
    victim = cluster.worker_for(PAGE_SOURCE)
    other = ({'worker-1', 'worker-2'} - {victim}).pop()
    source = cluster.sources_by_worker(per_worker=1)[other][0]
    nginx = ('127.0.0.1', cluster.port)
    with CuttableProxy(nginx, source=source) as route, \
            ResumingChatClient(route.url, 'Bob') as bob:
        page.join(ROOM)
        bob.join(ROOM)
        expect(page.member_nicks()).to_have_count(2)
        page.send('before, from the page')
        bob.wait_delivered(ROOM, 1)
        assert bob.send(ROOM, 'before, from bob')['id'] == 2
        expect(page.messages()).to_have_count(2)

        victim_pid = cluster.pid(victim)
        mark = cluster.line_count()
        infos_before = len(bob.room_infos)
        os.kill(victim_pid, signal.SIGKILL)
        cluster.wait_for_line(rf'{victim} \(pid {victim_pid}, port \d+\) died: killed by SIGKILL',
                              5, after=mark)
        expect(page.by('chat-status')).to_have_attribute('data-state', NOT_CONNECTED)
        for n in range(WHILE_DEAD):
            assert bob.send(ROOM, f'while the page is away {n}')['ok'] is True
        # ... while the page's worker was still dead: the launcher had not restarted it.
        assert not any('restarted' in line for line in cluster.lines(mark))

        expect(page.by('chat-status')).to_have_attribute('data-state', 'connected',
                                                          timeout=RECONNECT_MS)
        expect(page.by('ticker-status')).to_have_attribute('data-state', 'connected')
        expect(page.by('my-nick')).to_have_text(nick)
        expect(page.member_nicks()).to_have_count(2)
        total = 2 + WHILE_DEAD
        expect(page.messages()).to_have_count(total)
        assert page.message_ids() == list(range(1, total + 1))

        page.send('after, from the page')
        assert [m['text'] for m in bob.wait_delivered(ROOM, total + 1)][-1] == \
            'after, from the page'
        assert bob.send(ROOM, 'after, from bob')['id'] == total + 2
        expect(page.messages()).to_have_count(total + 2)
        assert page.message_ids() == list(range(1, total + 3))
        # Its worker restarted, the page stays where it is and goes on.
        cluster.wait_for_line(rf'{victim} \(pid \d+\) serving again', RECONNECT_MS / 1000,
                              after=mark)
        assert bob.send(ROOM, 'after the restart')['id'] == total + 3
        expect(page.messages()).to_have_count(total + 3)
        assert page.message_ids() == list(range(1, total + 4))
        expect(page.by('chat-status')).to_have_attribute('data-state', 'connected')
        assert bob.connects == 1, bob.disconnect_reasons
        # Bob saw the page leave and join at most once each, and nothing else.
        seen = [(info['kind'], info['nick']) for info in bob.room_infos[infos_before:]]
        assert set(seen) <= {('leave', nick), ('join', nick)} and len(seen) == len(set(seen)), \
            seen
        page.screenshot(output_dir / 'page-after-its-worker-died.png')

    # Through nginx to its worker, then to the other one.
    assert cluster.socketio_route(PAGE_SOURCE) == [victim, other]
