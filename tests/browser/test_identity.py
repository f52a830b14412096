"""Identity in headless Chromium against the real server: the page tells people apart by the
user id the server gives each session, not by nick. A direct conversation is with a person and
follows them through a change of nick; someone who takes a nick later is someone else (a new
conversation, never "mine"); and a direct message still waiting when its nick changes hands is
refused (recipient_changed), shown as not sent, and reaches nobody.

Pages come from the ``open_page`` fixture, which also fails a test on any console error,
uncaught exception, failed request or request to another host.
"""
import json
import re

import pytest
from playwright.sync_api import expect

from tests.support.sio_client import RecordingClient

pytestmark = pytest.mark.browser

SOCKET_IO = re.compile(r'/socket\.io/')
MINE = re.compile(r'(^|\s)mine(\s|$)')
USER_ID = re.compile(r'^[0-9a-f]{16}$')
NOT_CONNECTED = re.compile(r'^(reconnecting|offline)$')
# A request of the page on /chat, alone in a WebSocket frame or among the packets of a
# long-polling POST (separated by \x1e): 42/chat,<ack id>["event",{...}]
CHAT_REQUEST = re.compile(r'(?:^|\x1e)42/chat,\d+(\[[^\x1e]*\])')
RETRY_WAIT_MS = 15_000  # an unanswered send times out (5 s), waits (2 s) and goes again


def open_direct(page, nick):
    """Open the conversation with ``nick`` through the "Message someone" form."""
    page.by('dm-input').fill(nick)
    page.by('dm-input').press('Enter')
    expect(page.by('active-room')).to_have_text(f'@ {nick}')


def show(item):
    """Show the conversation of a room or direct tab."""
    item.get_by_test_id('dm-select').or_(item.get_by_test_id('room-select')).click()


def rename(page, nick):
    page.set_nick(nick)
    expect(page.by('my-nick')).to_have_text(nick)


def dm_items(page):
    return page.by('dm-list').get_by_test_id('dm-item')


def user_id_of(item):
    """The user id a direct conversation is filed under (its tab's data-user-id)."""
    expect(item).to_have_attribute('data-user-id', USER_ID)
    return item.get_attribute('data-user-id')


def test_a_conversation_follows_its_person_not_the_nick(open_page, output_dir):
    ana, bob, cyd = open_page(), open_page(), open_page()
    ana.allow(SOCKET_IO.pattern)  # leaving the page cuts its connection
    rename(ana, 'Ana')
    rename(bob, 'Bob')
    rename(cyd, 'Cyd')
    # Ana shares a room with Cyd only: nothing tells her of Bob's change of nick but his
    # messages. Cyd's she sees in the room.
    ana.join('lobby')
    cyd.join('lobby')

    open_direct(ana, 'Bob')
    ana.send('hello Bob')
    show(bob.dm_item('Ana'))
    expect(bob.message('hello Bob')).to_have_count(1)
    bob.send('hi Ana')
    expect(ana.message('hi Ana')).to_have_count(1)
    bobs_id = user_id_of(ana.dm_item('Bob'))

    # Bob becomes Robert and writes on: the same conversation, shown under his new nick.
    rename(bob, 'Robert')
    bob.send('I am Robert now')
    expect(ana.message('I am Robert now')).to_have_count(1)
    expect(dm_items(ana)).to_have_count(1)
    expect(ana.dm_item('Robert')).to_have_attribute('data-user-id', bobs_id)
    expect(ana.by('active-room')).to_have_text('@ Robert')
    expect(ana.active_log().get_by_test_id('system-message').filter(
        has_text='is now known as')).to_have_text(re.compile(r'Bob is now known as Robert$'))
    ana.send('hello Robert')
    expect(bob.message('hello Robert')).to_have_count(1)
    expect(dm_items(bob)).to_have_count(1)
    robert_log = ['hello Bob', 'hi Ana', 'I am Robert now', 'hello Robert']
    expect(ana.message_texts()).to_have_text(robert_log)

    # Cyd takes the nick Bob gave up (in the room Ana shares with her). Ana's conversation
    # with Robert is untouched, and a message to "Bob" is a new conversation, with Cyd.
    rename(cyd, 'Bob')
    show(ana.room_item('lobby'))
    expect(ana.page.get_by_test_id('system-message').filter(
        has_text='Cyd is now known as Bob')).to_have_count(1)
    open_direct(ana, 'Bob')
    expect(dm_items(ana)).to_have_count(2)
    expect(ana.messages()).to_have_count(0)
    ana.send('are you Bob?')
    show(cyd.dm_item('Ana'))
    expect(cyd.message('are you Bob?')).to_have_count(1)
    cyd.send('the new one')
    expect(ana.message('the new one')).to_have_count(1)
    cyds_id = user_id_of(ana.dm_item('Bob'))
    assert cyds_id != bobs_id
    expect(ana.message_texts()).to_have_text(['are you Bob?', 'the new one'])
    expect(bob.message_texts()).to_have_text(robert_log)  # nothing of it reached Robert
    show(ana.dm_item('Robert'))
    expect(ana.message_texts()).to_have_text(robert_log)
    ana.screenshot(output_dir / 'ana.png')

    # After a reload the history of both sessions' messages (Bob's under two nicks, Cyd's
    # under his old one) comes back in two conversations, by person.
    ana.reload(nick='Ana')
    expect(dm_items(ana)).to_have_count(2)
    expect(ana.dm_item('Robert')).to_have_attribute('data-user-id', bobs_id)
    expect(ana.dm_item('Bob')).to_have_attribute('data-user-id', cyds_id)
    show(ana.dm_item('Robert'))
    expect(ana.message_texts()).to_have_text(robert_log)
    expect(ana.message('hi Ana').get_by_test_id('message-nick')).to_have_text('Bob')
    expect(ana.message('I am Robert now').get_by_test_id('message-nick')).to_have_text('Robert')
    show(ana.dm_item('Bob'))
    expect(ana.message_texts()).to_have_text(['are you Bob?', 'the new one'])
    expect(ana.by('error-line')).to_have_text('')
    ana.screenshot(output_dir / 'ana-reloaded.png')


