"""Chat features in headless Chromium against the real server: resuming after a dropped
connection, nicks, typing, direct messages, history, closing rooms and the flood limit.

Pages come from the ``open_page`` fixture, which also fails a test on any console error,
uncaught exception, failed request or request to another host.
"""
import re
import time

import pytest
from playwright.sync_api import expect

from tests.support.sio_client import RecordingClient

pytestmark = pytest.mark.browser

NOT_CONNECTED = re.compile(r'^(reconnecting|offline)$')
TYPING_TIMEOUT_S = 5.0  # the server's default TYPING_TIMEOUT
FAST_SENDERS = {'RATE_LIMIT_PER_SECOND': '500', 'RATE_LIMIT_BURST': '500'}
FLOOD_LIMITS = {'RATE_LIMIT_PER_SECOND': '1', 'RATE_LIMIT_BURST': '4', 'FLOOD_STRIKES': '2'}
MISSED_POSTS = 230  # more than one page (200) of history
# A Socket.IO ack on /chat for a room_message: 43/chat,<ack id>[{...,"duplicate":...}]
ROOM_MESSAGE_ACK = re.compile(r'^43/chat,\d+\[\{.*"duplicate":\s*(true|false)')


def sorted_nicks(*nicks):
    """Nicks in the order the server lists members: ignoring case."""
    return sorted(nicks, key=str.casefold)


def click_close_room(page):
    """Close the active room: the button asks for a second click."""
    button = page.by('close-room')
    button.click()
    expect(button).to_have_attribute('data-state', 'confirm')
    expect(button).to_have_text('Click again to close')
    button.click()


@pytest.mark.parametrize('server_env', [FAST_SENDERS], ids=['fast-senders'])
def test_missed_messages_arrive_once_in_order_after_going_offline(open_page, live_server,
                                                                  output_dir):
    alice, bob = open_page(), open_page()
    bob.allow(r'socket\.io/')  # his reconnection attempts fail while he is offline
    alice_nick, bob_nick = alice.nick(), bob.nick()
    alice.join('lobby')
    bob.join('lobby')
    alice.send('before the outage')
    expect(bob.message('before the outage')).to_have_count(1)

    # Offline emulation makes the client drop its WebSocket at once: the page says so, and the
    # server sees him go.
    bob.page.context.set_offline(True)
    expect(bob.by('chat-status')).to_have_attribute('data-state', NOT_CONNECTED)
    expect(bob.by('ticker-status')).to_have_attribute('data-state', NOT_CONNECTED)
    expect(alice.member_nicks()).to_have_text([alice_nick])

    # Alice writes a few; someone else more than the server's largest page (200), so that Bob
    # can only get them all by asking for what follows the last message he saw, page by page.
    typed = [f'missed {n}' for n in range(1, 6)]
    for text in typed:
        alice.send(text)
        expect(alice.message(text)).to_have_count(1)
    posted = [f'posted {n}' for n in range(1, MISSED_POSTS + 1)]
    with RecordingClient(live_server.url, ['/chat']) as poster:
        assert poster.call('join', {'room': 'lobby'})['ok']
        for text in posted:
            assert poster.call('room_message', {'room': 'lobby', 'text': text})['ok']
    # What Bob writes meanwhile waits in his outbox, greyed.
    bob.send('written while offline')
    pending = bob.active_log().get_by_test_id('pending-message')
    expect(pending).to_have_count(1)
    expect(pending.get_by_test_id('pending-status')).to_have_text('waiting for the connection…')
    expect(bob.message('missed 1')).to_have_count(0)  # really cut off
    bob.screenshot(output_dir / 'bob-offline.png')

    # Back online: he reconnects by himself under the same nick, and catches up.
    bob.page.context.set_offline(False)
    expect(bob.by('chat-status')).to_have_attribute('data-state', 'connected', timeout=12_000)
    expect(bob.by('my-nick')).to_have_text(bob_nick)
    expect(bob.by('error-line')).to_have_text('')  # given at once, not taken back later
    expect(alice.member_nicks()).to_have_text(sorted_nicks(alice_nick, bob_nick))
    expect(bob.member_nicks()).to_have_text(sorted_nicks(alice_nick, bob_nick))
    everything = ['before the outage', *typed, *posted, 'written while offline']
    expect(bob.message_texts()).to_have_text(everything)
    expect(alice.message_texts()).to_have_text(everything)
    expect(pending).to_have_count(0)
    ids = bob.message_ids()
    assert ids == list(range(ids[0], ids[0] + len(everything))), ids  # each once, no gaps
    assert alice.message_ids() == ids
    expect(bob.message('written while offline').get_by_test_id('message-nick')).to_have_text(
        bob_nick)
    expect(bob.page.get_by_test_id('system-message').filter(has_text='Reconnected')).to_have_text(
        re.compile(f'Reconnected: {len(typed) + len(posted)} new messages while you were away'))
    bob.screenshot(output_dir / 'bob-resumed.png')


