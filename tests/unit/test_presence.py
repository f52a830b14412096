"""Presence bookkeeping, without sockets."""
import pytest

from server.chat.presence import Presence, guest_nick
from server.errors import ClientError


def sequence(*nicks):
    return iter(nicks).__next__


def test_guest_nicks_look_generated():
    nick = guest_nick()
    assert nick.startswith('guest-') and len(nick) == len('guest-') + 6


def test_connect_gives_each_client_a_nick_nobody_else_holds():
    presence = Presence(nick_factory=sequence('guest-a', 'GUEST-A', 'guest-b'))
    assert presence.connect('s1') == 'guest-a'
    assert presence.connect('s2') == 'guest-b'
    assert presence.nick('s2') == 'guest-b'


def test_join_and_leave_track_members_by_nick():
    presence = Presence(nick_factory=sequence('bob', 'Ana', 'carl'))
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


def test_disconnect_returns_the_rooms_left_and_frees_the_nick():
    presence = Presence(nick_factory=sequence('same', 'same'))
    presence.connect('s1')
    presence.join('s1', 'b')
    presence.join('s1', 'a')
    assert presence.disconnect('s1') == ['b', 'a']
    assert not presence.is_connected('s1')
    assert presence.members('a') == [] and presence.rooms('s1') == []
    assert presence.connect('s2') == 'same'


def test_disconnect_of_an_unknown_client_is_harmless():
    assert Presence().disconnect('ghost') == []


def test_set_nick_keeps_nicks_unique_ignoring_case():
    presence = Presence(nick_factory=sequence('guest-1', 'guest-2', 'guest-3'))
    presence.connect('s1')
    presence.connect('s2')
    assert presence.set_nick('s1', 'Ana') == 'guest-1'
    with pytest.raises(ClientError) as taken:
        presence.set_nick('s2', 'ANA')
    assert taken.value.code == 'nick_taken'
    assert presence.set_nick('s1', 'ana') == 'Ana'
    assert presence.sid_of('ANA') == 's1' and presence.sid_of('guest-1') is None
    assert presence.connect('s3', wanted='Ana') == 'guest-3'


def test_a_wanted_nick_is_given_when_free():
    presence = Presence(nick_factory=sequence('guest-1'))
    assert presence.connect('s1', wanted='Ana') == 'Ana'
    assert presence.connect('s2', wanted='ana') == 'guest-1'


def test_owner_is_the_longest_standing_member_and_close_room_empties_it():
    presence = Presence(nick_factory=sequence('a', 'b', 'c'))
    for sid in ('s1', 's2', 's3'):
        presence.connect(sid)
        presence.join(sid, 'lobby')
    assert presence.owner('lobby') == 's1'
    presence.leave('s1', 'lobby')
    assert presence.owner('lobby') == 's2'
    assert presence.member_count('lobby') == 2 and presence.room_count('s2') == 1
    assert presence.close_room('lobby') == ['s2', 's3']
    assert presence.members('lobby') == [] and presence.owner('lobby') is None
    assert presence.rooms('s2') == []
