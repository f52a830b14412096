"""The browser client in headless Chromium against the real server (run.py, 0.2 s ticker).

Every page is opened through the ``open_page`` fixture, which also fails the test on any
console error, uncaught exception, failed request or request to another host.
"""
import re

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.browser

VALUE_1_TO_100 = re.compile(r'^(100|[1-9][0-9]?)$')
CLOCK_HH_MM = re.compile(r'^\d\d:\d\d$')
XSS = '<img src=x onerror="window.__xss=1"><b>bold</b>'
TICK_S = 0.2  # PUSH_INTERVAL of the live_server fixture


def sorted_nicks(*nicks):
    """Nicks in the order the server lists members: ignoring case."""
    return sorted(nicks, key=str.casefold)


def test_two_people_chat_in_a_room(open_page, output_dir):
    alice, bob = open_page(), open_page()
    alice_nick, bob_nick = alice.nick(), bob.nick()
    assert alice_nick != bob_nick

    alice.join('lobby')
    bob.join('lobby')
    for person in (alice, bob):
        expect(person.member_nicks()).to_have_text(sorted_nicks(alice_nick, bob_nick))
        expect(person.by('member-count')).to_have_text('2')
    expect(alice.page.get_by_test_id('system-message').filter(has_text=bob_nick)).to_contain_text(
        'joined')

    alice.send('Hello from Alice')
    message = bob.message('Hello from Alice')
    expect(message).to_have_count(1)
    expect(message.get_by_test_id('message-nick')).to_have_text(alice_nick)
    expect(message.get_by_test_id('message-time')).to_have_text(CLOCK_HH_MM)
    expect(alice.message('Hello from Alice')).to_have_count(1)  # the sender sees it once too
    expect(alice.by('message-input')).to_have_value('')

    bob.send('Hi Alice, Bob here')
    message = alice.message('Hi Alice, Bob here')
    expect(message).to_have_count(1)
    expect(message.get_by_test_id('message-nick')).to_have_text(bob_nick)
    expect(alice.messages()).to_have_count(2)
    expect(bob.messages()).to_have_count(2)

    alice.screenshot(output_dir / 'alice.png')
    bob.screenshot(output_dir / 'bob.png')

    # Leaving updates the other member's list and log.
    bob.room_item('lobby').get_by_test_id('room-leave').click()
    expect(bob.room_item('lobby')).to_have_count(0)
    expect(alice.member_nicks()).to_have_text([alice_nick])
    expect(alice.page.get_by_test_id('system-message').filter(has_text=bob_nick).last
           ).to_contain_text('left')


def test_ticker_shows_values_charts_them_and_pauses(open_page):
    page = open_page()
    value, seq = page.by('ticker-value'), page.by('ticker-seq')
    chart = page.by('ticker-chart')

    expect(value).to_have_text(VALUE_1_TO_100)
    expect(seq).to_have_text(re.compile(r'^\d+$'))
    expect(page.by('ticker-interval')).to_have_text('200 ms')
    page.wait_for_seq_above(page.seq() + 2)
    expect(value).to_have_text(VALUE_1_TO_100)

    # The chart is drawn by uPlot and plots more values as they come (the server is fresh,
    # so it holds fewer than its 60 values).
    expect(chart.locator('canvas')).to_have_count(1)
    box = chart.locator('canvas').bounding_box()
    assert box['width'] > 100 and box['height'] > 100
    plotted = int(chart.get_attribute('data-points'))
    assert 1 <= plotted < 60
    expect(chart).not_to_have_attribute('data-points', str(plotted))
    assert int(chart.get_attribute('data-points')) > plotted

    # Pause: once the server confirms, this page receives nothing more. A second page, still
    # live, proves the ticker went on for more than three intervals meanwhile.
    toggle = page.by('ticker-toggle')
    toggle.click()
    expect(toggle).to_have_text('Resume')
    expect(toggle).to_have_attribute('data-state', 'paused')
    expect(page.by('ticker-state')).to_contain_text('Paused')
    paused_seq = page.seq()
    paused_points = chart.get_attribute('data-points')
    observer = open_page()
    observer.wait_for_seq_above(paused_seq + 4)
    assert page.seq() == paused_seq
    assert chart.get_attribute('data-points') == paused_points
    assert chart.get_attribute('data-last-seq') == str(paused_seq)

    # Resume: values flow again.
    toggle.click()
    expect(toggle).to_have_text('Pause')
    expect(toggle).to_have_attribute('data-state', 'live')
    page.wait_for_seq_above(paused_seq)
    expect(value).to_have_text(VALUE_1_TO_100)


