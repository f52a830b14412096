"""What the page asks about people and rooms: whether a nick is held (nick_status) and who may
close a room (owner), against the in-process and the Redis presence alike."""
import pytest

from tests.support.presence_apps import app_on_each_presence as app  # noqa: F401
from tests.handlers.test_chat_namespace import ask, connect, events


def test_nick_status_says_whether_someone_holds_the_nick_ignoring_case(app):
    ana, bob = connect(app), connect(app)
    ask(bob, 'set_nick', {'nick': 'Bob'})
    assert ask(ana, 'nick_status', {'nick': 'bOB'}) == {'ok': True, 'nick': 'bOB', 'online': True}
    assert ask(ana, 'nick_status', {'nick': 'nobody'}) == \
        {'ok': True, 'nick': 'nobody', 'online': False}
    bob.disconnect(namespace='/chat')
    assert ask(ana, 'nick_status', {'nick': 'Bob'})['online'] is False
    assert events(ana) == []  # asking tells nobody anything


@pytest.mark.parametrize('payload, code', [
    (None, 'bad_request'), ({}, 'bad_request'), ({'nick': ''}, 'invalid_nick'),
    ({'nick': 'x' * 33}, 'invalid_nick'), ({'nick': ['Bob']}, 'bad_request'),
    ({'nick': 'a\nb'}, 'invalid_nick'),
])
def test_a_bad_nick_status_request_is_refused(app, payload, code):
    ana = connect(app)
    reply = ask(ana, 'nick_status', payload)
    assert reply['ok'] is False and reply['error']['code'] == code


def test_the_owner_is_named_on_join_and_in_every_room_info_and_moves_on(app):
    ana, bob = connect(app), connect(app)
    assert ask(ana, 'join', {'room': 'attic'})['owner'] == ana.nick
    assert ask(bob, 'join', {'room': 'attic'})['owner'] == ana.nick
    assert [(info['nick'], info['owner']) for info in events(ana, 'room_info')] == [
        (ana.nick, ana.nick), (bob.nick, ana.nick)]
    events(bob)

    ask(ana, 'set_nick', {'nick': 'Ana'})
    events(ana)
    (info,) = events(bob, 'room_info')
    assert info['kind'] == 'rename' and info['owner'] == 'Ana'

    ask(ana, 'leave', {'room': 'attic'})
    (info,) = events(bob, 'room_info')
    assert info['kind'] == 'leave' and info['owner'] == bob.nick
    assert ask(bob, 'close_room', {'room': 'attic'})['ok'] is True
