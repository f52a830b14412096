"""Who is connected, under which nick, and in which rooms.

This in-process registry is the single source of truth for one worker. Its methods are the
interface a shared (Redis-backed) registry will implement to span several workers.
Under gevent no method yields, so each call is atomic without a lock.
"""
import secrets

from server.errors import ClientError


def guest_nick():
    """Return a fresh ``guest-xxxx`` nick."""
    return f'guest-{secrets.token_hex(3)}'


class Presence:
    """Connected clients, their nicks and their room memberships."""

    def __init__(self, nick_factory=guest_nick):
        self._nick_factory = nick_factory
        self._nicks = {}
        self._keys = {}
        self._sid_by_nick = {}
        self._rooms_by_sid = {}
        self._members_by_room = {}

    def connect(self, sid, wanted=None, key=None):
        """Register a client (of session ``key``) under ``wanted`` if free, else a guest nick."""
        self._keys[sid] = key
        nick = wanted or self._nick_factory()
        while nick.casefold() in self._sid_by_nick:
            nick = self._nick_factory()
        self._nicks[sid] = nick
        self._sid_by_nick[nick.casefold()] = sid
        self._rooms_by_sid[sid] = {}
        return nick

    def disconnect(self, sid):
        """Forget a client; return the rooms it was in, in the order it joined them."""
        rooms = [room for room in list(self._rooms_by_sid.get(sid, ())) if self.leave(sid, room)]
        nick = self._nicks.pop(sid, None)
        if nick is not None:
            self._sid_by_nick.pop(nick.casefold(), None)
        self._rooms_by_sid.pop(sid, None)
        self._keys.pop(sid, None)
        return rooms

    def set_nick(self, sid, nick):
        """Give the client a new nick; return the old one. Nicks are unique, ignoring case."""
        holder = self._sid_by_nick.get(nick.casefold())
        if holder is not None and holder != sid:
            raise ClientError('nick_taken', f'the nick "{nick}" is taken')
        old = self._nicks[sid]
        del self._sid_by_nick[old.casefold()]
        self._nicks[sid] = nick
        self._sid_by_nick[nick.casefold()] = sid
        return old

    def key(self, sid):
        """Return the session key of a connected client."""
        return self._keys[sid]

    def sid_of(self, nick):
        """Return the sid of the client holding ``nick`` (ignoring case), or None."""
        return self._sid_by_nick.get(nick.casefold())

    def is_connected(self, sid):
        """Return whether the client is registered."""
        return sid in self._nicks

    def nick(self, sid):
        """Return the client's nick."""
        return self._nicks[sid]

    def join(self, sid, room):
        """Add the client to the room; return False if it was already a member."""
        rooms = self._rooms_by_sid[sid]
        if room in rooms:
            return False
        rooms[room] = None
        self._members_by_room.setdefault(room, {})[sid] = None
        return True

    def leave(self, sid, room):
        """Remove the client from the room; return False if it was not a member."""
        rooms = self._rooms_by_sid.get(sid)
        if not rooms or room not in rooms:
            return False
        del rooms[room]
        members = self._members_by_room[room]
        del members[sid]
        if not members:
            del self._members_by_room[room]
        return True

    def is_member(self, sid, room):
        """Return whether the client is in the room."""
        return room in self._rooms_by_sid.get(sid, ())

    def rooms(self, sid):
        """Return the rooms the client is in, sorted."""
        return sorted(self._rooms_by_sid.get(sid, ()))

    def member_count(self, room):
        """Return how many clients are in the room."""
        return len(self._members_by_room.get(room, ()))

    def room_count(self, sid):
        """Return how many rooms the client is in."""
        return len(self._rooms_by_sid.get(sid, ()))

    def owner(self, room):
        """Return the sid of the room's longest-standing member (who may close it), or None."""
        return next(iter(self._members_by_room.get(room, ())), None)

    def close_room(self, room):
        """Remove every member from the room; return their sids."""
        sids = list(self._members_by_room.get(room, ()))
        for sid in sids:
            self.leave(sid, room)
        return sids

    def members(self, room):
        """Return the nicks in the room, sorted without regard to case."""
        nicks = (self._nicks[sid] for sid in self._members_by_room.get(room, ()))
        return sorted(nicks, key=str.casefold)