def test_a_message_whose_ack_is_lost_is_sent_again_and_stored_once(open_page, output_dir):
    alice = open_page()
    frames = {'armed': False, 'dropped': [], 'duplicates': []}

    def lose_one_ack(page):
        """Pass Bob's WebSocket through, but drop the first room_message ack once armed."""
        def connect(websocket):
            server = websocket.connect_to_server()

            def from_server(message):
                ack = ROOM_MESSAGE_ACK.match(message) if isinstance(message, str) else None
                if ack and ack.group(1) == 'true':
                    frames['duplicates'].append(message)
                if ack and frames['armed']:
                    frames['armed'] = False
                    frames['dropped'].append(ack.group(1))
                    return
                websocket.send(message)
            server.on_message(from_server)
        page.route_web_socket(re.compile(r'/socket\.io/'), connect)

    bob = open_page(setup=lose_one_ack)
    bob_nick = bob.nick()
    alice.join('lobby')
    bob.join('lobby')
    expect(bob.by('chat-status')).to_have_attribute('data-transport', 'websocket')

    frames['armed'] = True
    bob.send('said once')
    expect(alice.message('said once')).to_have_count(1)  # stored and delivered
    # Bob never hears back: the message stays grey, and is sent again (same client_id).
    pending = bob.active_log().get_by_test_id('pending-message')
    expect(pending).to_have_count(1)
    expect(bob.message('said once')).to_have_count(0)
    expect(pending.get_by_test_id('pending-status')).to_have_text('retrying…', timeout=8_000)
    expect(pending).to_have_count(0, timeout=8_000)
    assert frames['dropped'] == ['false']  # the first try was stored...
    assert len(frames['duplicates']) == 1  # ...and the retry recognised, not stored again

    expect(bob.message('said once').get_by_test_id('message-nick')).to_have_text(bob_nick)
    bob.send('and this too')
    for person in (alice, bob):
        expect(person.message_texts()).to_have_text(['said once', 'and this too'])
    assert alice.message_ids() == bob.message_ids()


def test_nick_change_is_announced_refused_when_taken_and_kept_on_reload(open_page, output_dir):
    ana, bob = open_page(), open_page()
    guest, bob_nick = ana.nick(), bob.nick()
    ana.join('lobby')
    bob.join('lobby')

    ana.set_nick('Ana')
    expect(ana.by('my-nick')).to_have_text('Ana')
    expect(ana.by('nick-form')).to_be_hidden()
    for person in (ana, bob):
        expect(person.member_nicks()).to_have_text(sorted_nicks('Ana', bob_nick))
    rename = bob.page.get_by_test_id('system-message').filter(has_text='is now known as')
    expect(rename).to_have_count(1)
    expect(rename).to_contain_text(f'{guest} is now known as Ana')
    expect(ana.member_nicks().filter(has_text='Ana').locator('..')).to_contain_text('you')

    # Nicks are unique ignoring case: the form stays open with the server's reason.
    bob.set_nick('aNA')
    expect(bob.by('error-line')).to_contain_text('the nick "aNA" is taken')
    expect(bob.by('nick-form')).to_be_visible()
    expect(bob.by('my-nick')).to_have_text(bob_nick)
    bob.by('nick-cancel').click()
    expect(bob.by('nick-form')).to_be_hidden()
    expect(bob.member_nicks()).to_have_text(sorted_nicks('Ana', bob_nick))

    # A reload keeps the nick: it is saved in localStorage and asked for on connect.
    assert ana.page.evaluate("localStorage.getItem('relay.nick')") == 'Ana'
    ana.reload(nick='Ana')
    expect(ana.by('error-line')).to_have_text('')  # given at once, not taken back later
    ana.join('lobby')
    expect(bob.member_nicks()).to_have_text(sorted_nicks('Ana', bob_nick))
    ana.screenshot(output_dir / 'ana.png')


