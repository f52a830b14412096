"""Presence bookkeeping, without sockets: one suite for the in-process and the Redis registry."""
import threading
import time

import pytest
import redis

from server.chat.presence import Arrival, Departure, Presence, guest_nick
from server.errors import ClientError


def sequence(*nicks):
    return iter(nicks).__next__


@pytest.fixture(params=['memory', 'redis'])
def make_presence(request):
    """Build a registry of either kind; every one built is closed after the test."""
    built = []

    def make(nick_factory=guest_nick, worker='w1', **caps):
        if request.param == 'memory':
            presence = Presence(nick_factory=nick_factory, **caps)
        else:
            from server.chat.redis_presence import RedisPresence
            presence = RedisPresence(request.getfixturevalue('redis_url'), worker_id=worker,
                                     nick_factory=nick_factory, heartbeat_ttl=0.5, **caps)
        built.append(presence)
        return presence

    yield make
    for presence in built:
        presence.close()


def refusal(call):
    with pytest.raises(ClientError) as refused:
        call()
    return refused.value.code


def test_guest_nicks_look_generated():
    nick = guest_nick()
    assert nick.startswith('guest-') and len(nick) == len('guest-') + 6


def test_connect_gives_each_client_a_nick_nobody_else_holds(make_presence):
    presence = make_presence(nick_factory=sequence('guest-a', 'GUEST-A', 'guest-b'))
    assert presence.connect('s1') == Arrival('guest-a')
    assert presence.connect('s2') == Arrival('guest-b')
    assert presence.nick('s2') == 'guest-b'


def test_join_and_leave_track_members_by_nick(make_presence):
    presence = make_presence(nick_factory=sequence('bob', 'Ana', 'carl'))
    for sid in ('s1', 's2', 's3'):
        presence.connect(sid)
    assert presence.join('s1', 'lobby') is True
    assert presence.join('s1', 'lobby') is False
    presence.join('s2', 'lobby')
    presence.join('s3', 'games')
    assert presence.members('lobby') == ['Ana', 'bob']
    assert presence.is_member('s2', 'lobby') and not presence.is_member('s3', 'lobby')
    assert presence.leave('s2', 'lobby') is True
    assert presence.leave('s2', 'lobby') is False
    assert presence.members('lobby') == ['bob']
    assert presence.members('nowhere') == []


def test_disconnect_returns_the_nick_and_rooms_left_and_frees_the_nick(make_presence):
    presence = make_presence(nick_factory=sequence('same', 'same'))
    presence.connect('s1')
    presence.join('s1', 'b')
    presence.join('s1', 'a')
    assert presence.disconnect('s1') == Departure('same', ['b', 'a'])
    assert not presence.is_connected('s1')
    assert presence.members('a') == [] and presence.rooms('s1') == []
    assert presence.connect('s2').nick == 'same'


def test_disconnect_of_an_unknown_client_is_harmless(make_presence):
    presence = make_presence()
    assert presence.disconnect('ghost') is None
    presence.connect('s1')
    presence.disconnect('s1')
    assert presence.disconnect('s1') is None


def test_set_nick_keeps_nicks_unique_ignoring_case(make_presence):
    presence = make_presence(nick_factory=sequence('guest-1', 'guest-2', 'guest-3'))
    presence.connect('s1')
    presence.connect('s2')
    assert presence.set_nick('s1', 'Ana') == 'guest-1'
    assert refusal(lambda: presence.set_nick('s2', 'ANA')) == 'nick_taken'
    assert presence.set_nick('s1', 'ana') == 'Ana'
    assert presence.sid_of('ANA') == 's1' and presence.sid_of('guest-1') is None
    assert presence.connect('s3', wanted='Ana').nick == 'guest-3'


def test_nicks_are_unique_by_their_look_not_only_their_case(make_presence):
    presence = make_presence()
    presence.connect('s1', wanted='alice')
    guest = presence.connect('s2').nick
    for lookalike in ('\u0430lice', 'ALICE', 'a1ice', 'aIice', 'alicé', '\uff41lice'):
        assert refusal(lambda: presence.set_nick('s2', lookalike)) == 'nick_taken'
    third = presence.connect('s3', wanted='\u0430lice').nick
    assert third.startswith('guest-')
    assert presence.sid_of('\u0430LICE') == 's1' and presence.sid_of('\uff41lice') == 's1'
    assert presence.set_nick('s1', 'TOM') == 'alice'
    assert refusal(lambda: presence.set_nick('s2', '\u03a4\u039f\u039c')) == 'nick_taken'
    assert presence.set_nick('s2', '\u0430lice') == guest  # alice let go of both keys
    presence.disconnect('s1')
    assert presence.set_nick('s3', '\u03a4\u039f\u039c') == third


