"""The /chat namespace: echo, broadcast, rooms and room messages."""
import dataclasses
import logging

from flask import request
from flask_socketio import Namespace, emit, join_room, leave_room

from server.chat import validation
from server.errors import ClientError
from server.namespaces.replies import replies

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class ChatLimits:
    """The sizes a client may not exceed."""

    max_message_length: int = 2000
    max_room_name_length: int = 64
    history_limit: int = 50

    @classmethod
    def from_config(cls, config):
        """Read the limits from a Flask config mapping."""
        return cls(
            max_message_length=config['MAX_MESSAGE_LENGTH'],
            max_room_name_length=config['MAX_ROOM_NAME_LENGTH'],
            history_limit=config['HISTORY_LIMIT'],
        )


def room_key(room):
    """Return the Socket.IO room for a chat room.

    The prefix keeps chat rooms apart from the private room python-socketio gives each client
    under its sid, so joining a room named like someone's sid cannot read their messages.
    """
    return f'room:{room}'


class ChatNamespace(Namespace):
    """Handlers for /chat; state lives in ``presence`` and ``history``."""

    def __init__(self, namespace, presence, history, limits):
        super().__init__(namespace)
        self.presence = presence
        self.history = history
        self.limits = limits

    def on_connect(self, auth=None):
        nick = self.presence.connect(request.sid)
        emit('my_response', {'data': 'Connected', 'nick': nick})

    def on_disconnect(self, reason=None):
        sid = request.sid
        if not self.presence.is_connected(sid):
            return
        nick = self.presence.nick(sid)
        for room in self.presence.disconnect(sid):
            self._announce(room, f'Member left: {room}', nick, include_self=False)

    @replies
    def on_my_event(self, payload):
        data = validation.message_text(payload, 'data', self.limits.max_message_length)
        emit('my_response', {'data': data})

    @replies
    def on_my_broadcast_event(self, payload):
        data = validation.message_text(payload, 'data', self.limits.max_message_length)
        self.emit('my_response', {'data': data, 'nick': self._nick()})

    @replies
    def on_join(self, payload):
        room = self._room(payload)
        if self.presence.join(request.sid, room):
            join_room(room_key(room))
            self._announce(room, f'New member joined: {room}', self._nick())
        history = self.history.recent(room, self.limits.history_limit)
        return {
            'room': room,
            'members': self.presence.members(room),
            'history': [message.to_dict() for message in history],
        }

    @replies
    def on_leave(self, payload):
        room = self._room(payload)
        self._require_member(room)
        self.presence.leave(request.sid, room)
        leave_room(room_key(room))
        self._announce(room, f'Member left: {room}', self._nick())
        return {'room': room}

    @replies
    def on_room_message(self, payload):
        room = self._room(payload)
        text = validation.message_text(payload, 'text', self.limits.max_message_length)
        self._require_member(room)
        message = self.history.append(room, self._nick(), text)
        self.emit('chat_message', message.to_dict(), room=room_key(room))
        return {'id': message.id, 'room': room}

    def _room(self, payload):
        return validation.room_name(payload, self.limits.max_room_name_length)

    def _nick(self):
        return self.presence.nick(request.sid)

    def _require_member(self, room):
        if not self.presence.is_member(request.sid, room):
            raise ClientError('not_in_room', f'you are not in room "{room}"')

    def _announce(self, room, msg, nick, include_self=True):
        info = {'msg': msg, 'room': room, 'nick': nick, 'members': self.presence.members(room)}
        self.emit('room_info', info, room=room_key(room), include_self=include_self)