def test_a_rename_seen_in_shared_rooms_moves_the_conversation_along(open_page, live_server,
                                                                     output_dir):
    ana, bob = open_page(), open_page()
    rename(ana, 'Ana')
    rename(bob, 'Bob')
    for room in ('lobby', 'side'):  # the rename reaches Ana once per room
        ana.join(room)
        bob.join(room)
    open_direct(ana, 'Bob')
    ana.send('hi Bob')
    expect(bob.dm_item('Ana')).to_have_count(1)
    bobs_id = user_id_of(ana.dm_item('Bob'))

    # Bob becomes Robert: Ana sees it in the rooms, before any message says so.
    rename(bob, 'Robert')
    expect(ana.dm_item('Robert')).to_have_attribute('data-user-id', bobs_id)
    expect(ana.by('active-room')).to_have_text('@ Robert')
    expect(ana.active_log().get_by_test_id('system-message').filter(
        has_text='is now known as')).to_have_count(1)

    # Someone else takes "Bob" and writes to her: a conversation of its own.
    with RecordingClient(live_server.url, ['/chat'], auth={'nick': 'Bob'}) as cyd:
        assert cyd.wait_for('my_response')[0]['nick'] == 'Bob'
        assert cyd.call('direct_message', {'to': 'Ana', 'text': 'I am Bob'})['ok']
        expect(ana.dm_item('Bob')).to_have_count(1)
        expect(dm_items(ana)).to_have_count(2)
        assert user_id_of(ana.dm_item('Bob')) != bobs_id

        # Opening "Robert" finds the conversation with him, and it reaches him.
        open_direct(ana, 'Robert')
        expect(dm_items(ana)).to_have_count(2)
        expect(ana.message_texts()).to_have_text(['hi Bob'])
        ana.send('still you?')
        show(bob.dm_item('Ana'))
        expect(bob.message_texts()).to_have_text(['hi Bob', 'still you?'])
        show(ana.dm_item('Bob'))
        expect(ana.message_texts()).to_have_text(['I am Bob'])
        assert cyd.received('direct_message') == []
    ana.screenshot(output_dir / 'ana.png')


