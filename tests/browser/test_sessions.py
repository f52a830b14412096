"""Sessions in headless Chromium against the real server: each tab keeps a session token in
sessionStorage (while the page is away: the page takes it out at load and puts it back when it
goes), so a reload keeps its nick, rooms and direct messages; a direct message sent to a
connection that had silently died arrives after the reconnect; two tabs are two sessions, a
duplicated tab too; a session continued elsewhere says so; a token the server no longer takes
(its SECRET_KEY changed) is dropped for a new session; and a direct message whose
acknowledgement is lost is sent again and stored once.

Pages come from the ``open_page`` fixture, which also fails a test on any console error,
uncaught exception, failed request or request to another host.
"""
import json
import re

import pytest
from playwright.sync_api import expect

from server.chat.sessions import TOKEN_FORMAT, SessionTokens
from tests.support.sio_client import RecordingClient

pytestmark = pytest.mark.browser

SOCKET_IO = re.compile(r'/socket\.io/')
# A Socket.IO event with an ack id sent by the page on /chat: 42/chat,<ack id>["event",{...}]
CHAT_EMIT = re.compile(r'^42/chat,(\d+)(\[.*\])$', re.DOTALL)
# The server's acknowledgement of one: 43/chat,<ack id>[{...}]
CHAT_ACK = re.compile(r'^43/chat,(\d+)(\[.*\])$', re.DOTALL)
ENGINE_IO_PING, ENGINE_IO_PONG = '2', '3'
SESSION_KEY = 'relay.tab.session'
READ_SESSION_STORAGE = 'Object.fromEntries(Object.entries(sessionStorage))'


def sorted_nicks(*nicks):
    """Nicks in the order the server lists members: ignoring case."""
    return sorted(nicks, key=str.casefold)


def open_direct(page, nick):
    """Open the conversation with ``nick`` through the "Message someone" form."""
    page.by('dm-input').fill(nick)
    page.by('dm-input').press('Enter')
    expect(page.by('active-room')).to_have_text(f'@ {nick}')


def show(page, item):
    """Show the conversation of a room or direct tab."""
    item.locator('.room-select').click()


def test_a_reload_keeps_the_nick_the_rooms_and_the_direct_messages(open_page, live_server,
                                                                   output_dir):
    alice, bob = open_page(), open_page()
    bob.allow(r'socket\.io/')  # leaving the page cuts its connection
    alice_nick, bob_nick = alice.nick(), bob.nick()
    alice.join('lobby')
    bob.join('lobby')
    said = ['hello Bob', 'hi Alice', 'how are you?']
    for person, text in zip((alice, bob, alice), said):
        person.send(text)
        expect(alice.message(text)).to_have_count(1)
        expect(bob.message(text)).to_have_count(1)
    open_direct(alice, bob_nick)
    alice.send('a secret for Bob')
    show(bob, bob.dm_item(alice_nick))
    expect(bob.message('a secret for Bob')).to_have_count(1)
    bob.send('a secret for Alice')
    expect(alice.message('a secret for Alice')).to_have_count(1)
    dms = ['a secret for Bob', 'a secret for Alice']
    for person in (alice, bob):
        show(person, person.room_item('lobby'))

    # Bob leaves the page (the server sees him go) and comes back in the same tab while Alice
    # writes on: same nick, back in the lobby, every message once and in order.
    bob.page.goto('about:blank')
    expect(alice.member_nicks()).to_have_text([alice_nick])
    alice.send('while Bob was away')
    expect(alice.message('while Bob was away')).to_have_count(1)
    bob.page.goto(live_server.url + '/')
    bob.wait_ready(bob_nick)
    expect(bob.by('error-line')).to_have_text('')  # no "nick in use": his at once
    expect(bob.by('active-room')).to_have_text('# lobby')
    everything = [*said, 'while Bob was away']
    expect(bob.message_texts()).to_have_text(everything)
    assert bob.message_ids() == alice.message_ids() == [1, 2, 3, 4]
    expect(bob.page.get_by_test_id('system-message').filter(has_text='Reconnected')).to_have_text(
        re.compile('Reconnected: 1 new message while you were away'))
    for person in (alice, bob):
        expect(person.member_nicks()).to_have_text(sorted_nicks(alice_nick, bob_nick))
    # His direct messages came back with the session, not counted unread again.
    expect(bob.dm_item(alice_nick).get_by_test_id('dm-unread')).to_be_hidden()
    show(bob, bob.dm_item(alice_nick))
    expect(bob.message_texts()).to_have_text(dms)
    bob.screenshot(output_dir / 'bob-back.png')

    # A plain reload with the conversation shown: it is shown again, and goes on.
    bob.reload(nick=bob_nick)
    expect(bob.by('error-line')).to_have_text('')
    expect(bob.by('active-room')).to_have_text(f'@ {alice_nick}')
    expect(bob.message_texts()).to_have_text(dms)
    bob.send('still me')
    show(alice, alice.dm_item(bob_nick))
    expect(alice.message('still me').get_by_test_id('message-nick')).to_have_text(bob_nick)
    expect(alice.message_texts()).to_have_text([*dms, 'still me'])
    show(bob, bob.room_item('lobby'))
    expect(bob.message_texts()).to_have_text(everything)
    assert bob.message_ids() == [1, 2, 3, 4]
    expect(bob.by('room-list').get_by_test_id('room-item')).to_have_count(1)
    expect(bob.by('dm-list').get_by_test_id('dm-item')).to_have_count(1)
    bob.screenshot(output_dir / 'bob-reloaded.png')