def test_a_resumed_session_keeps_its_nick_whole(make_presence):
    presence = make_presence()
    presence.connect('old', wanted='Ana', key='k1')
    assert presence.connect('new', key='k1').nick == 'Ana'
    guest = presence.connect('other').nick
    assert refusal(lambda: presence.set_nick('other', '\u0391na')) == 'nick_taken'  # Greek
    presence.disconnect('new')
    assert presence.set_nick('other', '\u0391na') == guest


def test_a_room_cannot_open_beside_a_live_room_that_looks_the_same(make_presence):
    presence = make_presence()
    for sid in ('s1', 's2', 's3'):
        presence.connect(sid)
    presence.join('s1', 'Lobby')
    for lookalike in ('L\u043ebby', 'LOBBY', 'lobby', 'L0bby'):
        with pytest.raises(ClientError) as refused:
            presence.join('s2', lookalike)
        assert refused.value.code == 'invalid_room' and '"Lobby"' in refused.value.message
    assert presence.rooms('s2') == [] and presence.members('L\u043ebby') == []
    assert presence.join('s2', 'Lobby') is True
    presence.leave('s1', 'Lobby')
    presence.disconnect('s2')
    assert presence.join('s3', 'L\u043ebby') is True  # nobody is in Lobby any more
    presence.join('s1', 'Games')
    presence.close_room('Games', by='s1')
    assert presence.join('s3', 'GAMES') is True
    presence.join('s1', 'T\u03bfpics')  # Greek omicron
    presence.disconnect('s1')
    assert presence.join('s3', 'Topics') is True


def test_a_wanted_nick_is_given_when_free(make_presence):
    presence = make_presence(nick_factory=sequence('guest-1'))
    assert presence.connect('s1', wanted='Ana') == Arrival('Ana')
    assert presence.connect('s2', wanted='ana') == Arrival('guest-1')


def test_a_session_takes_its_registration_back_from_its_older_connection(make_presence):
    presence = make_presence(nick_factory=sequence('guest-1', 'guest-2'))
    presence.connect('old', wanted='Ana', key='k1')
    presence.join('old', 'lobby')
    assert presence.connect('stranger', wanted='Ana', key='k2') == Arrival('guest-1')
    assert presence.connect('new', wanted='whatever', key='k1') == Arrival(
        'Ana', displaced='old', rooms=('lobby',))
    assert presence.sid_of('ana') == 'new' and presence.key('new') == 'k1'
    assert presence.members('lobby') == ['Ana'] and presence.is_member('new', 'lobby')
    assert presence.owner('lobby') == 'new'
    # The older connection's own goodbye, when it comes, has nothing left to take.
    assert presence.disconnect('old') is None
    assert presence.members('lobby') == ['Ana']


def test_a_gone_client_lingers_and_its_session_comes_back_unnoticed(make_presence):
    presence = make_presence(nick_factory=sequence('guest-1'))
    presence.connect('s1', wanted='Ana', key='k1')
    presence.join('s1', 'lobby')
    assert presence.linger('s1', 30) is True
    assert presence.members('lobby') == ['Ana'] and presence.expire() == []
    assert presence.connect('s2', key='k1') == Arrival('Ana', rooms=('lobby',))
    assert presence.lingering() == 0 and presence.members('lobby') == ['Ana']
    assert presence.linger('nobody', 30) is False


def test_a_lingering_client_that_does_not_come_back_leaves_once(make_presence):
    presence = make_presence()
    presence.connect('s1', wanted='Ana', key='k1')
    presence.join('s1', 'lobby')
    presence.linger('s1', 0.2)
    deadline = time.monotonic() + 5
    expired = []
    while not expired and time.monotonic() < deadline:
        time.sleep(0.05)
        expired = presence.expire()
    assert expired == [('s1', Departure('Ana', ['lobby']))]
    assert presence.expire() == [] and presence.members('lobby') == []
    assert presence.connect('s2', wanted='Ana', key='k2').nick == 'Ana'


def test_joins_are_refused_beyond_the_caps(make_presence):
    presence = make_presence(max_rooms_per_client=2, max_room_members=2)
    for sid in ('s1', 's2', 's3'):
        presence.connect(sid)
    presence.join('s1', 'a')
    presence.join('s1', 'b')
    assert refusal(lambda: presence.join('s1', 'c')) == 'too_many_rooms'
    assert presence.join('s1', 'a') is False  # already a member: no cap applies
    presence.join('s2', 'a')
    assert refusal(lambda: presence.join('s3', 'a')) == 'room_full'
    assert presence.members('a') == sorted([presence.nick('s1'), presence.nick('s2')],
                                           key=str.casefold)
    presence.disconnect('s2')
    assert presence.join('s3', 'a') is True