def test_a_conversation_opened_by_a_new_nick_joins_the_one_with_that_person(open_page,
                                                                           output_dir):
    ana, bob = open_page(), open_page()
    rename(ana, 'Ana')
    rename(bob, 'Bob')
    open_direct(ana, 'Bob')
    ana.send('hi Bob')
    show(bob.dm_item('Ana'))
    expect(bob.message('hi Bob')).to_have_count(1)
    bobs_id = user_id_of(ana.dm_item('Bob'))

    # Bob becomes Robert; Ana hears of it elsewhere and opens "Robert": a new tab, until the
    # server's acknowledgement names the person. Then it is the conversation she had with him.
    rename(bob, 'Robert')
    open_direct(ana, 'Robert')
    expect(dm_items(ana)).to_have_count(2)
    ana.send('is this you?')
    expect(dm_items(ana)).to_have_count(1)
    expect(ana.dm_item('Robert')).to_have_attribute('data-user-id', bobs_id)
    expect(ana.by('active-room')).to_have_text('@ Robert')
    expect(ana.message_texts()).to_have_text(['hi Bob', 'is this you?'])
    expect(ana.message('is this you?')).to_have_class(MINE)
    expect(ana.active_log().get_by_test_id('system-message').filter(
        has_text='is now known as')).to_have_text(re.compile(r'Bob is now known as Robert$'))
    expect(bob.message_texts()).to_have_text(['hi Bob', 'is this you?'])
    expect(dm_items(bob)).to_have_count(1)
    expect(ana.by('error-line')).to_have_text('')
    ana.screenshot(output_dir / 'ana.png')


def test_mine_is_by_user_id_across_a_rename_a_reload_and_a_taken_nick(open_page, output_dir):
    ana, bob = open_page(), open_page()
    for page in (ana, bob):
        page.allow(SOCKET_IO.pattern)  # leaving the page cuts its connection
    rename(ana, 'Ann')
    ana.join('lobby')
    bob.join('lobby')
    ana.send('said as Ann')
    expect(ana.message('said as Ann')).to_have_class(MINE)

    # Ana becomes Anna; Bob takes the nick she gave up and writes, in the room and to her.
    rename(ana, 'Anna')
    rename(bob, 'Ann')
    bob.send('said by the new Ann')
    expect(ana.message('said by the new Ann')).not_to_have_class(MINE)
    expect(bob.message('said by the new Ann')).to_have_class(MINE)
    expect(bob.message('said as Ann')).not_to_have_class(MINE)  # his nick now, not his message
    ana.send('said as Anna')
    open_direct(bob, 'Anna')
    bob.send('a word for Anna')
    expect(ana.dm_item('Ann').get_by_test_id('dm-unread')).to_have_text('1 unread')

    # Reloaded, both pages tell the messages apart as before: Ana's under her old nick are
    # hers; Bob's under that same nick are not.
    ana.reload(nick='Anna')
    bob.reload(nick='Ann')
    for page in (ana, bob):
        show(page.room_item('lobby'))
        expect(page.message_texts()).to_have_text(
            ['said as Ann', 'said by the new Ann', 'said as Anna'])
        expect(page.message('said as Ann').get_by_test_id('message-nick')).to_have_text('Ann')
    for text in ('said as Ann', 'said as Anna'):
        expect(ana.message(text)).to_have_class(MINE)
        expect(bob.message(text)).not_to_have_class(MINE)
    expect(ana.message('said by the new Ann')).not_to_have_class(MINE)
    expect(bob.message('said by the new Ann')).to_have_class(MINE)
    show(ana.dm_item('Ann'))
    expect(ana.message('a word for Anna')).not_to_have_class(MINE)
    ana.send('a word back')
    expect(ana.message('a word back')).to_have_class(MINE)
    show(bob.dm_item('Anna'))
    expect(bob.message('a word back')).not_to_have_class(MINE)
    expect(bob.message('a word for Anna')).to_have_class(MINE)
    ana.screenshot(output_dir / 'ana.png')


class DirectTap:
    """Records the page's direct_message sends, in WebSocket frames and long-polling POSTs (a
    reconnect starts on long-polling); once armed, drops the next WebSocket frame that carries
    one on its way to the server (the server never sees it, and the page never hears back)."""

    def __init__(self):
        self.armed = False
        self.sent = []  # the payloads the page sent, dropped ones included
        self.dropped = []

    def install(self, page):
        def connect(websocket):
            server = websocket.connect_to_server()

            def from_page(message):
                sends = self._record(message)
                if sends and self.armed:
                    self.armed = False
                    self.dropped.extend(sends)
                    return
                server.send(message)
            websocket.on_message(from_page)

        def poll(route):
            if route.request.method == 'POST':
                self._record(route.request.post_data)
            route.continue_()

        page.route_web_socket(SOCKET_IO, connect)
        page.route(SOCKET_IO, poll)

    def _record(self, message):
        """The direct_message payloads in ``message``, recorded."""
        if not isinstance(message, str):
            return []
        packets = (json.loads(match.group(1)) for match in CHAT_REQUEST.finditer(message))
        sends = [args[0] for event, *args in packets if event == 'direct_message' and args]
        self.sent.extend(sends)
        return sends