def test_a_direct_message_to_a_dead_connection_arrives_after_the_reconnect(open_page, output_dir):
    alice = open_page()
    dead = {'socket': None, 'frames': [], 'sockets': []}

    def freezable(page):
        """Pass Bob's WebSockets through; the one in dead['socket'] carries nothing any more,
        but answers the server's pings, so that the server believes it alive."""
        def connect(websocket):
            server = websocket.connect_to_server()

            def from_server(message):
                if dead['socket'] is not websocket:
                    websocket.send(message)
                    return
                dead['frames'].append(message)
                if message == ENGINE_IO_PING:
                    server.send(ENGINE_IO_PONG)

            def from_page(message):
                if dead['socket'] is not websocket:
                    server.send(message)

            def page_closed(code, reason):
                if dead['socket'] is not websocket:
                    server.close(code=code, reason=reason)
            server.on_message(from_server)
            websocket.on_message(from_page)
            websocket.on_close(page_closed)  # closing the dead one's page side leaves the server's
            dead['sockets'].append(websocket)
        page.route_web_socket(SOCKET_IO, connect)

    bob = open_page(setup=freezable)
    bob.allow(r'socket\.io/')
    alice_nick, bob_nick = alice.nick(), bob.nick()
    alice.join('lobby')
    bob.join('lobby')
    expect(bob.by('chat-status')).to_have_attribute('data-transport', 'websocket')
    expect(alice.member_nicks()).to_have_text(sorted_nicks(alice_nick, bob_nick))

    # Bob's connection goes silent without closing: the server still holds his nick, accepts
    # Alice's message for him and hands it to that connection, but his page never gets it.
    dead['socket'] = dead['sockets'][-1]
    open_direct(alice, bob_nick)
    alice.send('are you there?')
    expect(alice.message('are you there?')).to_have_count(1)
    expect(alice.by('error-line')).to_have_text('')
    expect(bob.by('chat-status')).to_have_attribute('data-state', 'connected')
    expect(bob.dm_item(alice_nick)).to_have_count(0)

    # His page notices at last (here: the socket closes on its side only) and reconnects with
    # its session: it takes the nick back from the dead connection at once and fetches the
    # direct messages it missed.
    dead['socket'].close()
    expect(bob.by('chat-status')).to_have_attribute('data-state', 'connected', timeout=12_000)
    expect(bob.by('my-nick')).to_have_text(bob_nick)
    expect(bob.by('error-line')).to_have_text('')
    unread = bob.dm_item(alice_nick).get_by_test_id('dm-unread')
    expect(unread).to_have_text('1 unread')
    assert any('are you there?' in frame for frame in dead['frames'])  # it went to the dead one
    bob.screenshot(output_dir / 'bob-unread.png')
    show(bob, bob.dm_item(alice_nick))
    expect(bob.message_texts()).to_have_text(['are you there?'])
    expect(bob.message('are you there?').get_by_test_id('message-nick')).to_have_text(alice_nick)
    for person in (alice, bob):
        expect(person.member_nicks()).to_have_text(sorted_nicks(alice_nick, bob_nick))

    # The conversation goes on, each message once.
    bob.send('yes, back now')
    expect(alice.message_texts()).to_have_text(['are you there?', 'yes, back now'])
    expect(bob.message_texts()).to_have_text(['are you there?', 'yes, back now'])
    assert alice.message_ids() == bob.message_ids()