def test_owner_is_the_longest_standing_member_and_only_it_may_close_the_room(make_presence):
    presence = make_presence(nick_factory=sequence('a', 'b', 'c'))
    for sid in ('s1', 's2', 's3'):
        presence.connect(sid)
        presence.join(sid, 'lobby')
    assert presence.owner('lobby') == 's1'
    presence.leave('s1', 'lobby')
    assert presence.owner('lobby') == 's2'
    assert presence.member_count('lobby') == 2 and presence.room_count('s2') == 1
    assert refusal(lambda: presence.close_room('lobby', by='s3')) == 'forbidden'
    assert presence.close_room('lobby', by='s2') == ['s2', 's3']
    assert presence.members('lobby') == [] and presence.owner('lobby') is None
    assert presence.rooms('s2') == []


def test_two_workers_share_nicks_seats_and_ownership(redis_url):
    from server.chat.redis_presence import RedisPresence
    first = RedisPresence(redis_url, worker_id='w1', max_room_members=2)
    second = RedisPresence(redis_url, worker_id='w2', max_room_members=2)
    try:
        assert first.connect('a1', wanted='Ana').nick == 'Ana'
        assert second.connect('b1', wanted='ANA').nick != 'ANA'
        second.connect('b2')
        first.connect('a2')
        first.join('a1', 'lobby')
        second.join('b1', 'lobby')
        assert refusal(lambda: first.join('a2', 'lobby')) == 'room_full'
        assert second.members('lobby') == first.members('lobby')
        assert refusal(lambda: second.close_room('lobby', by='b1')) == 'forbidden'
        assert second.sid_of('ana') == 'a1' and second.nick('a1') == 'Ana'
    finally:
        first.close()
        second.close()


def test_the_clients_of_a_worker_that_stopped_answering_are_forgotten_once(redis_url):
    from server.chat.redis_presence import RedisPresence
    dead = RedisPresence(redis_url, worker_id='dead', heartbeat_ttl=0.2)
    alive = RedisPresence(redis_url, worker_id='alive', heartbeat_ttl=0.2)
    other = RedisPresence(redis_url, worker_id='other', heartbeat_ttl=0.2)
    try:
        for registry in (dead, alive, other):
            registry.heartbeat()
        dead.connect('d1', wanted='Dee')
        dead.join('d1', 'lobby')
        alive.connect('a1', wanted='Ana')
        alive.join('a1', 'lobby')
        assert alive.reap() == [] and other.reap() == []
        deadline = time.monotonic() + 5
        reaped = []
        while not reaped and time.monotonic() < deadline:
            time.sleep(0.1)
            alive.heartbeat()
            other.heartbeat()
            reaped = alive.reap() + other.reap()
        assert reaped == [('d1', Departure('Dee', ['lobby']))]
        assert alive.reap() == [] and other.reap() == []
        assert alive.members('lobby') == ['Ana'] and alive.sid_of('Dee') is None
    finally:
        for registry in (dead, alive, other):
            registry.close()


def test_many_callers_at_once_wait_for_a_redis_connection_rather_than_fail(redis_url):
    from server.chat.redis_presence import POOL_SIZE, RedisPresence
    presence = RedisPresence(redis_url, worker_id='w1')
    callers = 4 * POOL_SIZE
    for n in range(callers):
        presence.connect(f's{n}')
    failures = []
    start = threading.Barrier(callers)

    def join(sid):
        start.wait()
        try:
            presence.join(sid, 'lobby')
        except ClientError as error:
            failures.append(error.code)

    threads = [threading.Thread(target=join, args=(f's{n}',)) for n in range(callers)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(10)
        assert failures == [] and presence.member_count('lobby') == callers
    finally:
        presence.close()


def test_a_disconnect_redis_did_not_hear_of_is_told_when_it_answers_again(redis_url):
    from server.chat.redis_presence import RedisPresence
    presence = RedisPresence(redis_url, worker_id='w1')
    other = RedisPresence(redis_url, worker_id='w2')
    admin = redis.Redis.from_url(redis_url)
    try:
        presence.connect('s1', wanted='Ana')
        presence.join('s1', 'lobby')
        # Unreachable as far as the workers can tell: their connections are dropped and new
        # ones are refused, while the data stays.
        admin.config_set('requirepass', 'for-a-moment')
        admin.client_kill_filter(_type='normal', skipme=True)
        assert presence.linger('s1', 0.2) is False  # no error for the disconnect handler
        assert presence.expire() == []
        admin.config_set('requirepass', '')
        deadline = time.monotonic() + 5
        forgotten = []
        while not forgotten and time.monotonic() < deadline:
            time.sleep(0.05)
            forgotten = presence.expire() + other.expire()
        assert forgotten == [('s1', Departure('Ana', ['lobby']))]
        assert other.sid_of('Ana') is None and other.members('lobby') == []
    finally:
        admin.config_set('requirepass', '')
        admin.close()
        presence.close()
        other.close()
