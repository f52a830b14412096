"""Presence shared by every worker of a cluster, in Redis.

The same methods as ``server.chat.presence.Presence``. Each change that must be atomic across
workers is one Lua script, run by Redis as a whole: claiming a nick (or taking it back for its
session), renaming, joining under the caps, leaving, closing a room as its owner, forgetting
a client. Keys (under one prefix):

    conn:<sid>            hash: nick, its two keys (folded, shape), session key, worker
    nick:<folded>         the sid holding the nick of that key (server.chat.names.fold)
    nickshape:<shape>     the sid holding the nick of that shape (server.chat.names.shape)
    rooms:<sid>           sorted set: the client's rooms, scored by join order
    members:<room>        sorted set: the room's sids, scored by join order (lowest: owner)
    roomfold:<folded>     the room with members whose name has that key
    roomshape:<shape>     the room with members whose name has that shape
    roomkeys:<room>       hash: a room's two keys, while it has members
    seq                   the join order counter
    workers               the workers that have announced themselves
    worker:<id>:alive     set with a time to live, renewed by the worker's heartbeat
    worker:<id>:sids      the clients connected to that worker

A worker whose heartbeat lapses is dead: the first live worker to notice takes it out of
``workers`` (one SREM, so once) and forgets its clients, announcing their leaves.
"""
import functools
import logging
import time

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from server.chat.names import fold, shape
from server.chat.presence import (Arrival, Departure, guest_nick, lookalike_room, nick_taken,
                                  not_owner, room_full, too_many_rooms)
from server.errors import ClientError

log = logging.getLogger(__name__)

PREFIX = 'relay:presence:'
# Connections to Redis one worker may hold at once; callers beyond wait for one.
POOL_SIZE = 50

# Shared by the scripts below: let go of keys, forget a client, returning {nick, rooms} (nil if
# unknown), and Redis' own clock in milliseconds, so that workers whose clocks differ agree on
# deadlines. A room's keys go with its last member.
_COMMON = """
local p = ARGV[1]
local function release(key, holder)
  if key and redis.call('GET', key) == holder then redis.call('DEL', key) end
end
local function release_nick(sid, folded, shape)
  release(folded and p..'nick:'..folded, sid)
  release(shape and p..'nickshape:'..shape, sid)
end
local function leave_room(sid, room)
  redis.call('ZREM', p..'members:'..room, sid)
  if redis.call('EXISTS', p..'members:'..room) == 1 then return end
  local keys = redis.call('HMGET', p..'roomkeys:'..room, 'folded', 'shape')
  release(keys[1] and p..'roomfold:'..keys[1], room)
  release(keys[2] and p..'roomshape:'..keys[2], room)
  redis.call('DEL', p..'roomkeys:'..room)
end
local function forget(sid)
  local conn = p..'conn:'..sid
  local info = redis.call('HMGET', conn, 'nick', 'folded', 'worker', 'key', 'shape')
  if not info[1] then return nil end
  local rooms = redis.call('ZRANGE', p..'rooms:'..sid, 0, -1)
  for _, room in ipairs(rooms) do leave_room(sid, room) end
  redis.call('DEL', p..'rooms:'..sid, conn)
  release_nick(sid, info[2], info[5])
  if info[4] ~= '' and redis.call('GET', p..'session:'..info[4]) == sid then
    redis.call('DEL', p..'session:'..info[4])
  end
  redis.call('SREM', p..'worker:'..info[3]..':sids', sid)
  redis.call('ZREM', p..'lingering', sid)
  return {info[1], rooms}
end
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
"""

