"""Restarting the server mid-conversation: pages reconnect by themselves and lose nothing."""
import re

import pytest
from playwright.sync_api import expect

from tests.support.live_server import RestartableServer

pytestmark = pytest.mark.browser

RECONNECT_MS = 20_000  # socket.io-client backs off up to 5 s between attempts
NOT_CONNECTED = re.compile(r'^(reconnecting|offline)$')


@pytest.fixture
def live_server(output_dir):
    """Overrides the shared fixture: the pages of this module connect to a restartable server."""
    server = RestartableServer(output_dir).start()
    yield server
    server.stop()


def test_pages_resume_after_a_restart_with_the_whole_history(open_page, live_server, output_dir):
    alice, bob = open_page(), open_page()
    for page in (alice, bob):
        page.allow(r'socket\.io/')  # reconnection attempts fail while the server is down
    alice_nick, bob_nick = alice.nick(), bob.nick()
    alice.join('lobby')
    bob.join('lobby')
    alice.send('before the restart, from alice')
    bob.send('before the restart, from bob')
    expect(alice.messages()).to_have_count(2)
    expect(bob.messages()).to_have_count(2)

    live_server.restart()

    for page, nick in ((alice, alice_nick), (bob, bob_nick)):
        expect(page.by('chat-status')).to_have_attribute('data-state', 'connected',
                                                          timeout=RECONNECT_MS)
        expect(page.by('my-nick')).to_have_text(nick)
        expect(page.member_nicks()).to_have_count(2)
        assert page.message_ids() == [1, 2]
    assert live_server.current.output().count('chat client connected') >= 2
    alice.send('after the restart')
    expect(bob.message('after the restart')).to_have_count(1)
    expect(bob.messages()).to_have_count(3)
    assert bob.message_ids() == [1, 2, 3]

    carol = open_page()
    carol.join('lobby')
    expect(carol.message_texts()).to_have_text([
        'before the restart, from alice', 'before the restart, from bob', 'after the restart'])
    bob.screenshot(output_dir / 'bob-after-restart.png')


def test_a_paused_ticker_goes_on_after_a_restart_with_the_new_servers_seq(open_page,
                                                                         live_server,
                                                                         output_dir):
    page = open_page()
    page.allow(r'socket\.io/')  # reconnection attempts fail while the server is down
    toggle = page.by('ticker-toggle')
    page.wait_for_seq_above(25, timeout=15_000)  # a restarted server counts from 1: well below
    toggle.click()
    expect(toggle).to_have_attribute('data-state', 'paused')
    paused_at = page.seq()

    live_server.restart()

    # Back, and still paused: the panel shows what it showed.
    expect(page.by('ticker-status')).to_have_attribute('data-state', 'connected',
                                                        timeout=RECONNECT_MS)
    expect(toggle).to_have_attribute('data-state', 'paused')
    expect(toggle).to_be_enabled()
    expect(page.by('ticker-seq')).to_have_text(str(paused_at))

    # Resumed, it follows the new server, whose seq is smaller than the one shown before.
    toggle.click()
    expect(toggle).to_have_attribute('data-state', 'live')
    page.page.wait_for_function(
        'n => Number(document.querySelector(\'[data-testid="ticker-seq"]\').textContent) < n',
        arg=paused_at)
    page.wait_for_seq_above(page.seq())  # and goes on
    page.screenshot(output_dir / 'ticker-resumed.png')
