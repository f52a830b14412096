"""A python-socketio chat client that follows the README's resume rule, as any client should.

It reconnects by itself, presents its session token to take its nick back, joins its rooms
again from its cursor (the highest id up to which it holds every message), fetches every gap
that a message reveals with ``history``, drops duplicates by id, and hands the application
each room's messages exactly once and in id order (``delivered``).
"""
import threading
import time

import requests
import socketio

NAMESPACE = '/chat'
PAGE = 200
WAIT_S = 15.0  # a reply slowed by a busy server (a flood of sends) is still a reply


class RoomLog:
    """One room's messages as received, and the ones delivered in order so far."""

    def __init__(self):
        self.cursor = 0  # every message with an id up to this one has been delivered
        self.waiting = {}  # id -> message, received beyond a gap
        self.delivered = []

    def add(self, message):
        """Take a message received live or in a page; return whether a gap lies before it."""
        if message['id'] > self.cursor:
            self.waiting[message['id']] = message
        while self.cursor + 1 in self.waiting:
            self.cursor += 1
            self.delivered.append(self.waiting.pop(self.cursor))
        return bool(self.waiting)


class ResumingChatClient:
    """Joins rooms, and after every reconnect rejoins them and catches up without gaps."""

    def __init__(self, url, nick, transports=('websocket',)):
        self.url = url
        self.nick = nick
        self.session = None
        self.transports = list(transports)
        self.rooms = {}
        self.connects = 0
        self.connected_at = []  # time.monotonic() of each connect
        self.rejoins = 0  # reconnects after which every room was joined again
        self.disconnect_reasons = []
        self.live = []  # every chat_message as it arrived, before the resume rule's sorting
        self.room_infos = []  # every room_info, in the order received
        self.join_members = []  # (room, members) of every join acknowledgement
        self._changed = threading.Condition()
        self._catching_up = {}  # room -> a lock held while its gap is being fetched
        self._fill_wanted = set()  # rooms whose fetch should make one more pass
        self.http = requests.Session()  # closed here: see sio_client.RecordingClient
        self.sio = socketio.Client(reconnection=True, reconnection_delay=0.2,
                                   reconnection_delay_max=1.0, http_session=self.http)
        self.sio.on('connect', self._on_connect, namespace=NAMESPACE)
        self.sio.on('disconnect', self._on_disconnect, namespace=NAMESPACE)
        self.sio.on('my_response', self._on_greeting, namespace=NAMESPACE)
        self.sio.on('chat_message', self._on_message, namespace=NAMESPACE)
        self.sio.on('room_info', self._on_room_info, namespace=NAMESPACE)

    def connect(self):
        """Connect (the auth is read afresh at every reconnect) and wait for the greeting."""
        self.sio.connect(self.url, namespaces=[NAMESPACE], transports=self.transports,
                         auth=lambda: {'nick': self.nick, 'session': self.session},
                         wait_timeout=WAIT_S)
        self.wait(lambda: self.session is not None, 'no greeting')
        return self

    def join(self, room):
        """Join a room for good: it is joined again after every reconnect."""
        self.rooms.setdefault(room, RoomLog())
        self._catching_up.setdefault(room, threading.Lock())
        if self._rejoin(room):
            self._fill_gap(room)

    def send(self, room, text, client_id=None):
        """Send a room message and return its acknowledgement."""
        payload = {'room': room, 'text': text}
        if client_id is not None:
            payload['client_id'] = client_id
        return self.sio.call('room_message', payload, namespace=NAMESPACE, timeout=WAIT_S)

    def call(self, event, data):
        """Send any /chat event and return its acknowledgement."""
        return self.sio.call(event, data, namespace=NAMESPACE, timeout=WAIT_S)

    def delivered(self, room):
        """Return the room's messages handed on so far, in order."""
        with self._changed:
            return list(self.rooms[room].delivered)

    def wait(self, condition, what, timeout=20.0):
        """Wait until ``condition()`` holds, at most ``timeout`` seconds."""
        with self._changed:
            if not self._changed.wait_for(condition, timeout):
                raise AssertionError(f'{what} within {timeout}s')

    def wait_delivered(self, room, count, timeout=20.0):
        """Wait until ``count`` messages of the room have been handed on; return them."""
        self.wait(lambda: len(self.rooms[room].delivered) >= count,
                  f'{count} messages not delivered in {room}', timeout)
        return self.delivered(room)

    def close(self):
        """Disconnect for good."""
        self.sio.disconnect()
        self.http.close()

    # ---- events ------------------------------------------------------------------------

    def _on_connect(self):
        with self._changed:
            self.connects += 1
            self.connected_at.append(time.monotonic())
            self._changed.notify_all()
        if self.connects > 1:
            _in_background(self._rejoin_all)

    def _on_disconnect(self, reason=None):
        # python-engineio forgets a WebSocket the server dropped without closing it.
        websocket = getattr(self.sio.eio, 'ws', None)
        if websocket is not None and reason != self.sio.reason.CLIENT_DISCONNECT:
            websocket.shutdown()
        with self._changed:
            self.disconnect_reasons.append(reason)
            self._changed.notify_all()

    def _on_greeting(self, greeting):
        with self._changed:
            self.session = greeting['session']
            self.nick = greeting['nick']
            self._changed.notify_all()

    def _on_room_info(self, info):
        with self._changed:
            self.room_infos.append(info)
            self._changed.notify_all()

    def _on_message(self, message):
        with self._changed:
            self.live.append(message)
        if self._take(message['room'], [message]):
            _in_background(self._fill_gap, message['room'])

    # ---- the resume rule ---------------------------------------------------------------

    def _rejoin_all(self):
        behind = [room for room in list(self.rooms) if self._rejoin(room)]
        with self._changed:
            self.rejoins += 1
            self._changed.notify_all()
        for room in behind:
            self._fill_gap(room)

    def _rejoin(self, room):
        """Join from the cursor; return whether more is to be fetched."""
        cursor = self.rooms[room].cursor
        ack = self.sio.call('join', {'room': room, 'since_id': cursor}, namespace=NAMESPACE,
                            timeout=WAIT_S)
        assert ack['ok'] is True, ack
        with self._changed:
            self.join_members.append((room, ack['members']))
        return self._take(room, ack['history']) or ack['more']

    def _take(self, room, messages):
        """Add messages to a room's log; return whether it now waits on a gap."""
        with self._changed:
            log = self.rooms.get(room)
            if log is None:
                return False
            gap = any([log.add(message) for message in messages])
            self._changed.notify_all()
            return gap

    def _fill_gap(self, room):
        """Fetch pages after the cursor until every message received is preceded by all.

        One fetch runs per room. A call while it runs asks it for one more pass, so that
        neither a gap found meanwhile nor a rejoin on a new connection (while the fetch still
        waits on the lost one) goes unanswered.
        """
        with self._changed:
            self._fill_wanted.add(room)
        while self._catching_up[room].acquire(blocking=False):
            try:
                while self._take_fill_wish(room):
                    try:
                        self._fetch_after_cursor(room)
                    except socketio.exceptions.SocketIOError:
                        pass  # the connection went: the rejoin on the next one asks again
            finally:
                self._catching_up[room].release()
            with self._changed:
                if room not in self._fill_wanted:
                    return

    def _take_fill_wish(self, room):
        with self._changed:
            wanted = room in self._fill_wanted
            self._fill_wanted.discard(room)
            return wanted

    def _fetch_after_cursor(self, room):
        while True:
            reply = self.sio.call('history', {'room': room, 'since_id': self.rooms[room].cursor,
                                              'limit': PAGE}, namespace=NAMESPACE, timeout=WAIT_S)
            if not self._take(room, reply['messages']) and not reply['more']:
                return

    def __enter__(self):
        return self.connect()

    def __exit__(self, *exc_info):
        self.close()


def _in_background(action, *args):
    """Run ``action`` in a thread: a call waits for a reply that the event thread must read.

    A call cut short by a lost connection is left to the next reconnect, which rejoins from
    the cursor; the rule needs no retry loop.
    """
    def run():
        try:
            action(*args)
        except socketio.exceptions.SocketIOError:
            pass

    threading.Thread(target=run, daemon=True).start()
