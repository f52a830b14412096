"""The /chat namespace: echo, broadcast, nicks, rooms, presence, typing, direct messages."""
import dataclasses
import functools
import logging

from server.chat import sessions, validation
from server.chat.presence import nick_taken
from server.errors import ClientError
from server.namespaces.access import client_address, refuse_connect, signed_in_user
from server.namespaces.internals import close_transport, in_room, local_members
from server.namespaces.replies import AnsweringNamespace, replies
from server.tasks import Trampoline

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class ChatLimits:
    """The sizes a client may not exceed; each field is the config key of the same name."""

    max_message_length: int
    max_room_name_length: int
    max_nick_length: int
    history_limit: int
    max_history_page: int

    @classmethod
    def from_config(cls, config):
        """Read the limits from a Flask config mapping."""
        return cls(**{field.name: config[field.name.upper()] for field in dataclasses.fields(cls)})


def room_key(room):
    """Return the Socket.IO room for a chat room.

    The prefix keeps chat rooms apart from the private room python-socketio gives each client
    under its sid, so joining a room named like someone's sid cannot read their messages.
    """
    return f'room:{room}'


class ChatNamespace(AnsweringNamespace):
    """Handlers for /chat; the state lives in the domain objects it is given."""

    def __init__(self, namespace, presence, store, typing, limiter, limits, periodic,
                 session_tokens, users=None, grace=0.0, heartbeat=None):
        super().__init__(namespace, limiter)
        self.presence = presence
        self.session_tokens = session_tokens
        self.users = users  # sign-in tokens when AUTH_REQUIRED, else None: anyone may connect
        self.store = store
        self.typing = typing
        self.limits = limits
        self.announcements = Trampoline()
        self.typing_expiry = periodic('typing-expiry', min(1.0, typing.timeout / 2),
                                      self.expire_typing, quiet=True)
        # Forgets the clients that did not come back within the grace; with shared presence
        # it also beats this worker's heartbeat and forgets dead workers' clients, so it runs
        # for the server's whole life. Alone, it idles while nobody lingers.
        self.grace = grace
        self.presence_shared = heartbeat is not None
        self.presence_upkeep = periodic('presence-upkeep', heartbeat or min(1.0, grace / 2 or 1.0),
                                        self.keep_presence, quiet=True)

    def on_connect(self, auth=None):
        """Greet the client with its nick and session token, taking over its stale connection.

        A session token the server did not sign is refused (``invalid_session``); with
        AUTH_REQUIRED, so is a connect without a good sign-in token, and the user's name is
        the nick.
        """
        self.count_connect()
        user = signed_in_user(self, self.users, auth)
        token, key = self._session(auth, user)
        arrival = self.presence.connect(self.sid, user or self._wanted_nick(auth), key)
        if user is not None and arrival.nick != user:
            # Another user's name is the same nick, ignoring case: two names for one nick.
            self.presence.disconnect(self.sid)
            raise refuse_connect(self, nick_taken(user))
        if arrival.displaced is not None:
            self._close_displaced(arrival.displaced)
        for room in arrival.rooms:  # a session resumed: it is still in its rooms
            self.enter_room(self.sid, room_key(room))
        # Its old connection may have died with its worker, typing flag and all: a client
        # that has just connected is typing nowhere.
        self._clear_typing(arrival.nick, arrival.rooms, skip_sid=self.sid)
        self.reply('my_response', {'data': 'Connected', 'nick': arrival.nick, 'session': token,
                                   'user_id': sessions.user_id(key)})
        log.info('chat client connected: %s from %s%s', arrival.nick, client_address(self),
                 '' if user is None else f' (signed in as {user})')

    def _session(self, auth, user):
        """Return the session token to greet with and the key the session is kept under.

        A signed-in user has one session, whichever tab or device it connects from (and no
        token: its sign-in token is its proof); anyone else has the signed session token it
        presents, or a new one.
        """
        if user is not None:
            return None, sessions.user_key(user)
        try:
            token = self.session_tokens.presented(auth) or self.session_tokens.issue()
        except ClientError as error:
            raise refuse_connect(self, error) from None
        return token, sessions.session_key(token)

    def on_disconnect(self, reason=None):
        """Forget the client at once, then tell its rooms, through the announcement queue.

        Telling a room can make the server notice that another member is dead and run that
        member's disconnect right here, inside this one; queued, a room full of dead clients
        is announced in a flat loop, and one failure to tell a member keeps nobody in a room.
        """
        sid = self.sid
        nick = self.presence.nick(sid) if self.presence.is_connected(sid) else None
        log.info('chat client disconnected: %s from %s (%s)', nick, client_address(self),
                 reason or 'unknown reason')
        typing_rooms = self.typing.stop_client(sid)
        if typing_rooms and nick is not None:
            self._clear_typing(nick, typing_rooms, skip_sid=sid)
        if self.grace > 0:
            # A reload or a dropped connection comes back within the grace, unannounced.
            if self.presence.linger(sid, self.grace) and not self.presence_shared:
                self.presence_upkeep.start()
            return
        departure = self.presence.disconnect(sid)
        if departure is not None:
            self._announce_departure(sid, departure)

    def _announce_departure(self, sid, departure):
        for room in departure.rooms:
            info = self._room_info(room, 'leave', f'Member left: {room}', departure.nick)
            self.announcements.post(functools.partial(self._emit_room_info, info, skip_sid=sid))

    def keep_presence(self):
        """Forget and announce the clients whose grace is over, and those of dead workers;
        renew this worker's heartbeat."""
        if not self.presence.heartbeat():
            self._drop_local_clients()
        for sid, departure in self.presence.reap():
            # A dead worker's typing flags died with it, unannounced: clear them here.
            self._clear_typing(departure.nick, departure.rooms, skip_sid=sid)
            self._announce_departure(sid, departure)
        for sid, departure in self.presence.expire():
            self._announce_departure(sid, departure)
        if not self.presence_shared and not self.presence.lingering():
            self.presence_upkeep.stop()

    def start_tasks(self):
        """Start the work that runs for the server's whole life: the presence heartbeat."""
        if self.presence_shared:
            self.presence.heartbeat()
            self.presence_upkeep.start()

    def _drop_local_clients(self):
        """The other workers gave this one up for dead (it stalled) and forgot its clients:
        end their connections so that they come back and register again."""
        log.warning('this worker was given up for dead; its clients will reconnect')
        server = self.socketio.server
        for sid, eio_sid in list(server.manager.get_participants(self.namespace, None)):
            close_transport(server, eio_sid, lost=True)

    def stop_tasks(self, timeout=None):
        """Stop the namespace's background work for good (server shutdown)."""
        self.typing_expiry.close(timeout)
        self.presence_upkeep.close(timeout)

    def expire_typing(self):
        """Tell rooms that clients who went quiet are no longer typing; idle when none is."""
        for sid, room in self.typing.expire():
            if self.presence.is_member(sid, room):
                self._send_typing(room, self.presence.nick(sid), False, skip_sid=sid)
        if not len(self.typing):
            self.typing_expiry.stop()

    @replies
    def on_my_event(self, payload):
        data = validation.message_text(payload, 'data', self.limits.max_message_length)
        self.reply('my_response', {'data': data})

    @replies
    def on_my_broadcast_event(self, payload):
        data = validation.message_text(payload, 'data', self.limits.max_message_length)
        self.emit('my_response', {'data': data, 'from': self._nick()})

    @replies
    def on_set_nick(self, payload):
        nick = validation.nick(payload, 'nick', self.limits.max_nick_length)
        if self.users is not None and nick != self._nick():
            raise ClientError('nick_locked', f'your nick is your user name, "{self._nick()}", '
                              'on this server')
        old = self.presence.set_nick(self.sid, nick)
        if old != nick:
            for room in self.presence.rooms(self.sid):
                self._announce(room, 'rename', f'{old} is now known as {nick}', nick,
                               previous_nick=old)
        return {'nick': nick}

    @replies
    def on_join(self, payload):
        room = self._room(payload)
        since_id = validation.optional_id(payload, 'since_id')
        joined = self._enter(room)
        audience = self._audience(room) if joined else None
        try:
            # Read after entering: a message stored meanwhile is then live, never missed.
            page = self._join_page(room, since_id)
        except BaseException:
            if joined:
                self._exit(room)
            raise
        if joined:
            self._emit_room_info(
                self._room_info(room, 'join', f'New member joined: {room}', self._nick()),
                to=self._still_here(room, audience))
        return {
            'room': room,
            'members': self.presence.members(room),
            'owner': self._owner(room),
            'history': [message.to_dict() for message in page.messages],
            'more': page.more,
        }

    @replies
    def on_leave(self, payload):
        room = self._member_room(payload)
        nick = self._nick()
        self._stop_typing(room, nick)
        self._exit(room)
        self._announce(room, 'leave', f'Member left: {room}', nick)
        return {'room': room}

    @replies
    def on_room_members(self, payload):
        room = self._room(payload)
        return {'room': room, 'members': self.presence.members(room)}

    @replies
    def on_nick_status(self, payload):
        """Say whether someone holds ``nick`` now, so that a direct message to it is delivered."""
        nick = validation.nick(payload, 'nick', self.limits.max_nick_length)
        return {'nick': nick, 'online': self.presence.sid_of(nick) is not None}

    @replies
    def on_room_message(self, payload):
        room = self._room(payload)
        text = validation.message_text(payload, 'text', self.limits.max_message_length)
        client_id = validation.optional_client_id(payload)
        self._require_member(room)
        nick = self._nick()
        message, duplicate = self.store.append(room, nick, text,
                                               self.presence.key(self.sid), client_id)
        if not duplicate:
            self._stop_typing(room, nick)
            self.emit('chat_message', message.to_dict(), room=room_key(room))
        return {'id': message.id, 'room': room, 'duplicate': duplicate}

    @replies
    def on_history(self, payload):
        room = self._member_room(payload)
        before_id = validation.optional_id(payload, 'before_id')
        since_id = validation.optional_id(payload, 'since_id')
        limit = validation.optional_limit(payload, self.limits.history_limit,
                                          self.limits.max_history_page)
        if before_id is not None and since_id is not None:
            raise ClientError('bad_request', 'give "before_id" or "since_id", not both')
        if since_id is not None:
            page = self.store.since(room, since_id, limit)
        else:
            page = self.store.before(room, before_id, limit)
        return {'room': room, 'messages': [m.to_dict() for m in page.messages], 'more': page.more}

    @replies
    def on_typing(self, payload):
        room = self._member_room(payload)
        typing = validation.require_bool(payload, 'typing')
        nick = self._nick()
        if not typing:
            self._stop_typing(room, nick)
        elif self.typing.start(self.sid, room):
            self.typing_expiry.start()
            self._send_typing(room, nick, True, skip_sid=self.sid)
        return {'room': room, 'typing': typing}

    @replies
    def on_direct_message(self, payload):
        recipient = validation.nick(payload, 'to', self.limits.max_nick_length)
        text = validation.message_text(payload, 'text', self.limits.max_message_length)
        client_id = validation.optional_client_id(payload)
        to_id = validation.optional_user_id(payload, 'to_id')
        sender_key = self.presence.key(self.sid)
        # A retry of a send that was stored is answered as such whatever became of the nick.
        stored = self.store.stored_direct(sender_key, client_id) if client_id else None
        if stored is not None:
            return {**stored.to_dict(), 'duplicate': True}
        recipient_sid = self.presence.sid_of(recipient)
        if recipient_sid is None:
            raise ClientError('unknown_nick', f'nobody is connected as "{recipient}"')
        recipient_key = self.presence.key(recipient_sid)
        if to_id is not None and sessions.user_id(recipient_key) != to_id:
            # The nick is a label: whoever holds it now is not the person this was written to.
            raise ClientError('recipient_changed', f'"{recipient}" is now someone else')
        message, duplicate = self.store.append_direct(
            self._nick(), self.presence.nick(recipient_sid), text,
            sender_key=sender_key, recipient_key=recipient_key, client_id=client_id)
        if not duplicate:
            self.emit('direct_message', message.to_dict(), room=recipient_sid)
        return {**message.to_dict(), 'duplicate': duplicate}

    @replies
    def on_direct_history(self, payload):
        payload = {} if payload is None else payload
        before_id = validation.optional_id(payload, 'before_id')
        since_id = validation.optional_id(payload, 'since_id')
        limit = validation.optional_limit(payload, self.limits.history_limit,
                                          self.limits.max_history_page)
        if before_id is not None and since_id is not None:
            raise ClientError('bad_request', 'give "before_id" or "since_id", not both')
        key = self.presence.key(self.sid)
        if before_id is not None:
            page = self.store.direct_before(key, before_id, limit)
        else:
            page = self.store.direct_since(key, since_id or 0, limit)
        return {'messages': [m.to_dict() for m in page.messages], 'more': page.more}

    @replies
    def on_close_room(self, payload):
        room = self._member_room(payload)
        nick = self._nick()
        members = self.presence.close_room(room, by=self.sid)
        info = {'kind': 'close', 'msg': f'Room closing: {room}', 'room': room, 'nick': nick,
                'members': [], 'owner': None, 'closing': True}
        self._emit_room_info(info)
        for sid in members:
            self.typing.stop(sid, room)
        self.close_room(room_key(room))
        return {'room': room}

    def _close_displaced(self, holder):
        """Close a session's older connection, whose nick the new one has just taken back.

        After an abrupt drop the old connection keeps the nick until the ping timeout; the
        client reconnecting with the same session token is the same person, so it wins.
        """
        log.info('session resumed on %s; closing its old connection %s', self.sid, holder)
        self.emit('session_moved', {}, room=holder)
        self.socketio.server.disconnect(holder, namespace=self.namespace)

    def _wanted_nick(self, auth):
        """Return the nick a connecting client asks for in ``auth``, if it is a valid one."""
        if not isinstance(auth, dict) or auth.get('nick') is None:
            return None
        try:
            return validation.nick(auth, 'nick', self.limits.max_nick_length)
        except ClientError:
            return None

    def _room(self, payload):
        return validation.room_name(payload, self.limits.max_room_name_length)

    def _member_room(self, payload):
        room = self._room(payload)
        self._require_member(room)
        return room

    def _nick(self):
        return self.presence.nick(self.sid)

    def describe_client(self, sid, eio_sid):
        """Name a client in the log: its nick, sid and address."""
        nick = self.presence.nick(sid) if self.presence.is_connected(sid) else None
        return f'{nick} ({super().describe_client(sid, eio_sid)})'

    def _require_member(self, room):
        # The client's own rooms are known to this worker: no shared state is asked (the
        # check holds, and room messages go on locally, while Redis is out of reach).
        if not in_room(self.socketio.server, self.sid, self.namespace, room_key(room)):
            raise ClientError('not_in_room', f'you are not in room "{room}"')

    def _enter(self, room):
        """Make the client a member of the room, within the caps; return False if it was one."""
        joined = self.presence.join(self.sid, room)
        self.enter_room(self.sid, room_key(room))  # also when a resumed session is a member
        return joined

    def _exit(self, room):
        self.presence.leave(self.sid, room)
        self.leave_room(self.sid, room_key(room))

    def _join_page(self, room, since_id):
        if since_id is None:
            return self.store.recent(room, self.limits.history_limit)
        return self.store.since(room, since_id, self.limits.max_history_page)

    def _stop_typing(self, room, nick):
        if self.typing.stop(self.sid, room):
            self._send_typing(room, nick, False, skip_sid=self.sid)

    def _clear_typing(self, nick, rooms, skip_sid):
        for room in rooms:
            self.announcements.post(
                functools.partial(self._send_typing, room, nick, False, skip_sid=skip_sid))

    def _send_typing(self, room, nick, typing, skip_sid):
        self.socketio.emit('typing', {'room': room, 'nick': nick, 'typing': typing},
                           to=room_key(room), skip_sid=skip_sid, namespace=self.namespace)

    def _announce(self, room, kind, msg, nick, skip_sid=None, **extra):
        self._emit_room_info(self._room_info(room, kind, msg, nick, **extra), skip_sid)

    def _room_info(self, room, kind, msg, nick, **extra):
        return {'kind': kind, 'msg': msg, 'room': room, 'nick': nick,
                'members': self.presence.members(room), 'owner': self._owner(room), **extra}

    def _owner(self, room):
        """The nick of the member who may close the room (its longest-standing), or None."""
        sid = self.presence.owner(room)
        try:
            return None if sid is None else self.presence.nick(sid)
        except KeyError:  # gone since the first call: the next room_info names the next one
            return None

    def _emit_room_info(self, info, skip_sid=None, to=None):
        self.socketio.emit('room_info', info, to=to or room_key(info['room']),
                           skip_sid=skip_sid, namespace=self.namespace)

    def _audience(self, room):
        """Return who is to hear of a join into ``room`` that has just happened: its members
        now, or None for the whole room when other workers share it.

        The history read that follows a join waits for the database, and meanwhile others may
        join; they get every member in their own reply, so the announcement need not reach
        them. In a join storm that halves the member lists sent (each of which names them all).
        """
        if self.presence_shared:
            return None
        return local_members(self.server, self.namespace, room_key(room))

    def _still_here(self, room, audience):
        """Return the sids of ``audience`` still in the room (None: the whole room)."""
        if audience is None:
            return None
        present = local_members(self.server, self.namespace, room_key(room))
        return [sid for sid in audience if sid in present] or [self.sid]
