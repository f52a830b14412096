"""Who is connected, under which nick, and in which rooms: the in-process registry.

``Presence`` is the embedded default, the single source of truth for one worker; a shared
registry (``server.chat.redis_presence``) implements the same methods for several workers.
Every change that must be atomic across workers is one method here, never a check in the
caller followed by an act: claiming a nick, joining under the caps, taking a session's nick
back, closing a room as its owner. Under gevent no method yields, so each is atomic as it is.

Nicks are unique by their keys (``server.chat.names``: case and look-alikes), and so are the
names of rooms that have members: a room that looks like a live one cannot be opened beside it.
"""
import dataclasses
import secrets
import time

from server.chat.names import fold, shape
from server.errors import ClientError


def guest_nick():
    """Return a fresh ``guest-xxxx`` nick."""
    return f'guest-{secrets.token_hex(3)}'


def name_keys(name):
    """Return the keys a nick or a room name is held under: two clash if one of these does."""
    return (('fold', fold(name)), ('shape', shape(name)))


@dataclasses.dataclass(frozen=True)
class Arrival:
    """A client registered: its nick; when it resumed its session's registration, the rooms
    that came with it, and the older connection it displaced if that one was still open."""

    nick: str
    displaced: str | None = None
    rooms: tuple = ()


@dataclasses.dataclass(frozen=True)
class Departure:
    """A client forgotten: the nick it held and the rooms it was in, in the order it joined."""

    nick: str
    rooms: list


def too_many_rooms(limit):
    """Return the refusal of a join beyond the per-client room cap."""
    return ClientError('too_many_rooms', f'you are in {limit} rooms already')


def room_full(room):
    """Return the refusal of a join into a full room."""
    return ClientError('room_full', f'room "{room}" is full')


def nick_taken(nick):
    """Return the refusal of a nick somebody else holds, or one that looks like it."""
    return ClientError('nick_taken', f'the nick "{nick}" is taken, or looks like one that is')


def lookalike_room(room, live):
    """Return the refusal of a room whose name looks like that of a room with members."""
    return ClientError('invalid_room', f'the room name "{room}" looks like that of the room '
                                       f'"{live}", which is open now: join "{live}" instead')


def not_owner():
    """Return the refusal of a close_room by anyone but the longest-standing member."""
    return ClientError('forbidden', 'only the longest-standing member may close the room')