@pytest.mark.parametrize('lost', ['offline', 'request-lost'])
def test_a_waiting_message_is_not_sent_to_whoever_takes_the_nick(open_page, live_server,
                                                                  output_dir, lost):
    tap = DirectTap()
    ana = open_page(setup=tap.install)
    bob = open_page()
    ana.allow(SOCKET_IO.pattern)  # her connection attempts fail while she is offline
    rename(ana, 'Ana')
    rename(bob, 'Bob')
    open_direct(ana, 'Bob')
    ana.send('hello Bob')
    show(bob.dm_item('Ana'))
    expect(bob.message('hello Bob')).to_have_count(1)
    bobs_id = user_id_of(ana.dm_item('Bob'))
    expect(ana.by('chat-status')).to_have_attribute('data-transport', 'websocket')

    # Ana writes again, but the message does not reach the server: she is offline, or it is
    # lost on the way and no acknowledgement comes. It waits, grey.
    pending = ana.active_log().get_by_test_id('pending-message')
    if lost == 'offline':
        ana.page.context.set_offline(True)
        expect(ana.by('chat-status')).to_have_attribute('data-state', NOT_CONNECTED)
    else:
        tap.armed = True
    ana.send('are you still Bob?')
    expect(pending).to_have_count(1)

    # Meanwhile Bob becomes Robert and someone else takes "Bob".
    rename(bob, 'Robert')
    with RecordingClient(live_server.url, ['/chat'], auth={'nick': 'Bob'}) as cyd:
        assert cyd.wait_for('my_response')[0]['nick'] == 'Bob'
        if lost == 'offline':
            ana.page.context.set_offline(False)
            expect(ana.by('chat-status')).to_have_attribute('data-state', 'connected',
                                                             timeout=12_000)
        else:
            expect(pending.get_by_test_id('pending-status')).to_have_text('retrying…',
                                                                          timeout=8_000)

        # Sent again, for Bob's user id: the server refuses it, the page says so and keeps it.
        unsent = ana.active_log().get_by_test_id('unsent-message')
        expect(unsent).to_have_count(1, timeout=RETRY_WAIT_MS)
        expect(pending).to_have_count(0)
        expect(unsent.get_by_test_id('message-text')).to_have_text('are you still Bob?')
        expect(unsent.get_by_test_id('unsent-status')).to_have_text('not sent')
        expect(ana.active_log().get_by_test_id('system-message').last).to_have_text(
            re.compile(r'Bob is now someone else; not sent$'))
        expect(ana.by('error-line')).to_have_text('Bob is now someone else; not sent')
        expect(ana.message_texts()).to_have_text(['hello Bob'])
        ana.screenshot(output_dir / 'ana-not-sent.png')

        tries = [payload for payload in tap.sent if payload['text'] == 'are you still Bob?']
        assert tries and all(payload == {**tries[0], 'to': 'Bob', 'to_id': bobs_id}
                             for payload in tries), tries
        assert tries[0]['client_id']
        if lost == 'request-lost':
            assert len(tries) == 2 and tap.dropped == tries[:1], tries

        # Bob writes from his new nick: the same conversation, and it reaches him again.
        bob.send('I am Robert now')
        expect(ana.message('I am Robert now')).to_have_count(1)
        expect(dm_items(ana)).to_have_count(1)
        expect(ana.dm_item('Robert')).to_have_attribute('data-user-id', bobs_id)
        ana.send('hello Robert')
        expect(bob.message('hello Robert')).to_have_count(1)
        expect(bob.message_texts()).to_have_text(['hello Bob', 'I am Robert now', 'hello Robert'])
        expect(ana.message_texts()).to_have_text(['hello Bob', 'I am Robert now', 'hello Robert'])
        expect(unsent).to_have_count(1)
        ana.screenshot(output_dir / 'ana.png')

        # The new Bob received nothing of it.
        assert cyd.received('direct_message') == []