def test_markup_in_messages_and_room_names_is_shown_as_text(open_page):
    alice, bob = open_page(), open_page()
    alice.join('lobby')
    bob.join('lobby')

    alice.send(XSS)
    for person in (alice, bob):
        expect(person.message(XSS)).to_have_count(1)
        expect(person.message(XSS).get_by_test_id('message-text')).to_have_text(XSS)
    for person in (alice, bob):
        expect(person.by('message-log').locator('img, b, script')).to_have_count(0)
        assert person.page.evaluate('typeof window.__xss') == 'undefined'
        assert not [url for url in person.requests if url.endswith('/x')]

    # A room name (and with it the room list, title and system lines) is text as well.
    room = '<i>fancy</i> room'
    alice.join(room)
    bob.join(room)
    expect(alice.by('active-room')).to_have_text(f'# {room}')
    for person in (alice, bob):
        expect(person.page.locator('i')).to_have_count(0)


def test_bad_input_shows_the_server_error_and_stays_connected(open_page):
    page = open_page()
    error_line = page.by('error-line')
    expect(error_line).to_have_text('')

    page.by('room-input').fill('r' * 65)
    page.by('room-input').press('Enter')
    expect(error_line).to_contain_text('the room name is longer than 64 characters')
    expect(page.by('room-list').get_by_test_id('room-item')).to_have_count(0)
    expect(page.by('room-input')).to_have_value('r' * 65)  # kept, to be corrected
    expect(page.by('chat-status')).to_have_attribute('data-state', 'connected')

    # The page still works; a message that is too long is refused and given back.
    page.page.locator('.toast-close').click()
    expect(error_line).to_have_text('')
    page.join('lobby')
    too_long = 'x' * 2001
    page.send(too_long)
    expect(error_line).to_contain_text('is longer than 2000 characters')
    expect(page.by('message-input')).to_have_value(too_long)
    expect(page.messages()).to_have_count(0)
    page.send('short enough')
    expect(page.message('short enough')).to_have_count(1)
    expect(page.by('chat-status')).to_have_attribute('data-state', 'connected')


def test_page_loads_nothing_from_other_hosts_and_logs_no_errors(open_page, live_server):
    page = open_page()
    page.join('lobby')
    page.send('hello')
    expect(page.message('hello')).to_have_count(1)
    page.wait_for_seq_above(page.seq() + 1)

    base = live_server.url
    ws_base = 'ws' + base.removeprefix('http')
    paths = {url.removeprefix(base) for url in page.requests}
    assert {'/', '/static/js/main.js', '/static/css/app.css', '/vendor/socket.io.esm.min.js',
            '/vendor/uPlot.esm.js', '/vendor/uPlot.min.css'} <= paths
    foreign = [url for url in page.requests
               if not url.startswith(base + '/') and not url.startswith(('data:', 'blob:'))]
    assert foreign == []
    assert page.websockets, 'the client should upgrade to a WebSocket'
    assert all(url.startswith(ws_base + '/socket.io/') for url in page.websockets)
    assert page.problems == []


def test_reconnect_rejoins_rooms_and_shows_each_message_once(open_page):
    alice = open_page()
    sockets = []

    def route_websockets(page):
        def connect(websocket):
            websocket.connect_to_server()  # pass everything through, but keep a handle
            sockets.append(websocket)
        page.route_web_socket(re.compile(r'/socket\.io/'), connect)

    bob = open_page(setup=route_websockets)
    bob.allow(r'socket\.io/')  # the refused reconnection attempts below
    alice_nick, bob_nick = alice.nick(), bob.nick()
    alice.join('lobby')
    bob.join('lobby')
    alice.send('before the outage')
    expect(bob.message('before the outage')).to_have_count(1)
    expect(bob.by('chat-status')).to_have_attribute('data-transport', 'websocket')

    # Cut Bob's connection and keep him out while Alice writes.
    bob.page.route(re.compile(r'/socket\.io/'), lambda route: route.abort())
    sockets[-1].close()
    expect(bob.by('chat-status')).to_have_attribute('data-state', 'reconnecting')
    expect(bob.by('ticker-status')).to_have_attribute('data-state', 'reconnecting')
    expect(alice.member_nicks()).to_have_text([alice_nick])
    alice.send('while Bob was away')
    expect(alice.message('while Bob was away')).to_have_count(1)

    # Let him back: he reconnects by himself, asks for his nick again (auth) and rejoins.
    bob.page.unroute(re.compile(r'/socket\.io/'))
    expect(bob.by('chat-status')).to_have_attribute('data-state', 'connected', timeout=12_000)
    expect(alice.member_nicks()).to_have_text(sorted_nicks(alice_nick, bob_nick))
    expect(bob.member_nicks()).to_have_text(sorted_nicks(alice_nick, bob_nick))
    expect(bob.by('my-nick')).to_have_text(bob_nick)
    expect(bob.by('active-room')).to_have_text('# lobby')

    # The history from the rejoin fills the gap; nothing shows twice.
    expect(bob.messages().get_by_test_id('message-text')).to_have_text(
        ['before the outage', 'while Bob was away'])
    bob.send('back again')
    expect(alice.message('back again').get_by_test_id('message-nick')).to_have_text(bob_nick)
    expect(bob.messages().get_by_test_id('message-text')).to_have_text(
        ['before the outage', 'while Bob was away', 'back again'])
    expect(bob.by('ticker-status')).to_have_attribute('data-state', 'connected')