class Presence:
    """Connected clients, their nicks and their room memberships, in this process."""

    def __init__(self, nick_factory=guest_nick, max_rooms_per_client=None, max_room_members=None,
                 clock=time.monotonic):
        self._nick_factory = nick_factory
        self._clock = clock
        self._sid_by_session = {}
        self._lingering = {}  # sid -> the time its registration expires
        self.max_rooms_per_client = max_rooms_per_client
        self.max_room_members = max_room_members
        self._nicks = {}
        self._keys = {}
        self._sid_by_nick = {}  # each of a nick's name_keys -> the sid holding it
        self._rooms_by_sid = {}
        self._members_by_room = {}
        self._room_by_key = {}  # each of a room's name_keys -> the room, while it has members

    def connect(self, sid, wanted=None, key=None):
        """Register a client of session ``key`` under ``wanted`` if free, else a guest nick.

        A session registered already (a reconnect, a reload, another tab of the same session)
        resumes its registration: nick, rooms and their order move to the new connection, and
        nobody is told anyone left or came. An older connection that was still open is named
        as displaced, for the caller to close.
        """
        holder = self._sid_by_session.get(key) if key is not None else None
        if holder is not None:
            displaced = None if self._lingering.pop(holder, None) is not None else holder
            self._move(holder, sid)
            return Arrival(self._nicks[sid], displaced, tuple(self._rooms_by_sid[sid]))
        nick = wanted or self._nick_factory()
        while any(k in self._sid_by_nick for k in name_keys(nick)):
            nick = self._nick_factory()
        self._keys[sid] = key
        self._nicks[sid] = nick
        self._hold_nick(nick, sid)
        self._rooms_by_sid[sid] = {}
        if key is not None:
            self._sid_by_session[key] = sid
        return Arrival(nick)

    def _move(self, old, new):
        """Give the registration of connection ``old`` to connection ``new``."""
        self._nicks[new] = nick = self._nicks.pop(old)
        self._keys[new] = key = self._keys.pop(old)
        self._rooms_by_sid[new] = rooms = self._rooms_by_sid.pop(old)
        for room in rooms:
            members = self._members_by_room[room]
            self._members_by_room[room] = {(new if sid == old else sid): None for sid in members}
        self._hold_nick(nick, new)
        self._sid_by_session[key] = new

    def _hold_nick(self, nick, sid):
        for k in name_keys(nick):
            self._sid_by_nick[k] = sid

    def _release_nick(self, nick, sid):
        for k in name_keys(nick):
            if self._sid_by_nick.get(k) == sid:
                del self._sid_by_nick[k]

    def linger(self, sid, seconds):
        """Keep a gone client's registration ``seconds`` longer: its session may come back.

        Returns whether it was registered. ``expire`` forgets it once the time is up.
        """
        if sid not in self._nicks:
            return False
        self._lingering[sid] = self._clock() + seconds
        return True

    def expire(self):
        """Forget the lingering clients whose time is up; return [(sid, Departure)]."""
        now = self._clock()
        due = [sid for sid, deadline in self._lingering.items() if deadline <= now]
        return [(sid, self.disconnect(sid)) for sid in due]

    def lingering(self):
        """Return how many gone clients are still kept."""
        return len(self._lingering)

    def disconnect(self, sid):
        """Forget a client; return its Departure, or None if it was not registered."""
        nick = self._nicks.pop(sid, None)
        if nick is None:
            return None
        rooms = [room for room in list(self._rooms_by_sid.get(sid, ())) if self.leave(sid, room)]
        self._release_nick(nick, sid)
        self._rooms_by_sid.pop(sid, None)
        key = self._keys.pop(sid, None)
        if self._sid_by_session.get(key) == sid:
            del self._sid_by_session[key]
        self._lingering.pop(sid, None)
        return Departure(nick, rooms)

    def set_nick(self, sid, nick):
        """Give the client a new nick; return the old one. Nicks are unique, ignoring case and
        look-alike characters."""
        if any(self._sid_by_nick.get(k, sid) != sid for k in name_keys(nick)):
            raise nick_taken(nick)
        old = self._nicks[sid]
        self._release_nick(old, sid)
        self._nicks[sid] = nick
        self._hold_nick(nick, sid)
        return old

    def key(self, sid):
        """Return the session key of a connected client."""
        return self._keys[sid]

    def sid_of(self, nick):
        """Return the sid of the client holding ``nick`` (ignoring case and look-alike
        characters), or None."""
        return self._sid_by_nick.get(name_keys(nick)[0])

    def is_connected(self, sid):
        """Return whether the client is registered."""
        return sid in self._nicks

    def nick(self, sid):
        """Return the client's nick."""
        return self._nicks[sid]

    def join(self, sid, room):
        """Add the client to the room within the caps; return False if it was a member already.

        Raises ClientError ``too_many_rooms`` or ``room_full`` beyond the caps, and
        ``invalid_room`` when the name looks like that of another room that has members.
        """
        rooms = self._rooms_by_sid[sid]
        if room in rooms:
            return False
        keys = name_keys(room)
        live = next((self._room_by_key[k] for k in keys
                     if self._room_by_key.get(k, room) != room), None)
        if live is not None:
            raise lookalike_room(room, live)
        if self.max_rooms_per_client is not None and len(rooms) >= self.max_rooms_per_client:
            raise too_many_rooms(self.max_rooms_per_client)
        members = self._members_by_room.setdefault(room, {})
        if self.max_room_members is not None and len(members) >= self.max_room_members:
            if not members:
                del self._members_by_room[room]
            raise room_full(room)
        rooms[room] = None
        members[sid] = None
        for k in keys:
            self._room_by_key[k] = room
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
            for k in name_keys(room):
                if self._room_by_key.get(k) == room:
                    del self._room_by_key[k]
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

    def close_room(self, room, by):
        """Remove every member from the room, if ``by`` owns it; return their sids.

        Raises ClientError ``forbidden`` when ``by`` is not the longest-standing member.
        """
        if self.owner(room) != by:
            raise not_owner()
        sids = list(self._members_by_room.get(room, ()))
        for sid in sids:
            self.leave(sid, room)
        return sids

    def members(self, room):
        """Return the nicks in the room, sorted without regard to case."""
        nicks = (self._nicks[sid] for sid in self._members_by_room.get(room, ()))
        return sorted(nicks, key=str.casefold)

    def heartbeat(self):
        """Tell the other workers this one is alive: nothing to tell in one process."""
        return True

    def reap(self):
        """Forget the clients of workers that died: none in one process. Returns [(sid, Departure)]."""
        return []

    def reachable(self):
        """Return whether the registry can be reached: in this process, always."""
        return True

    def close(self):
        """Release what the registry holds: nothing in one process."""
