"""Fixes of the client found by review, in headless Chromium against the real server: catching up
page by page while live messages arrive, and messages from a nick this tab gave up.

Pages come from the ``open_page`` fixture, which also fails a test on any console error,
uncaught exception, failed request or request to another host.
"""
import re

import pytest
from playwright.sync_api import expect

from tests.support.sio_client import RecordingClient

pytestmark = pytest.mark.browser

SOCKET_IO = re.compile(r'/socket\.io/')
# A history request of the page on /chat, alone in a WebSocket frame or among the packets of a
# long-polling POST (separated by \x1e): 42/chat,<ack id>["history",{...}]
HISTORY_REQUEST = re.compile(r'(^|\x1e)42/chat,\d+\["history"')
MINE = re.compile(r'(^|\s)mine(\s|$)')
PAGE = 5  # the server's largest history page here: a short catch-up takes several pages
SMALL_PAGES = {'MAX_HISTORY_PAGE': str(PAGE), 'RATE_LIMIT_PER_SECOND': '500',
               'RATE_LIMIT_BURST': '500'}
MISSED = 3 * PAGE - 1  # with the one seen before: three pages of catching up


def sorted_nicks(*nicks):
    """Nicks in the order the server lists members: ignoring case."""
    return sorted(nicks, key=str.casefold)


class HistoryHold:
    """Holds the page's first history request once armed, whichever transport carries it (a
    WebSocket frame or a long-polling POST), until release() lets it go on to the server."""

    def __init__(self):
        self.armed = False
        self.held = []

    def install(self, page):
        def connect(websocket):
            server = websocket.connect_to_server()

            def from_page(message):
                if self._take(message):
                    self.held.append(lambda: server.send(message))
                    return
                server.send(message)
            websocket.on_message(from_page)

        def poll(route):
            request = route.request
            if request.method == 'POST' and self._take(request.post_data):
                self.held.append(route.continue_)
                return
            route.continue_()

        page.route_web_socket(SOCKET_IO, connect)
        page.route(SOCKET_IO, poll)

    def _take(self, message):
        if self.armed and isinstance(message, str) and HISTORY_REQUEST.search(message):
            self.armed = False
            return True
        return False

    def wait_held(self, page, timeout_ms=5_000):
        for _ in range(timeout_ms // 50):
            if self.held:
                return
            page.wait_for_timeout(50)
        raise AssertionError('no history request was made')

    def release(self):
        for let_go in self.held:
            let_go()
        self.held.clear()


@pytest.mark.parametrize('server_env', [SMALL_PAGES], ids=['small-pages'])
def test_catching_up_skips_nothing_when_a_live_message_arrives_between_pages(open_page,
                                                                             live_server,
                                                                             output_dir):
    hold = HistoryHold()
    bob = open_page(setup=hold.install)
    bob.allow(r'socket\.io/')  # leaving the page cuts its connection
    bob_nick = bob.nick()
    bob.join('lobby')
    with RecordingClient(live_server.url, ['/chat']) as poster:
        assert poster.call('join', {'room': 'lobby'})['ok']
        assert poster.call('room_message', {'room': 'lobby', 'text': 'seen'})['ok']
        expect(bob.message('seen')).to_have_count(1)

        # Bob leaves the page; more than a page of messages comes meanwhile.
        bob.page.goto('about:blank')
        for n in range(1, MISSED + 1):
            assert poster.call('room_message', {'room': 'lobby', 'text': f'missed {n}'})['ok']

        # Back, the page catches up page by page. While its second page is on its way, a live
        # message arrives: the pages after it must still follow on from the one before.
        hold.armed = True
        bob.page.goto(live_server.url + '/')
        bob.wait_ready(bob_nick)
        expect(bob.by('active-room')).to_have_text('# lobby')
        hold.wait_held(bob.page)
        assert poster.call('room_message', {'room': 'lobby', 'text': 'live'})['ok']
        expect(bob.message('live')).to_have_count(1)
        hold.release()

        total = 1 + MISSED + 1
        expect(bob.messages()).to_have_count(total)
        expect(bob.message_texts()).to_have_text(
            ['seen', *(f'missed {n}' for n in range(1, MISSED + 1)), 'live'])
        assert bob.message_ids() == list(range(1, total + 1))  # each once, no gap
        expect(bob.by('error-line')).to_have_text('')
        bob.screenshot(output_dir / 'bob.png')


def test_a_message_from_a_nick_i_gave_up_is_not_shown_as_mine(open_page, output_dir):
    ana, bob = open_page(), open_page()
    ana.set_nick('Xena')
    expect(ana.by('my-nick')).to_have_text('Xena')
    ana.join('lobby')
    bob.join('lobby')
    ana.send('said as Xena')
    expect(ana.message('said as Xena')).to_have_class(MINE)

    # Ana becomes Yuri; Bob takes the nick she gave up, and writes in the room and to her.
    ana.set_nick('Yuri')
    expect(ana.by('my-nick')).to_have_text('Yuri')
    bob.set_nick('Xena')
    expect(bob.by('my-nick')).to_have_text('Xena')
    expect(ana.member_nicks()).to_have_text(sorted_nicks('Xena', 'Yuri'))
    bob.send('said by Bob as Xena')
    theirs = ana.message('said by Bob as Xena')
    expect(theirs).to_have_count(1)
    expect(theirs).not_to_have_class(MINE)
    ana.send('said as Yuri')
    expect(ana.message('said as Yuri')).to_have_class(MINE)
    expect(ana.message('said as Xena')).to_have_class(MINE)  # hers, shown before Bob took it
    ana.screenshot(output_dir / 'ana-room.png')

    bob.by('dm-input').fill('Yuri')
    bob.by('dm-input').press('Enter')
    expect(bob.by('active-room')).to_have_text('@ Yuri')
    bob.send('a word for Yuri')
    expect(ana.dm_item('Xena').get_by_test_id('dm-unread')).to_have_text('1 unread')
    ana.dm_item('Xena').get_by_test_id('dm-select').click()
    dm = ana.message('a word for Yuri')
    expect(dm.get_by_test_id('message-nick')).to_have_text('Xena')
    expect(dm).not_to_have_class(MINE)
    ana.send('a word back')
    expect(ana.message('a word back')).to_have_class(MINE)
    expect(bob.message('a word back')).not_to_have_class(MINE)