def test_typing_indicator_shows_who_types_and_clears(open_page, output_dir):
    ana, bob, cid = open_page(), open_page(), open_page()
    ana_nick, bob_nick = ana.nick(), bob.nick()
    for person in (ana, bob, cid):
        person.join('lobby')
    for person in (ana, bob, cid):
        expect(person.member_nicks()).to_have_count(3)

    indicator = bob.by('typing-indicator')
    expect(indicator).to_have_text('')
    ana.by('message-input').press_sequentially('hello there', delay=20)
    expect(indicator).to_have_text(f'{ana_nick} is typing…')
    expect(cid.by('typing-indicator')).to_have_text(f'{ana_nick} is typing…')
    expect(ana.by('typing-indicator')).to_have_text('')  # not about yourself

    # Two people typing; one empties the box: he stops typing.
    bob.by('message-input').press_sequentially('hm', delay=20)
    expect(cid.by('typing-indicator')).to_have_text(f'{ana_nick} and {bob_nick} are typing…')
    cid.screenshot(output_dir / 'cid-two-typing.png')
    bob.by('message-input').press('Backspace')
    bob.by('message-input').press('Backspace')
    expect(cid.by('typing-indicator')).to_have_text(f'{ana_nick} is typing…')

    # Sending the message ends it.
    ana.by('message-input').press('Enter')
    expect(bob.message('hello there')).to_have_count(1)
    expect(indicator).to_have_text('')
    expect(cid.by('typing-indicator')).to_have_text('')

    # Typing, then stopping without sending: the flag expires on the server by itself.
    ana.by('message-input').press_sequentially('let me think', delay=20)
    expect(indicator).to_have_text(f'{ana_nick} is typing…')
    started = time.monotonic()
    expect(indicator).to_have_text('', timeout=int((TYPING_TIMEOUT_S + 3) * 1000))
    waited = time.monotonic() - started
    assert waited > TYPING_TIMEOUT_S - 2, f'cleared after {waited:.1f} s: not by expiry'
    expect(ana.by('message-input')).to_have_value('let me think')


def test_direct_messages_between_two_people(open_page, output_dir):
    ana, bob = open_page(), open_page()
    ana_nick, bob_nick = ana.nick(), bob.nick()
    ana.join('lobby')
    bob.join('lobby')
    expect(ana.member_nicks()).to_have_count(2)

    # Ana opens the conversation from the member list (her own entry is not a button).
    expect(ana.by('member-list').get_by_test_id('member-open')).to_have_count(1)
    ana.by('member-list').get_by_test_id('member-open').filter(has_text=bob_nick).click()
    expect(ana.dm_item(bob_nick)).to_be_visible()
    expect(ana.by('active-room')).to_have_text(f'@ {bob_nick}')
    expect(ana.by('close-room')).to_be_hidden()
    ana.send('psst, Bob')
    expect(ana.message('psst, Bob')).to_have_count(1)

    # Bob gets a conversation with her, unread while he looks at the lobby.
    unread = bob.dm_item(ana_nick).get_by_test_id('dm-unread')
    expect(unread).to_have_text('1 unread')
    expect(bob.by('active-room')).to_have_text('# lobby')
    expect(bob.message('psst, Bob')).to_have_count(0)
    bob.screenshot(output_dir / 'bob-unread.png')
    bob.dm_item(ana_nick).get_by_test_id('dm-select').click()
    expect(bob.by('active-room')).to_have_text(f'@ {ana_nick}')
    expect(bob.message('psst, Bob').get_by_test_id('message-nick')).to_have_text(ana_nick)
    expect(unread).to_be_hidden()

    bob.send('hi Ana')
    expect(ana.message('hi Ana').get_by_test_id('message-nick')).to_have_text(bob_nick)
    for person in (ana, bob):
        expect(person.message_texts()).to_have_text(['psst, Bob', 'hi Ana'])
    # Nothing of it went to the room.
    ana.room_item('lobby').get_by_test_id('room-select').click()
    expect(ana.messages()).to_have_count(0)
    ana.screenshot(output_dir / 'ana.png')

    # Someone not connected: the conversation opens, the message is refused and given back.
    ana.by('dm-input').fill('nobody-here')
    ana.by('dm-input').press('Enter')
    expect(ana.by('active-room')).to_have_text('@ nobody-here')
    ana.send('anyone there?')
    expect(ana.by('error-line')).to_contain_text('nobody is connected as "nobody-here"')
    expect(ana.by('message-input')).to_have_value('anyone there?')
    expect(ana.active_log().get_by_test_id('pending-message')).to_have_count(0)
    expect(ana.messages()).to_have_count(0)


