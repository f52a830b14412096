"""Resuming without holes, in headless Chromium against the real server: the page keeps, per
room, the highest id up to which it holds every message (its cursor), resumes from it after a
connection drops in the middle of a catch-up or after a reload, and fetches any message that a
later one shows it is missing (a live delivery lost on the way).

Pages come from the ``open_page`` fixture, which also fails a test on any console error,
uncaught exception, failed request or request to another host.
"""
import json
import re
import threading

import pytest
from playwright.sync_api import expect

from tests.support.sio_client import RecordingClient

pytestmark = pytest.mark.browser

SOCKET_IO = re.compile(r'/socket\.io/')
NOT_CONNECTED = re.compile(r'^(reconnecting|offline)$')
FAST_SENDERS = {'RATE_LIMIT_PER_SECOND': '500', 'RATE_LIMIT_BURST': '500'}
# A request of the page on /chat, alone in a WebSocket frame or among the packets of a
# long-polling POST (separated by \x1e): 42/chat,<ack id>["event",{...}]
CHAT_REQUEST = re.compile(r'(?:^|\x1e)42/chat,\d+(\[[^\x1e]*\])')
# An event the server pushes on /chat, in a WebSocket frame: 42/chat,["chat_message",{...}]
CHAT_EVENT = re.compile(r'^42/chat,(\[.*\])$', re.DOTALL)
MISSED = 205  # more than one history page (200) while the page is offline; the log keeps 500
CATCH_UP_WAIT_MS = 15_000  # a reconnect waits up to a few seconds before trying