def test_two_tabs_of_one_browser_are_two_sessions(open_page, output_dir):
    first = open_page()
    first.set_nick('Ana')
    expect(first.by('my-nick')).to_have_text('Ana')
    first.join('lobby')

    # A second tab of the same browser asks for the nick it finds in localStorage, but it has
    # no session yet (sessionStorage is per tab): it must not take "Ana" from the first tab.
    second = open_page(beside=first)
    second_nick = second.nick()
    expect(second.by('error-line')).to_have_text(
        f'The nick "Ana" is in use elsewhere, so you are {second_nick} in this tab.')
    assert second.page.evaluate("localStorage.getItem('relay.nick')") == 'Ana'

    second.join('lobby')
    for page in (first, second):
        expect(page.member_nicks()).to_have_text(sorted_nicks('Ana', second_nick))
    first.send('hello from the first tab')
    expect(second.message('hello from the first tab')).to_have_count(1)

    # A reload of the second tab keeps its own session and nick, and leaves the first alone.
    second.reload(nick=second_nick)
    expect(second.by('active-room')).to_have_text('# lobby')
    expect(second.message_texts()).to_have_text(['hello from the first tab'])
    for page in (first, second):
        expect(page.member_nicks()).to_have_text(sorted_nicks('Ana', second_nick))
    expect(first.by('chat-status')).to_have_attribute('data-state', 'connected')
    expect(first.by('my-nick')).to_have_text('Ana')
    expect(first.page.get_by_test_id('system-message').filter(
        has_text=re.compile('Connection lost|Disconnected'))).to_have_count(0)
    first.send('still the first tab')
    expect(second.message('still the first tab')).to_have_count(1)
    first.screenshot(output_dir / 'first.png')
    second.screenshot(output_dir / 'second.png')

    # Each tab leaves its own session token in its sessionStorage when the page goes (here to
    # another page of the same origin, which can read it).
    for page in (first, second):
        page.allow(r'socket\.io/|favicon\.ico')  # leaving cuts the connection; no icon there
        page.page.goto(page.base_url + '/healthz')
    tokens = [page.page.evaluate(f"sessionStorage.getItem('{SESSION_KEY}')")
              for page in (first, second)]
    distinct = all(tokens) and tokens[0] != tokens[1]  # (never print a token)
    assert distinct, 'each tab must hold its own session token'


