"""Nicks and room names that pass for someone else's (issue 10's probes), refused or mapped,
against the in-process and the Redis presence alike."""
import pytest

from server.extensions import socketio
from tests.support.presence_apps import app_on_each_presence as app  # noqa: F401
from tests.handlers.test_chat_namespace import NS, ask, connect, events

CYRILLIC_A = '\u0430lice'
FULLWIDTH = '\uff41\uff4c\uff49\uff43\uff45'
ACCENTED = 'alice\u0301'
PRIVATE_USE = 'ali\ue000ce'
CAPITAL_I = 'aIice'
GREEK_TOM = '\u03a4\u039f\u039c'


def greeted(app, nick):
    """Connect asking for ``nick``; return the client and the nick its greeting gives it."""
    client = socketio.test_client(app, namespace=NS, auth={'nick': nick})
    (greeting,) = events(client)
    client.nick = greeting['nick']
    return client


@pytest.mark.parametrize('lookalike', [CYRILLIC_A, FULLWIDTH, ACCENTED, 'ALICE', 'a1ice',
                                       CAPITAL_I])
def test_set_nick_refuses_a_look_alike_of_a_nick_online(app, lookalike):
    alice, mallory = greeted(app, 'alice'), connect(app)
    ask(alice, 'join', {'room': 'lobby'})
    ask(mallory, 'join', {'room': 'lobby'})
    events(alice), events(mallory)
    ack = ask(mallory, 'set_nick', {'nick': lookalike})
    assert ack['error']['code'] == 'nick_taken'
    assert 'taken, or looks like one that is' in ack['error']['message']
    assert events(alice) == [] and events(mallory) == []
    assert ask(alice, 'room_members', {'room': 'lobby'})['members'] == sorted(
        ['alice', mallory.nick], key=str.casefold)


def test_set_nick_refuses_look_alikes_in_capitals(app):
    tom, mallory = greeted(app, 'TOM'), connect(app)
    assert ask(mallory, 'set_nick', {'nick': GREEK_TOM})['error']['code'] == 'nick_taken'
    tom.disconnect(namespace=NS)
    assert ask(mallory, 'set_nick', {'nick': GREEK_TOM}) == {'ok': True, 'nick': GREEK_TOM}


def test_set_nick_refuses_private_use_characters_saying_so(app):
    mallory = connect(app)
    ack = ask(mallory, 'set_nick', {'nick': PRIVATE_USE})
    assert ack['error'] == {'code': 'invalid_nick', 'message':
                            'the nick may not contain U+E000, a private-use character'}
    assert events(mallory) == []


@pytest.mark.parametrize('sent, shown', [(FULLWIDTH, 'alice'), (ACCENTED, 'alic\u00e9'),
                                         ('  Ana \u3000 Maria ', 'Ana Maria')])
def test_set_nick_shows_the_precis_form_to_everyone(app, sent, shown):
    ana, bob = connect(app), connect(app)
    for client in (ana, bob):
        ask(client, 'join', {'room': 'lobby'})
    events(ana), events(bob)
    assert ask(ana, 'set_nick', {'nick': sent}) == {'ok': True, 'nick': shown}
    (rename,) = events(bob, 'room_info')
    assert rename['nick'] == shown and rename['msg'] == f'{ana.nick} is now known as {shown}'
    assert ask(bob, 'room_message', {'room': 'lobby', 'text': 'hi'})['ok'] is True
    assert ask(bob, 'direct_message', {'to': sent, 'text': 'psst'})['to'] == shown


def test_a_fullwidth_nick_asked_for_at_connect_is_shown_in_ascii_and_then_taken(app):
    first = greeted(app, FULLWIDTH)
    assert first.nick == 'alice'
    for lookalike in ('alice', FULLWIDTH, CYRILLIC_A, ACCENTED, CAPITAL_I):
        assert greeted(app, lookalike).nick.startswith('guest-')


@pytest.mark.parametrize('nick', [PRIVATE_USE, 'alice\u200b', '\u0301alice'])
def test_a_nick_refused_at_connect_gives_a_guest_nick(app, nick):
    assert greeted(app, nick).nick.startswith('guest-')


def test_a_direct_message_finds_the_nick_however_it_is_spelled(app):
    greeted(app, 'Alice')
    bob = connect(app)
    for spelling in ('alice', FULLWIDTH, CYRILLIC_A):
        ack = ask(bob, 'direct_message', {'to': spelling, 'text': 'hi'})
        assert (ack['ok'], ack['to']) == (True, 'Alice')
        assert ask(bob, 'nick_status', {'nick': spelling})['online'] is True


@pytest.mark.parametrize('lookalike', ['L\u043ebby', 'LOBBY', 'L0bby', 'Lobby\u0301'])
def test_join_refuses_a_look_alike_of_a_room_with_members_naming_it(app, lookalike):
    ana, mallory, outsider = connect(app), connect(app), connect(app)
    ask(ana, 'join', {'room': 'Lobby'})
    events(ana)
    ack = ask(mallory, 'join', {'room': lookalike})
    assert ack['ok'] is False and ack['error']['code'] == 'invalid_room'
    assert 'looks like that of the room "Lobby"' in ack['error']['message']
    assert 'join "Lobby" instead' in ack['error']['message']
    assert events(ana) == [] and events(mallory) == []
    assert ask(outsider, 'room_members', {'room': 'Lobby'})['members'] == [ana.nick]
    assert ask(mallory, 'room_message', {'room': lookalike, 'text': 'hi'})['ok'] is False
    assert ask(mallory, 'join', {'room': 'Lobby'})['room'] == 'Lobby'


def test_a_room_name_is_shown_in_its_precis_form(app):
    ana, bob = connect(app), connect(app)
    ack = ask(ana, 'join', {'room': '\uff2c\uff4f\uff42\uff42\uff59'})  # fullwidth
    assert (ack['ok'], ack['room']) == (True, 'Lobby')
    (info,) = events(ana, 'room_info')
    assert info['room'] == 'Lobby'
    assert ask(ana, 'room_message', {'room': 'Lobby', 'text': 'hi'})['room'] == 'Lobby'
    ack = ask(bob, 'join', {'room': ' \uff2c\uff4f\uff42\uff42\uff59 '})
    assert ack['room'] == 'Lobby' and ack['members'] == sorted([ana.nick, bob.nick],
                                                               key=str.casefold)


def test_a_room_refuses_private_use_characters(app):
    ack = ask(connect(app), 'join', {'room': 'lob\ue000by'})
    assert ack['error'] == {'code': 'invalid_room', 'message':
                            'the room name may not contain U+E000, a private-use character'}


def test_a_look_alike_room_opens_once_the_room_it_looked_like_is_empty(app):
    ana, mallory = connect(app), connect(app)
    ask(ana, 'join', {'room': 'Lobby'})
    assert ask(mallory, 'join', {'room': 'L\u043ebby'})['ok'] is False
    ask(ana, 'leave', {'room': 'Lobby'})
    assert ask(mallory, 'join', {'room': 'L\u043ebby'})['ok'] is True
    assert ask(ana, 'join', {'room': 'Lobby'})['error']['code'] == 'invalid_room'