# A session registered already moves to the new connection whole (nick, rooms, join order);
# else the first nick offered (nick, folded, shape: the wanted one, or a guest nick) whose keys
# are both free. Returns {nick, displaced, rooms}, or {} when none was free.
_CONNECT = _COMMON + """
local sid, key, worker = ARGV[2], ARGV[3], ARGV[4]
local holder = key ~= '' and redis.call('GET', p..'session:'..key)
if holder and redis.call('EXISTS', p..'conn:'..holder) == 1 then
  local displaced = holder
  if redis.call('ZREM', p..'lingering', holder) == 1 then displaced = '' end
  local info = redis.call('HMGET', p..'conn:'..holder, 'nick', 'folded', 'worker', 'shape')
  redis.call('DEL', p..'conn:'..holder)
  redis.call('HSET', p..'conn:'..sid, 'nick', info[1], 'folded', info[2], 'key', key,
             'worker', worker)
  if info[4] then
    redis.call('HSET', p..'conn:'..sid, 'shape', info[4])
    redis.call('SET', p..'nickshape:'..info[4], sid)
  end
  local entries = redis.call('ZRANGE', p..'rooms:'..holder, 0, -1, 'WITHSCORES')
  local rooms = {}
  for i = 1, #entries, 2 do
    redis.call('ZREM', p..'members:'..entries[i], holder)
    redis.call('ZADD', p..'members:'..entries[i], entries[i + 1], sid)
    rooms[#rooms + 1] = entries[i]
  end
  if #rooms > 0 then redis.call('RENAME', p..'rooms:'..holder, p..'rooms:'..sid) end
  redis.call('SET', p..'nick:'..info[2], sid)
  redis.call('SET', p..'session:'..key, sid)
  redis.call('SREM', p..'worker:'..info[3]..':sids', holder)
  redis.call('SADD', p..'worker:'..worker..':sids', sid)
  return {info[1], displaced, rooms}
end
for i = 5, #ARGV, 3 do
  local display, folded, shape = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  if redis.call('EXISTS', p..'nick:'..folded, p..'nickshape:'..shape) == 0 then
    redis.call('HSET', p..'conn:'..sid, 'nick', display, 'folded', folded, 'shape', shape,
               'key', key, 'worker', worker)
    redis.call('SET', p..'nick:'..folded, sid)
    redis.call('SET', p..'nickshape:'..shape, sid)
    if key ~= '' then redis.call('SET', p..'session:'..key, sid) end
    redis.call('SADD', p..'worker:'..worker..':sids', sid)
    return {display, '', {}}
  end
end
return {}
"""

_DISCONNECT = _COMMON + """
return forget(ARGV[2]) or {}
"""

_LINGER = _COMMON + """
local sid = ARGV[2]
if redis.call('EXISTS', p..'conn:'..sid) == 0 then return 0 end
redis.call('ZADD', p..'lingering', now_ms() + tonumber(ARGV[3]), sid)
return 1
"""

# Each due client is forgotten inside the script, so two workers never both announce it.
_EXPIRE = _COMMON + """
local due = redis.call('ZRANGEBYSCORE', p..'lingering', '-inf', now_ms(), 'LIMIT', 0, 200)
local forgotten = {}
for _, sid in ipairs(due) do
  local departure = forget(sid)
  if departure then forgotten[#forgotten + 1] = {sid, departure[1], departure[2]} end
end
return forgotten
"""

_SET_NICK = _COMMON + """
local sid, display, folded, shape = ARGV[2], ARGV[3], ARGV[4], ARGV[5]
for _, key in ipairs({p..'nick:'..folded, p..'nickshape:'..shape}) do
  local holder = redis.call('GET', key)
  if holder and holder ~= sid then return {'taken'} end
end
local conn = p..'conn:'..sid
local old = redis.call('HMGET', conn, 'nick', 'folded', 'shape')
if not old[1] then return {'gone'} end
release_nick(sid, old[2], old[3])
redis.call('SET', p..'nick:'..folded, sid)
redis.call('SET', p..'nickshape:'..shape, sid)
redis.call('HSET', conn, 'nick', display, 'folded', folded, 'shape', shape)
return {'ok', old[1]}
"""

# A room takes its name's keys with its first member; a name whose key another room with
# members holds is refused, naming that room.
_JOIN = """
local p, sid, room, max_rooms, max_members = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local folded, shape = ARGV[6], ARGV[7]
local rooms_key, members_key = p..'rooms:'..sid, p..'members:'..room
if redis.call('EXISTS', p..'conn:'..sid) == 0 then return {'gone'} end
if redis.call('ZSCORE', rooms_key, room) then return {'member'} end
for _, key in ipairs({p..'roomfold:'..folded, p..'roomshape:'..shape}) do
  local live = redis.call('GET', key)
  if live and live ~= room then return {'lookalike', live} end
end
if max_rooms ~= '' and redis.call('ZCARD', rooms_key) >= tonumber(max_rooms) then
  return {'too_many_rooms'}
end
if max_members ~= '' and redis.call('ZCARD', members_key) >= tonumber(max_members) then
  return {'room_full'}
end
local order = redis.call('INCR', p..'seq')
redis.call('ZADD', rooms_key, order, room)
redis.call('ZADD', members_key, order, sid)
redis.call('SET', p..'roomfold:'..folded, room)
redis.call('SET', p..'roomshape:'..shape, room)
redis.call('HSET', p..'roomkeys:'..room, 'folded', folded, 'shape', shape)
return {'joined'}
"""