def test_a_duplicated_tab_starts_its_own_session(open_page, output_dir):
    first = open_page()
    first.set_nick('Ana')
    expect(first.by('my-nick')).to_have_text('Ana')
    first.join('lobby')
    first.send('before the copy')

    # Duplicating a tab copies its sessionStorage as it is: here, into a new tab of the same
    # browser before its page runs.
    copied = first.page.evaluate(READ_SESSION_STORAGE)

    def duplicate(page):
        page.add_init_script(script=f'''
            for (const [key, value] of Object.entries({json.dumps(copied)})) {{
              sessionStorage.setItem(key, value);
            }}''')

    second = open_page(setup=duplicate, beside=first)  # a guest: "Ana" is the first tab's
    second_nick = second.nick()
    expect(second.by('error-line')).to_have_text(
        f'The nick "Ana" is in use elsewhere, so you are {second_nick} in this tab.')

    # The first tab goes on as it was.
    expect(first.by('chat-status')).to_have_attribute('data-state', 'connected')
    expect(first.by('kicked-banner')).to_be_hidden()
    expect(first.by('my-nick')).to_have_text('Ana')
    expect(first.page.get_by_test_id('system-message').filter(
        has_text=re.compile('Connection lost|Disconnected|continued'))).to_have_count(0)
    second.join('lobby')
    for page in (first, second):
        expect(page.member_nicks()).to_have_text(sorted_nicks('Ana', second_nick))
    first.send('still the first tab')
    expect(second.message('still the first tab')).to_have_count(1)
    expect(first.message_texts()).to_have_text(['before the copy', 'still the first tab'])
    assert SESSION_KEY not in copied, 'a live page must not leave its token to be copied'

    # A reload of the first tab still finds its session.
    first.reload(nick='Ana')
    expect(first.by('error-line')).to_have_text('')
    expect(first.by('active-room')).to_have_text('# lobby')
    expect(first.message_texts()).to_have_text(['before the copy', 'still the first tab'])
    for page in (first, second):
        expect(page.member_nicks()).to_have_text(sorted_nicks('Ana', second_nick))
    first.screenshot(output_dir / 'first.png')


def test_a_session_continued_elsewhere_says_so_and_comes_back(open_page, live_server,
                                                               output_dir):
    page = open_page()
    page.allow(r'socket\.io/|favicon\.ico')  # leaving cuts the connection; no icon there
    page.set_nick('Ana')
    expect(page.by('my-nick')).to_have_text('Ana')
    page.join('lobby')

    # The page's token is in sessionStorage only while the page is away (here on another page of
    # the same origin, which can read it).
    page.page.goto(live_server.url + '/healthz')
    stored = page.page.evaluate(f"sessionStorage.getItem('{SESSION_KEY}')")
    assert stored, 'the page must leave its token for the reload'
    token = json.loads(stored)
    page.page.goto(live_server.url + '/')
    page.wait_ready('Ana')

    # The same session connects elsewhere (another window, another device): it takes the nick,
    # and the page says where the chat went, not that it flooded.
    banner = page.by('kicked-banner')
    auth = {'nick': 'Ana', 'session': token}
    with RecordingClient(live_server.url, ['/chat'], auth=auth) as other:
        (greeting,) = other.wait_for('my_response')
        assert greeting['nick'] == 'Ana'
        expect(banner).to_be_visible()
        expect(page.by('moved-text')).to_contain_text(
            'This chat continued in another tab or window.')
        expect(page.by('kicked-text')).to_be_hidden()
        expect(page.by('reconnect-button')).to_have_text('Use it here')
        expect(page.by('chat-status')).to_have_attribute('data-state', 'kicked')
        expect(page.page.get_by_test_id('system-message').filter(
            has_text='This chat continued in another tab or window.')).to_have_count(1)
        page.screenshot(output_dir / 'moved.png')

        # "Use it here" takes it back.
        page.by('reconnect-button').click()
        expect(page.by('chat-status')).to_have_attribute('data-state', 'connected')
        expect(banner).to_be_hidden()
        expect(page.by('my-nick')).to_have_text('Ana')
        expect(page.by('member-list').get_by_test_id('member-nick')).to_have_text(['Ana'])
        other.wait_for('session_moved')
        other.wait_disconnected()
    assert page.page.evaluate(f"sessionStorage.getItem('{SESSION_KEY}')") is None