@pytest.mark.parametrize('server_env', [FAST_SENDERS], ids=['fast-senders'])
def test_history_on_join_and_load_older(open_page, live_server, output_dir):
    ana = open_page()
    ana.join('lobby')
    for text in ('one', 'two', 'three'):
        ana.send(text)
        expect(ana.message(text)).to_have_count(1)

    bob = open_page()
    bob.join('lobby')
    expect(bob.message_texts()).to_have_text(['one', 'two', 'three'])
    expect(bob.active_log().get_by_test_id('load-older')).to_be_hidden()

    # 55 messages in another room: a join shows the last 50, and older ones on request.
    with RecordingClient(live_server.url, ['/chat']) as poster:
        assert poster.call('join', {'room': 'archive'})['ok']
        for n in range(1, 56):
            reply = poster.call('room_message', {'room': 'archive', 'text': f'archived {n}'})
            assert reply['ok'], reply
    bob.join('archive')
    expect(bob.messages()).to_have_count(50)
    expect(bob.message_texts().first).to_have_text('archived 6')
    load_older = bob.active_log().get_by_test_id('load-older')
    expect(load_older).to_be_visible()
    bob.screenshot(output_dir / 'bob-before.png')
    load_older.click()
    expect(bob.messages()).to_have_count(55)
    expect(load_older).to_be_hidden()
    expect(bob.message_texts()).to_have_text([f'archived {n}' for n in range(1, 56)])
    assert bob.message_ids() == list(range(1, 56))
    bob.screenshot(output_dir / 'bob-after.png')


def test_longest_standing_member_closes_a_room(open_page, output_dir):
    ana, bob = open_page(), open_page()
    ana_nick = ana.nick()
    for person in (ana, bob):
        person.join('lobby')
    ana.join('attic')
    bob.join('attic')
    expect(bob.member_nicks()).to_have_count(2)

    # Bob came later: he is not offered the button (the server would refuse him).
    expect(bob.by('active-room')).to_have_text('# attic')
    expect(bob.by('close-room')).to_be_hidden()
    expect(ana.by('close-room')).to_be_visible()

    # Ana may: the room goes from both pages, and Bob is told.
    click_close_room(ana)
    for person in (ana, bob):
        expect(person.room_item('attic')).to_have_count(0)
        expect(person.room_item('lobby')).to_have_count(1)
        expect(person.by('active-room')).to_have_text('# lobby')
    expect(bob.by('error-line')).to_have_text(
        f'#attic was closed by {ana_nick}. You are no longer in it.')
    expect(ana.by('error-line')).to_have_text('You closed #attic.')
    bob.screenshot(output_dir / 'bob.png')

    # The lobby is still shared.
    ana.send('still here')
    expect(bob.message('still here')).to_have_count(1)


@pytest.mark.parametrize('server_env', [FLOOD_LIMITS], ids=['tight-limits'])
def test_flooding_is_refused_then_disconnected_and_reconnect_sends_the_rest(open_page, output_dir):
    ana, bob = open_page(), open_page()
    ana_nick = ana.nick()
    ana.join('lobby')
    bob.join('lobby')

    texts = [f'flood {n}' for n in range(1, 9)]  # each send is ~3 events with typing
    for text in texts:
        ana.send(text)
    banner = ana.by('kicked-banner')
    expect(banner).to_be_visible(timeout=8_000)
    expect(ana.by('chat-status')).to_have_attribute('data-state', 'kicked')
    expect(ana.by('chat-status')).to_contain_text('disconnected by the server')
    expect(ana.by('ticker-status')).to_have_attribute('data-state', 'connected')  # only /chat
    expect(ana.active_log().get_by_test_id('pending-message').first).to_be_visible()
    ana.screenshot(output_dir / 'ana-kicked.png')

    # Nothing reconnects by itself; the button does, and the outbox sends the rest, once each.
    expect(bob.member_nicks()).to_have_count(1)
    ana.by('reconnect-button').click()
    expect(ana.by('chat-status')).to_have_attribute('data-state', 'connected')
    expect(banner).to_be_hidden()
    expect(ana.by('my-nick')).to_have_text(ana_nick)
    expect(bob.message_texts()).to_have_text(texts, timeout=15_000)
    expect(ana.message_texts()).to_have_text(texts)
    expect(ana.active_log().get_by_test_id('pending-message')).to_have_count(0)