_LEAVE = _COMMON + """
local sid, room = ARGV[2], ARGV[3]
leave_room(sid, room)
return redis.call('ZREM', p..'rooms:'..sid, room)
"""

_CLOSE_ROOM = _COMMON + """
local room, by = ARGV[2], ARGV[3]
local sids = redis.call('ZRANGE', p..'members:'..room, 0, -1)
if sids[1] ~= by then return {'forbidden'} end
for _, sid in ipairs(sids) do
  redis.call('ZREM', p..'rooms:'..sid, room)
  leave_room(sid, room)
end
return {'ok', unpack(sids)}
"""

_MEMBERS = """
local p, room = ARGV[1], ARGV[2]
local sids = redis.call('ZRANGE', p..'members:'..room, 0, -1)
local nicks = {}
for i, sid in ipairs(sids) do nicks[i] = redis.call('HGET', p..'conn:'..sid, 'nick') or '' end
return nicks
"""

_CLAIM_DEAD_WORKER = """
local p, worker = ARGV[1], ARGV[2]
if redis.call('EXISTS', p..'worker:'..worker..':alive') == 1 then return {} end
if redis.call('SREM', p..'workers', worker) == 0 then return {} end
return {'dead', unpack(redis.call('SMEMBERS', p..'worker:'..worker..':sids'))}
"""


def unavailable_when_redis_fails(method):
    """Turn a Redis outage into the clear ``unavailable`` refusal instead of a crash."""
    @functools.wraps(method)
    def guarded(self, *args, **kwargs):
        try:
            return method(self, *args, **kwargs)
        except redis.RedisError as error:
            log.warning('presence unavailable: %s', type(error).__name__)
            raise ClientError('unavailable', 'the server cannot reach its shared state; '
                                             'try again shortly') from error
    return guarded