def test_a_session_token_the_server_no_longer_takes_is_dropped_for_a_new_session(
        open_page, live_server, output_dir):
    # As after SECRET_KEY was rotated: the tab's token was signed with the key before.
    page = open_page()
    page.allow(r'socket\.io/|favicon\.ico')  # leaving cuts the connection; no icon there
    page.page.goto(live_server.url + '/healthz')
    old_token = SessionTokens('the-key-before-rotation').issue()
    page.page.evaluate('([key, value]) => sessionStorage.setItem(key, value)',
                       [SESSION_KEY, json.dumps(old_token)])
    page.page.goto(live_server.url + '/')

    # The server refuses it as invalid_session; the page forgets it and starts a new session.
    page.wait_ready()
    expect(page.page.locator('.toast')).not_to_have_attribute('data-tone', 'error')
    assert live_server.output().count(': invalid_session') == 1
    page.join('lobby')
    page.screenshot(output_dir / 'new-session.png')
    page.page.goto(live_server.url + '/healthz')
    token = json.loads(page.page.evaluate(f"sessionStorage.getItem('{SESSION_KEY}')"))
    assert token != old_token and TOKEN_FORMAT.fullmatch(token)


def test_a_direct_message_whose_ack_is_lost_is_sent_again_and_stored_once(open_page, output_dir):
    alice = open_page()
    frames = {'armed': False, 'sent': {}, 'dropped': [], 'duplicates': []}

    def lose_one_ack(page):
        """Pass Bob's WebSocket through, but drop the first direct_message ack once armed."""
        def connect(websocket):
            server = websocket.connect_to_server()

            def from_page(message):
                emit = CHAT_EMIT.match(message) if isinstance(message, str) else None
                if emit:
                    event, payload = json.loads(emit.group(2))
                    if event == 'direct_message':
                        frames['sent'][emit.group(1)] = payload
                server.send(message)

            def from_server(message):
                ack = CHAT_ACK.match(message) if isinstance(message, str) else None
                if ack and ack.group(1) in frames['sent']:
                    (reply,) = json.loads(ack.group(2))
                    if reply.get('duplicate'):
                        frames['duplicates'].append(reply)
                    if frames['armed']:
                        frames['armed'] = False
                        frames['dropped'].append(reply)
                        return
                websocket.send(message)
            websocket.on_message(from_page)
            server.on_message(from_server)
        page.route_web_socket(SOCKET_IO, connect)

    bob = open_page(setup=lose_one_ack)
    alice_nick, bob_nick = alice.nick(), bob.nick()
    alice.join('lobby')  # she looks at the lobby: Bob's message counts unread
    expect(bob.by('chat-status')).to_have_attribute('data-transport', 'websocket')
    open_direct(bob, alice_nick)

    frames['armed'] = True
    bob.send('said once')
    # Alice has it (stored and delivered), once.
    expect(alice.dm_item(bob_nick).get_by_test_id('dm-unread')).to_have_text('1 unread')
    # Bob never hears back: the message stays grey, and is sent again with the same client_id.
    pending = bob.active_log().get_by_test_id('pending-message')
    expect(pending).to_have_count(1)
    expect(bob.messages()).to_have_count(0)
    expect(pending.get_by_test_id('pending-status')).to_have_text('retrying…', timeout=8_000)
    expect(pending).to_have_count(0, timeout=8_000)
    tries = list(frames['sent'].values())
    assert len(tries) == 2, tries
    assert tries[0]['client_id'] and tries[0] == tries[1]  # the same message, the same client_id
    assert [reply['duplicate'] for reply in frames['dropped']] == [False]  # the first was stored
    assert len(frames['duplicates']) == 1  # and the retry recognised, not stored again
    assert frames['duplicates'][0]['id'] == frames['dropped'][0]['id']

    expect(bob.message('said once').get_by_test_id('message-nick')).to_have_text(bob_nick)
    show(alice, alice.dm_item(bob_nick))
    bob.send('and this too')
    for person in (alice, bob):
        expect(person.message_texts()).to_have_text(['said once', 'and this too'])
    assert alice.message_ids() == bob.message_ids()
    expect(alice.dm_item(bob_nick).get_by_test_id('dm-unread')).to_be_hidden()
    bob.screenshot(output_dir / 'bob.png')