class SocketTap:
    """Passes the page's Socket.IO traffic through the test, WebSocket frames and long-polling
    POSTs alike, and lets a test interfere with it:

    - ``hold_next_history()``: the page's next history request is held, not sent, until
      ``release()`` sends it on or ``discard()`` throws it away (a connection lost meanwhile);
    - ``drop_delivery(message_id)``: the server's ``chat_message`` event with that id is not
      passed to the page (a live delivery lost on the way); only over WebSocket;
    - ``requests``: the join and history requests the page sent, as (event, payload).
    """

    def __init__(self):
        self.hold_armed = False
        self.held = []  # (send it on, throw it away)
        self.drop_ids = set()
        self.dropped = []
        self.requests = []
        self.lock = threading.Lock()

    def install(self, page):
        page.route_web_socket(SOCKET_IO, self._connect)
        page.route(SOCKET_IO, self._poll)

    def hold_next_history(self):
        self.hold_armed = True

    def drop_delivery(self, message_id):
        self.drop_ids.add(message_id)

    def wait_held(self, page, timeout_ms=CATCH_UP_WAIT_MS):
        for _ in range(timeout_ms // 50):
            if self.held:
                return
            page.wait_for_timeout(50)
        raise AssertionError(f'no history request was made; the page asked {self.requests}')

    def release(self):
        for send_on, _ in self._take_held():
            send_on()

    def discard(self):
        for _, throw_away in self._take_held():
            throw_away()

    def _take_held(self):
        with self.lock:
            held, self.held = self.held, []
        return held

    def history_requests(self):
        return [payload for event, payload in self.requests if event == 'history']

    def _holds(self, message):
        """Record the requests in ``message``; whether it holds the history request to hold."""
        if not isinstance(message, str):
            return False
        requests = [event_of(match.group(1)) for match in CHAT_REQUEST.finditer(message)]
        self.requests.extend((event, payload) for event, payload in requests
                             if event in ('join', 'history'))
        if self.hold_armed and any(event == 'history' for event, _ in requests):
            self.hold_armed = False
            return True
        return False

    def _connect(self, websocket):
        server = websocket.connect_to_server()

        def from_page(message):
            if self._holds(message):
                with self.lock:
                    self.held.append((lambda: server.send(message), lambda: None))
                return
            server.send(message)

        def from_server(message):
            if self._dropped(message):
                return
            websocket.send(message)

        websocket.on_message(from_page)
        server.on_message(from_server)

    def _dropped(self, message):
        event = CHAT_EVENT.match(message) if isinstance(message, str) else None
        if not event:
            return False
        name, payload = event_of(event.group(1))
        if name == 'chat_message' and payload.get('id') in self.drop_ids:
            self.drop_ids.discard(payload['id'])
            self.dropped.append(payload['id'])
            return True
        return False

    def _poll(self, route):
        request = route.request
        if request.method == 'POST' and self._holds(request.post_data):
            with self.lock:
                self.held.append((route.continue_, route.abort))
            return
        route.continue_()


def event_of(packet_data):
    """The event name and first argument (or None) of a Socket.IO event's JSON array."""
    name, *args = json.loads(packet_data)
    return name, args[0] if args else None


class Sender(threading.Thread):
    """Posts messages to a room from a python-socketio client as fast as it is answered."""

    def __init__(self, client, room, texts):
        super().__init__(daemon=True)
        self.client, self.room, self.texts = client, room, texts
        self.ids = []
        self.error = None

    def run(self):
        try:
            for text in self.texts:
                reply = self.client.call('room_message', {'room': self.room, 'text': text})
                assert reply['ok'], reply
                self.ids.append(reply['id'])
        except Exception as error:  # noqa: BLE001 - reported by finish()
            self.error = error

    def wait_sent(self, count, page, timeout_ms=10_000):
        """Wait until ``count`` messages have been stored."""
        for _ in range(timeout_ms // 20):
            if len(self.ids) >= count or self.error or not self.is_alive():
                return
            page.wait_for_timeout(20)
        raise AssertionError(f'only {len(self.ids)} of {count} messages sent')

    def finish(self, timeout=20):
        self.join(timeout)
        assert not self.is_alive(), 'the sender did not finish'
        if self.error:
            raise self.error
        return self.ids


def post(client, room, texts):
    """Post messages one after another; return their ids."""
    ids = []
    for text in texts:
        reply = client.call('room_message', {'room': room, 'text': text})
        assert reply['ok'], reply
        ids.append(reply['id'])
    return ids


def wait_until(condition, page, timeout_ms=5_000):
    """Wait, at most ``timeout_ms``, until ``condition()`` holds (the page's events go on)."""
    for _ in range(timeout_ms // 20):
        if condition():
            return
        page.wait_for_timeout(20)
    raise AssertionError('still not so after the timeout')


def go_offline(page):
    page.page.context.set_offline(True)
    expect(page.by('chat-status')).to_have_attribute('data-state', NOT_CONNECTED)


def assert_every_message_once(page, count):
    """The active room shows messages 1..count, each once, in id order."""
    expect(page.messages()).to_have_count(count, timeout=CATCH_UP_WAIT_MS)
    ids = page.message_ids()
    assert len(set(ids)) == len(ids), 'a message is shown twice'
    assert ids == list(range(1, count + 1))


@pytest.mark.parametrize('server_env', [FAST_SENDERS], ids=['fast-senders'])
def test_a_drop_during_a_catch_up_resumes_from_the_cursor_while_someone_sends_fast(
        open_page, live_server, output_dir):
    tap = SocketTap()
    bob = open_page(setup=tap.install)
    bob.allow(r'socket\.io/')  # his connection attempts fail while he is offline
    bob.join('lobby')
    with RecordingClient(live_server.url, ['/chat']) as poster:
        assert poster.call('join', {'room': 'lobby'})['ok']
        post(poster, 'lobby', ['seen'])
        expect(bob.message('seen')).to_have_count(1)

        # Offline, Bob misses more than one history page.
        go_offline(bob)
        missed = [f'missed {n}' for n in range(1, MISSED + 1)]
        post(poster, 'lobby', missed)

        # Back online, he catches up: the join brings the first page, and the second one is
        # held while someone sends fast. Those live messages are newer than the ones still to
        # fetch.
        tap.hold_next_history()
        bob.page.context.set_offline(False)
        tap.wait_held(bob.page)
        burst = Sender(poster, 'lobby', [f'burst {n}' for n in range(1, 201)])
        burst.start()
        expect(bob.message('burst 20')).to_have_count(1)
        assert bob.message(missed[-1]).count() == 0  # the rest of the catch-up is held

        # The connection drops before the second page comes; the burst goes on. The next
        # catch-up must start after the last message he holds every one up to, not after the
        # newest one shown. It is more than a page again, and someone sends all through it.
        go_offline(bob)
        tap.discard()
        burst.finish()
        tap.hold_next_history()
        bob.page.context.set_offline(False)
        tap.wait_held(bob.page)
        assert [payload for event, payload in tap.requests if event == 'join'][-1] == {
            'room': 'lobby', 'since_id': 201}  # first catch-up page: 2..201
        more = Sender(poster, 'lobby', [f'more {n}' for n in range(1, 61)])
        more.start()
        more.wait_sent(10, bob.page)
        tap.release()
        more.finish()

        everything = ['seen', *missed, *burst.texts, *more.texts]
        assert_every_message_once(bob, len(everything))
        expect(bob.message_texts()).to_have_text(everything)
        expect(bob.by('error-line')).to_have_text('')
        bob.screenshot(output_dir / 'bob.png')


@pytest.mark.parametrize('server_env', [FAST_SENDERS], ids=['fast-senders'])
def test_a_lost_live_message_is_fetched_once_a_later_one_shows_the_hole(open_page, live_server,
                                                                       output_dir):
    tap = SocketTap()
    bob = open_page(setup=tap.install)
    bob.join('lobby')
    expect(bob.by('chat-status')).to_have_attribute('data-transport', 'websocket')
    with RecordingClient(live_server.url, ['/chat']) as poster:
        assert poster.call('join', {'room': 'lobby'})['ok']
        post(poster, 'lobby', ['one'])
        expect(bob.message('one')).to_have_count(1)

        # The delivery of message 2 is lost between the server and the page: nothing shows it
        # until message 3 arrives, which shows that 2 is missing.
        tap.drop_delivery(2)
        post(poster, 'lobby', ['two'])
        wait_until(lambda: tap.dropped == [2], bob.page)
        expect(bob.message('two')).to_have_count(0)
        post(poster, 'lobby', ['three'])

        expect(bob.message_texts()).to_have_text(['one', 'two', 'three'])
        assert_every_message_once(bob, 3)
        assert {'room': 'lobby', 'since_id': 1, 'limit': 200} in tap.history_requests()
        bob.screenshot(output_dir / 'bob.png')


@pytest.mark.parametrize('server_env', [FAST_SENDERS], ids=['fast-senders'])
def test_a_reload_with_a_hole_open_resumes_from_before_the_hole(open_page, live_server,
                                                                output_dir):
    tap = SocketTap()
    bob = open_page(setup=tap.install)
    bob.allow(r'socket\.io/')  # leaving the page cuts its connection
    bob_nick = bob.nick()
    bob.join('lobby')
    expect(bob.by('chat-status')).to_have_attribute('data-transport', 'websocket')
    with RecordingClient(live_server.url, ['/chat']) as poster:
        assert poster.call('join', {'room': 'lobby'})['ok']
        post(poster, 'lobby', ['one'])
        expect(bob.message('one')).to_have_count(1)

        # Message 2 is lost on the way, and so is the history request that would fetch it;
        # more than a reload's worth of context (50) follows.
        tap.drop_delivery(2)
        tap.hold_next_history()
        later = [f'later {n}' for n in range(1, 61)]
        post(poster, 'lobby', ['two', *later])
        expect(bob.message(later[-1])).to_have_count(1)
        tap.wait_held(bob.page)
        assert tap.dropped == [2]
        expect(bob.message('two')).to_have_count(0)

        # Reloaded, the page joins again from before the hole, so message 2 comes too.
        tap.discard()
        bob.reload(nick=bob_nick)
        expect(bob.by('active-room')).to_have_text('# lobby')
        expect(bob.message_texts()).to_have_text(['one', 'two', *later])
        assert_every_message_once(bob, 2 + len(later))
        bob.screenshot(output_dir / 'bob.png')