class RedisPresence:
    """Connected clients, their nicks and their rooms, shared by the workers through Redis."""

    def __init__(self, url, worker_id, nick_factory=guest_nick, max_rooms_per_client=None,
                 max_room_members=None, heartbeat_ttl=10.0, prefix=PREFIX):
        self.worker_id = worker_id
        self.max_rooms_per_client = max_rooms_per_client
        self.max_room_members = max_room_members
        self.heartbeat_ttl = heartbeat_ttl
        self._nick_factory = nick_factory
        self._prefix = prefix
        self._registered = False
        # This worker's own clients, whose nick and session key only this worker changes:
        # read here without a round trip, and still known while Redis is out of reach.
        self._local = {}
        # No retries: a script whose reply was lost may have run, and running one twice is not
        # always harmless (a second disconnect finds nothing to announce). A failed call is
        # refused as unavailable and the client tries again.
        # A bounded pool that callers wait for (up to the same 5 s), never one that fails when
        # many clients join at once: each call holds a connection only for its round trip.
        self._pool = redis.BlockingConnectionPool.from_url(
            url, max_connections=POOL_SIZE, timeout=5, decode_responses=True, socket_timeout=5,
            socket_connect_timeout=5, retry=Retry(NoBackoff(), 0))
        self._redis = redis.Redis(connection_pool=self._pool)
        # Clients whose disconnect could not be told to Redis: {sid: when their grace ends}.
        # The next expire() that reaches Redis hands them over, so none is left a ghost.
        self._unfinished = {}
        self._scripts = {name: self._redis.register_script(source) for name, source in (
            ('connect', _CONNECT), ('disconnect', _DISCONNECT), ('set_nick', _SET_NICK),
            ('linger', _LINGER), ('expire', _EXPIRE),
            ('join', _JOIN), ('leave', _LEAVE), ('close_room', _CLOSE_ROOM),
            ('members', _MEMBERS), ('claim_dead_worker', _CLAIM_DEAD_WORKER))}

    def _run(self, script, *args):
        return self._scripts[script](args=[self._prefix, *('' if a is None else a for a in args)])

    def _key(self, *parts):
        return self._prefix + ':'.join(parts)

    @unavailable_when_redis_fails
    def connect(self, sid, wanted=None, key=None):
        """Register a client under ``wanted`` if free or its session's, else a guest nick."""
        result = self._run('connect', sid, key, self.worker_id, *self._candidate(wanted))
        while not result:
            result = self._run('connect', sid, key, self.worker_id, *self._candidate(None))
        nick, displaced, rooms = result
        self._local.pop(displaced, None)
        self._local[sid] = {'nick': nick, 'key': key}
        return Arrival(nick, displaced or None, tuple(rooms))

    def _candidate(self, nick):
        """Return a nick and its two keys as script arguments; a guest nick if none."""
        nick = nick or self._nick_factory()
        return nick, fold(nick), shape(nick)

    def disconnect(self, sid):
        """Forget a client; return its Departure, or None if it was not registered.

        Never fails: while Redis is out of reach the client is forgotten by a later
        ``expire()``, which returns its Departure then.
        """
        self._local.pop(sid, None)
        try:
            return self._departure(self._run('disconnect', sid))
        except redis.RedisError as error:
            self._leave_unfinished(sid, 0, error)
            return None

    def linger(self, sid, seconds):
        """Keep a gone client's registration ``seconds`` longer: its session may come back.

        Never fails, as ``disconnect`` does not; returns whether the client was registered.
        """
        self._local.pop(sid, None)
        try:
            return bool(self._run('linger', sid, int(seconds * 1000)))
        except redis.RedisError as error:
            self._leave_unfinished(sid, seconds, error)
            return False

    def _leave_unfinished(self, sid, seconds, error):
        log.warning('presence unavailable at a disconnect (%s); told later', type(error).__name__)
        self._unfinished[sid] = time.monotonic() + seconds

    def expire(self):
        """Forget the lingering clients (of any worker) whose time is up; [(sid, Departure)].

        Each is forgotten inside one script, so one worker alone announces it.
        """
        try:
            self._hand_over_unfinished()
            return [(sid, Departure(nick, list(rooms))) for sid, nick, rooms in
                    self._run('expire')]
        except redis.RedisError as error:
            log.warning('could not expire lingering clients: %s', type(error).__name__)
            return []

    def _hand_over_unfinished(self):
        """Tell Redis of the disconnects it missed, each lingering for what is left of its
        grace (a session that came back meanwhile has taken its registration already)."""
        now = time.monotonic()
        for sid, until in list(self._unfinished.items()):
            self._run('linger', sid, max(0, int((until - now) * 1000)))
            del self._unfinished[sid]

    @unavailable_when_redis_fails
    def lingering(self):
        """Return how many gone clients the cluster still keeps."""
        return self._redis.zcard(self._key('lingering'))

    @staticmethod
    def _departure(result):
        return Departure(result[0], list(result[1])) if result else None

    @unavailable_when_redis_fails
    def set_nick(self, sid, nick):
        """Give the client a new nick; return the old one. Nicks are unique, ignoring case and
        look-alike characters."""
        result = self._run('set_nick', sid, nick, fold(nick), shape(nick))
        if result[0] == 'taken':
            raise nick_taken(nick)
        if result[0] == 'gone':
            raise KeyError(sid)
        if sid in self._local:
            self._local[sid]['nick'] = nick
        return result[1]

    @unavailable_when_redis_fails
    def key(self, sid):
        """Return the session key of a connected client."""
        return self._field(sid, 'key')

    @unavailable_when_redis_fails
    def sid_of(self, nick):
        """Return the sid of the client holding ``nick`` (ignoring case and look-alike
        characters), or None."""
        return self._redis.get(self._key('nick', fold(nick)))

    @unavailable_when_redis_fails
    def is_connected(self, sid):
        """Return whether the client is registered."""
        return sid in self._local or bool(self._redis.exists(self._key('conn', sid)))

    @unavailable_when_redis_fails
    def nick(self, sid):
        """Return the client's nick."""
        return self._field(sid, 'nick')

    def _field(self, sid, field):
        if sid in self._local:
            return self._local[sid][field]
        value = self._redis.hget(self._key('conn', sid), field)
        if value is None:
            raise KeyError(sid)
        return value

    @unavailable_when_redis_fails
    def join(self, sid, room):
        """Add the client to the room within the caps; return False if it was a member already.

        Refused as ``invalid_room`` when the name looks like that of another room with members.
        """
        result = self._run('join', sid, room, _cap(self.max_rooms_per_client),
                           _cap(self.max_room_members), fold(room), shape(room))
        if result[0] == 'lookalike':
            raise lookalike_room(room, result[1])
        if result[0] == 'too_many_rooms':
            raise too_many_rooms(self.max_rooms_per_client)
        if result[0] == 'room_full':
            raise room_full(room)
        if result[0] == 'gone':
            raise KeyError(sid)
        return result[0] == 'joined'

    @unavailable_when_redis_fails
    def leave(self, sid, room):
        """Remove the client from the room; return False if it was not a member."""
        return bool(self._run('leave', sid, room))

    @unavailable_when_redis_fails
    def is_member(self, sid, room):
        """Return whether the client is in the room."""
        return self._redis.zscore(self._key('rooms', sid), room) is not None

    @unavailable_when_redis_fails
    def rooms(self, sid):
        """Return the rooms the client is in, sorted."""
        return sorted(self._redis.zrange(self._key('rooms', sid), 0, -1))

    @unavailable_when_redis_fails
    def member_count(self, room):
        """Return how many clients are in the room."""
        return self._redis.zcard(self._key('members', room))

    @unavailable_when_redis_fails
    def room_count(self, sid):
        """Return how many rooms the client is in."""
        return self._redis.zcard(self._key('rooms', sid))

    @unavailable_when_redis_fails
    def owner(self, room):
        """Return the sid of the room's longest-standing member (who may close it), or None."""
        first = self._redis.zrange(self._key('members', room), 0, 0)
        return first[0] if first else None

    @unavailable_when_redis_fails
    def close_room(self, room, by):
        """Remove every member from the room, if ``by`` owns it; return their sids."""
        result = self._run('close_room', room, by)
        if result[0] == 'forbidden':
            raise not_owner()
        return list(result[1:])

    @unavailable_when_redis_fails
    def members(self, room):
        """Return the nicks in the room, sorted without regard to case."""
        return sorted(filter(None, self._run('members', room)), key=str.casefold)

    def heartbeat(self):
        """Renew this worker's heartbeat; return False if the others had given it up for dead.

        While Redis cannot be reached this says nothing: the next beat tries again.
        """
        alive = self._key('worker', self.worker_id, 'alive')
        try:
            with self._redis.pipeline() as pipe:
                pipe.set(alive, '1', px=int(self.heartbeat_ttl * 1000))
                pipe.sadd(self._key('workers'), self.worker_id)
                added = pipe.execute()[1]
        except redis.RedisError as error:
            log.warning('heartbeat failed: %s', type(error).__name__)
            return True
        given_up = self._registered and added == 1
        self._registered = True
        return not given_up

    def reap(self):
        """Forget the clients of workers whose heartbeat lapsed; return [(sid, Departure)].

        Each dead worker is claimed by one live worker only, so each leave is announced once.
        """
        try:
            return self._reap()
        except redis.RedisError as error:
            log.warning('could not look for dead workers: %s', type(error).__name__)
            return []

    def _reap(self):
        reaped = []
        for worker in self._redis.smembers(self._key('workers')):
            if worker == self.worker_id:
                continue
            claimed = self._run('claim_dead_worker', worker)
            if not claimed:
                continue
            sids = claimed[1:]
            log.warning('worker %s stopped answering; forgetting its %d clients', worker, len(sids))
            for sid in sids:
                departure = self._departure(self._run('disconnect', sid))
                if departure is not None:
                    reaped.append((sid, departure))
            self._redis.delete(self._key('worker', worker, 'sids'))
        return reaped

    def reachable(self):
        """Return whether Redis answers now."""
        try:
            return bool(self._redis.ping())
        except redis.RedisError:
            return False

    def close(self):
        """Leave the cluster cleanly (no heartbeat left to lapse) and close the connection."""
        try:
            if self._registered:
                self._redis.srem(self._key('workers'), self.worker_id)
                self._redis.delete(self._key('worker', self.worker_id, 'alive'))
        except redis.RedisError:
            log.warning('could not leave the cluster cleanly; the others will notice')
        finally:
            self._redis.close()
            self._pool.disconnect()


def _cap(limit):
    return '' if limit is None else str(limit)
