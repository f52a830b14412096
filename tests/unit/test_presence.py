"""Presence bookkeeping, without sockets."""
from server.chat.presence import Presence, guest_nick


def sequence(*nicks):
    return iter(nicks).__next__


def test_guest_nicks_look_generated():
    nick = guest_nick()
    assert nick.startswith('guest-') and len(nick) == len('guest-') + 4


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
