"""A python-socketio chat client that follows the README's resume rule, as any client should.

It reconnects by itself, presents its session token to take its nick back, joins its rooms
again from its cursor (the highest id up to which it holds every message), fetches every gap
that a message reveals with ``history``, drops duplicates by id, and hands the application
each room's messages exactly once and in id order (``delivered``).
"""
import threading

import requests
import socketio

NAMESPACE = '/chat'
PAGE = 200
WAIT_S = 5.0


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
        self.rejoins = 0  # reconnects after which every room was joined again
        self.disconnect_reasons = []
        self._changed = threading.Condition()
        self._catching_up = {}  # room -> a lock held while its gap is being fetched
        self.http = requests.Session()  # closed here: see sio_client.RecordingClient
        self.sio = socketio.Client(reconnection=True, reconnection_delay=0.2,
                                   reconnection_delay_max=1.0, http_session=self.http)
        self.sio.on('connect', self._on_connect, namespace=NAMESPACE)
        self.sio.on('disconnect', self._on_disconnect, namespace=NAMESPACE)
        self.sio.on('my_response', self._on_greeting, namespace=NAMESPACE)
        self.sio.on('chat_message', self._on_message, namespace=NAMESPACE)

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
        self._rejoin(room)

    def send(self, room, text, client_id=None):
        """Send a room message and return its acknowledgement."""
        payload = {'room': room, 'text': text}
        if client_id is not None:
            payload['client_id'] = client_id
        return self.sio.call('room_message', payload, namespace=NAMESPACE, timeout=WAIT_S)

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
            self._changed.notify_all()
        # Calls wait for replies that this very event loop reads: rejoin from another thread.
        if self.connects > 1:
            threading.Thread(target=self._rejoin_all, daemon=True).start()

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

    def _on_message(self, message):
        if self._take(message['room'], [message]):
            threading.Thread(target=self._fill_gap, args=(message['room'],), daemon=True).start()

    # ---- the resume rule ---------------------------------------------------------------

    def _rejoin_all(self):
        for room in list(self.rooms):
            self._rejoin(room)
        with self._changed:
            self.rejoins += 1
            self._changed.notify_all()

    def _rejoin(self, room):
        cursor = self.rooms[room].cursor
        ack = self.sio.call('join', {'room': room, 'since_id': cursor}, namespace=NAMESPACE,
                            timeout=WAIT_S)
        assert ack['ok'] is True, ack
        if self._take(room, ack['history']) or ack['more']:
            self._fill_gap(room)

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

        One fetch runs per room; a gap found while it runs is seen by its last check.
        """
        while self._catching_up[room].acquire(blocking=False):
            try:
                self._fetch_after_cursor(room)
            finally:
                self._catching_up[room].release()
            with self._changed:
                if not self.rooms[room].waiting:
                    return

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
