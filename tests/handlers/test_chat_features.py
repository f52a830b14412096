"""Nicks, presence, typing, direct messages, history, idempotent sends, limits and caps."""
import time

import pytest

from config import TestingConfig
from server import create_app, shutdown
from server.extensions import socketio
from tests.handlers.test_chat_namespace import NS, ask, connect, events


def make_app(**overrides):
    return create_app(TestingConfig, overrides)


def in_room(app, room, count):
    clients = [connect(app) for _ in range(count)]
    for client in clients:
        ask(client, 'join', {'room': room})
    for client in clients:
        events(client)
    return clients


def test_a_client_may_ask_for_its_nick_when_connecting(app):
    first = socketio.test_client(app, namespace=NS, auth={'nick': '  Ana '})
    assert first.get_received(NS)[0]['args'][0]['nick'] == 'Ana'
    second = socketio.test_client(app, namespace=NS, auth={'nick': 'ana'})
    assert second.get_received(NS)[0]['args'][0]['nick'].startswith('guest-')
    odd = socketio.test_client(app, namespace=NS, auth={'nick': ['not', 'a', 'nick']})
    assert odd.get_received(NS)[0]['args'][0]['nick'].startswith('guest-')


def test_set_nick_renames_and_tells_every_room_of_the_client(app):
    ana, bob = in_room(app, 'lobby', 2)
    ask(ana, 'join', {'room': 'games'})
    events(ana)
    assert ask(ana, 'set_nick', {'nick': ' Ana '}) == {'ok': True, 'nick': 'Ana'}
    infos = events(ana, 'room_info')
    assert sorted(i['room'] for i in infos) == ['games', 'lobby']
    (seen_by_bob,) = events(bob, 'room_info')
    assert seen_by_bob['kind'] == 'rename'
    assert seen_by_bob['msg'] == f'{ana.nick} is now known as Ana'
    assert seen_by_bob['previous_nick'] == ana.nick and seen_by_bob['nick'] == 'Ana'
    assert 'Ana' in seen_by_bob['members'] and ana.nick not in seen_by_bob['members']
    assert ask(bob, 'room_members', {'room': 'lobby'})['members'] == sorted(
        ['Ana', bob.nick], key=str.casefold)


@pytest.mark.parametrize('nick, code', [('ANA', 'nick_taken'), ('', 'invalid_nick'),
                                        ('x' * 33, 'invalid_nick'), ('a\u0000b', 'invalid_nick')])
def test_a_taken_or_invalid_nick_is_refused(app, nick, code):
    ana, bob = in_room(app, 'lobby', 2)
    ask(ana, 'set_nick', {'nick': 'Ana'})
    events(ana), events(bob)
    assert ask(bob, 'set_nick', {'nick': nick})['error']['code'] == code
    assert events(bob) == [] and events(ana) == []


def test_room_members_lists_nicks(app):
    ana, bob = in_room(app, 'lobby', 2)
    assert ask(ana, 'room_members', {'room': 'lobby'}) == {
        'ok': True, 'room': 'lobby', 'members': sorted([ana.nick, bob.nick], key=str.casefold)}
    assert ask(ana, 'room_members', {'room': 'empty'})['members'] == []


def test_typing_goes_to_the_other_members_only_when_it_changes(app):
    ana, bob = in_room(app, 'lobby', 2)
    outsider = connect(app)
    assert ask(ana, 'typing', {'room': 'lobby', 'typing': True}) == {
        'ok': True, 'room': 'lobby', 'typing': True}
    ask(ana, 'typing', {'room': 'lobby', 'typing': True})
    assert events(bob, 'typing') == [{'room': 'lobby', 'nick': ana.nick, 'typing': True}]
    assert events(ana) == [] and events(outsider) == []
    ask(ana, 'room_message', {'room': 'lobby', 'text': 'done typing'})
    assert events(bob, 'typing') == [{'room': 'lobby', 'nick': ana.nick, 'typing': False}]
    assert ask(ana, 'typing', {'room': 'lobby', 'typing': False})['ok'] is True
    assert events(bob, 'typing') == []


def test_typing_needs_membership_and_a_bool(app):
    ana = connect(app)
    assert ask(ana, 'typing', {'room': 'lobby', 'typing': True})['error']['code'] == 'not_in_room'
    ask(ana, 'join', {'room': 'lobby'})
    assert ask(ana, 'typing', {'room': 'lobby', 'typing': 'yes'})['error']['code'] == 'bad_request'


def test_a_typing_flag_expires_by_itself():
    app = make_app(TYPING_TIMEOUT=0.2)
    ana, bob = in_room(app, 'lobby', 2)
    ask(ana, 'typing', {'room': 'lobby', 'typing': True})
    events(bob)
    deadline = time.monotonic() + 3
    stopped = []
    while not stopped and time.monotonic() < deadline:
        time.sleep(0.05)
        stopped = events(bob, 'typing')
    assert stopped == [{'room': 'lobby', 'nick': ana.nick, 'typing': False}]
    expiry = app.extensions['chat'].typing_expiry
    deadline = time.monotonic() + 3
    while expiry.running and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not expiry.running, 'the expiry task should idle once no one is typing'
    ask(ana, 'typing', {'room': 'lobby', 'typing': True})
    assert expiry.running
    app.extensions['chat'].stop_tasks(timeout=2)


def test_leaving_or_disconnecting_clears_typing(app):
    ana, bob, carl = in_room(app, 'lobby', 3)
    ask(ana, 'typing', {'room': 'lobby', 'typing': True})
    ask(carl, 'typing', {'room': 'lobby', 'typing': True})
    events(bob)
    ask(ana, 'leave', {'room': 'lobby'})
    carl.disconnect(namespace=NS)
    stopped = [e for e in events(bob, 'typing')]
    assert {(e['nick'], e['typing']) for e in stopped} == {(ana.nick, False), (carl.nick, False)}


def test_direct_messages_reach_the_recipient_and_are_acked_to_the_sender(app):
    ana, bob, carl = connect(app), connect(app), connect(app)
    ask(bob, 'set_nick', {'nick': 'Bob'})
    ack = ask(ana, 'direct_message', {'to': 'bob', 'text': '<b>psst</b>'})
    assert ack['ok'] is True and ack['from'] == ana.nick and ack['to'] == 'Bob'
    (received,) = events(bob, 'direct_message')
    assert received == {key: ack[key] for key in
                        ('id', 'from', 'to', 'from_id', 'to_id', 'text', 'ts')}
    assert (received['from_id'], received['to_id']) == (ana.user_id, bob.user_id)
    assert received['text'] == '<b>psst</b>'
    assert events(carl) == [] and events(ana) == []
    assert ask(ana, 'direct_message', {'to': 'nobody', 'text': 'hi'})['error']['code'] == \
        'unknown_nick'
    assert ask(ana, 'direct_message', {'to': 'Bob', 'text': ''})['error']['code'] == 'empty_message'


def test_the_longest_standing_member_closes_a_room(app):
    owner, member = in_room(app, 'lobby', 2)
    assert ask(member, 'close_room', {'room': 'lobby'})['error']['code'] == 'forbidden'
    assert ask(owner, 'close_room', {'room': 'lobby'}) == {'ok': True, 'room': 'lobby'}
    for client in (owner, member):
        (info,) = events(client, 'room_info')
        assert info['msg'] == 'Room closing: lobby' and info['closing'] is True
        assert info['kind'] == 'close'
        assert info['members'] == []
    assert ask(member, 'room_message', {'room': 'lobby', 'text': 'x'})['error']['code'] == \
        'not_in_room'
    ask(owner, 'join', {'room': 'lobby'})
    ask(owner, 'room_message', {'room': 'lobby', 'text': 'reopened'})
    assert events(member) == []


def test_close_room_needs_membership(app):
    outsider = connect(app)
    in_room(app, 'lobby', 1)
    assert ask(outsider, 'close_room', {'room': 'lobby'})['error']['code'] == 'not_in_room'


def post(client, room, count):
    return [ask(client, 'room_message', {'room': room, 'text': f'm{n}'})['id']
            for n in range(1, count + 1)]


def test_join_with_since_id_returns_exactly_what_was_missed(app):
    (ana,) = in_room(app, 'lobby', 1)
    post(ana, 'lobby', 5)
    bob = connect(app)
    ack = ask(bob, 'join', {'room': 'lobby', 'since_id': 3})
    assert [m['id'] for m in ack['history']] == [4, 5] and ack['more'] is False
    assert [m['text'] for m in ack['history']] == ['m4', 'm5']


def test_join_without_since_id_returns_the_latest_and_says_if_more_exist():
    app = make_app(HISTORY_LIMIT=3)
    (ana,) = in_room(app, 'lobby', 1)
    post(ana, 'lobby', 5)
    ack = ask(connect(app), 'join', {'room': 'lobby'})
    assert [m['id'] for m in ack['history']] == [3, 4, 5] and ack['more'] is True


def test_history_pages_back_and_forth(app):
    (ana,) = in_room(app, 'lobby', 1)
    post(ana, 'lobby', 6)
    older = ask(ana, 'history', {'room': 'lobby', 'before_id': 5, 'limit': 2})
    assert [m['id'] for m in older['messages']] == [3, 4] and older['more'] is True
    newer = ask(ana, 'history', {'room': 'lobby', 'since_id': 4, 'limit': 5})
    assert [m['id'] for m in newer['messages']] == [5, 6] and newer['more'] is False
    latest = ask(ana, 'history', {'room': 'lobby', 'limit': 2})
    assert [m['id'] for m in latest['messages']] == [5, 6]


@pytest.mark.parametrize('payload, code', [
    ({'room': 'lobby', 'before_id': 2, 'since_id': 1}, 'bad_request'),
    ({'room': 'lobby', 'limit': 0}, 'bad_request'),
    ({'room': 'lobby', 'since_id': 2 ** 64}, 'bad_request'),
    ({'room': 'lobby', 'before_id': -1}, 'bad_request'),
    ({'room': 'elsewhere'}, 'not_in_room'),
])
def test_bad_history_requests_are_refused(app, payload, code):
    in_room(app, 'elsewhere', 1)
    (ana,) = in_room(app, 'lobby', 1)
    assert ask(ana, 'history', payload)['error']['code'] == code


def test_a_retried_send_with_the_same_client_id_is_stored_and_delivered_once(app):
    ana, bob = in_room(app, 'lobby', 2)
    message = {'room': 'lobby', 'text': 'only once', 'client_id': 'c-42'}
    first = ask(ana, 'room_message', message)
    retry = ask(ana, 'room_message', message)
    assert first == {'ok': True, 'id': 1, 'room': 'lobby', 'duplicate': False}
    assert retry == {'ok': True, 'id': 1, 'room': 'lobby', 'duplicate': True}
    assert len(events(bob, 'chat_message')) == 1
    assert [m['text'] for m in ask(bob, 'history', {'room': 'lobby'})['messages']] == ['only once']


def test_over_the_rate_limit_a_client_is_refused_and_others_are_not():
    app = make_app(RATE_LIMIT_PER_SECOND=0.1, RATE_LIMIT_BURST=3, FLOOD_STRIKES=100)
    hasty, calm = connect(app), connect(app)
    replies = [ask(hasty, 'my_event', {'data': 'x'}) for _ in range(4)]
    assert [r['ok'] for r in replies] == [True, True, False, False]  # the connect took one
    assert replies[-1]['error']['code'] == 'rate_limited'
    hasty.emit('my_event', {'data': 'no ack'}, namespace=NS)
    assert events(hasty, 'error')[-1]['error']['code'] == 'rate_limited'
    assert ask(calm, 'my_event', {'data': 'fine'}) == {'ok': True}
    assert hasty.is_connected(NS)


def test_a_client_that_keeps_flooding_is_disconnected():
    app = make_app(RATE_LIMIT_PER_SECOND=0.1, RATE_LIMIT_BURST=2, FLOOD_STRIKES=3)
    flooder, member = in_room(app, 'lobby', 2)
    for _ in range(3):  # the connect and the join spent both tokens
        ask(flooder, 'typing', {'room': 'lobby', 'typing': False})
    assert flooder.is_connected(NS)
    flooder.emit('typing', {'room': 'lobby', 'typing': False}, namespace=NS)
    assert not flooder.is_connected(NS)
    (left,) = events(member, 'room_info')
    assert left['msg'] == 'Member left: lobby' and left['nick'] == flooder.nick


def test_rooms_per_client_and_members_per_room_are_capped():
    app = make_app(MAX_ROOMS_PER_CLIENT=2, MAX_ROOM_MEMBERS=2)
    ana, bob = in_room(app, 'a', 2)
    ask(ana, 'join', {'room': 'b'})
    assert ask(ana, 'join', {'room': 'c'})['error']['code'] == 'too_many_rooms'
    assert ask(ana, 'join', {'room': 'b'})['ok'] is True
    assert ask(connect(app), 'join', {'room': 'a'})['error']['code'] == 'room_full'
    ask(bob, 'leave', {'room': 'a'})
    assert ask(connect(app), 'join', {'room': 'a'})['ok'] is True


def test_nick_length_and_history_page_caps_come_from_the_configuration():
    app = make_app(MAX_NICK_LENGTH=4, MAX_HISTORY_PAGE=3)
    (ana,) = in_room(app, 'lobby', 1)
    assert ask(ana, 'set_nick', {'nick': 'Anna'})['ok'] is True
    assert ask(ana, 'set_nick', {'nick': 'Annie'})['error']['code'] == 'invalid_nick'
    post(ana, 'lobby', 5)
    capped = ask(ana, 'history', {'room': 'lobby', 'limit': 4})
    assert [m['id'] for m in capped['messages']] == [3, 4, 5] and capped['more'] is True
    page = ask(connect(app), 'join', {'room': 'lobby', 'since_id': 0})
    assert [m['id'] for m in page['history']] == [1, 2, 3] and page['more'] is True


def test_an_unknown_event_is_refused(app):
    client = connect(app)
    assert ask(client, 'no_such_event', {})['error']['code'] == 'unknown_event'
    client.emit('on_connect', namespace=NS)
    assert events(client, 'error')[0]['error']['code'] == 'unknown_event'


@pytest.mark.parametrize('event', ['connect', 'disconnect', 'connect_error'])
def test_a_client_cannot_fake_a_lifecycle_event(app, event):
    ana, bob = in_room(app, 'lobby', 2)
    ana.emit(event, {'nick': 'fake'}, namespace=NS)
    assert events(ana) == [] and events(bob) == []
    assert ask(ana, 'room_members', {'room': 'lobby'})['members'] == sorted(
        [ana.nick, bob.nick], key=str.casefold)
    assert ask(ana, 'room_message', {'room': 'lobby', 'text': 'still me'})['ok'] is True


def greeting(client):
    return client.get_received(NS)[0]['args'][0]


def test_each_new_client_gets_a_session_token_it_alone_sees(app):
    ana = socketio.test_client(app, namespace=NS)
    bob = socketio.test_client(app, namespace=NS)
    ana_token, bob_token = greeting(ana)['session'], greeting(bob)['session']
    assert ana_token != bob_token and len(ana_token) >= 32


def test_a_session_takes_its_nick_and_rooms_back_from_its_stale_connection(app):
    old = socketio.test_client(app, namespace=NS, auth={'nick': 'Ana'})
    greeting_of_old = greeting(old)
    token = greeting_of_old['session']
    ask(old, 'join', {'room': 'lobby'})
    (bob,) = in_room(app, 'lobby', 1)
    resumed = socketio.test_client(app, namespace=NS, auth={'nick': 'Ana', 'session': token})
    assert greeting(resumed) == {'data': 'Connected', 'nick': 'Ana', 'session': token,
                                 'user_id': greeting_of_old['user_id']}
    assert not old.is_connected(NS)
    # Still in the room, unannounced: the room saw nobody leave and nobody come.
    assert ask(resumed, 'room_message', {'room': 'lobby', 'text': 'back'})['ok'] is True
    assert [e['text'] for e in events(bob, 'chat_message')] == ['back']
    assert events(bob, 'room_info') == []
    rejoined = ask(resumed, 'join', {'room': 'lobby', 'since_id': 0})
    assert [m['text'] for m in rejoined['history']] == ['back'] and events(bob) == []
    assert ask(bob, 'room_members', {'room': 'lobby'})['members'] == sorted(
        ['Ana', bob.nick], key=str.casefold)


def test_a_session_back_within_the_grace_is_not_announced_and_one_that_is_not_leaves_once():
    app = make_app(RECONNECT_GRACE=0.3)
    try:
        ana = socketio.test_client(app, namespace=NS, auth={'nick': 'Ana'})
        token = greeting(ana)['session']
        ask(ana, 'join', {'room': 'lobby'})
        (bob,) = in_room(app, 'lobby', 1)
        ana.disconnect(namespace=NS)
        back = socketio.test_client(app, namespace=NS, auth={'session': token})
        assert greeting(back)['nick'] == 'Ana'
        assert ask(bob, 'room_members', {'room': 'lobby'})['members'] == sorted(
            ['Ana', bob.nick], key=str.casefold)
        back.disconnect(namespace=NS)
        assert ask(bob, 'room_members', {'room': 'lobby'})['members'] == sorted(
            ['Ana', bob.nick], key=str.casefold)
        infos, deadline = [], time.monotonic() + 5
        while not infos and time.monotonic() < deadline:
            time.sleep(0.05)
            infos += events(bob, 'room_info')
        # One leave, after the grace; the reconnect before it announced nothing.
        assert [(i['kind'], i['nick'], i['members']) for i in infos] == [
            ('leave', 'Ana', [bob.nick])]
        time.sleep(0.5)
        assert events(bob, 'room_info') == []
    finally:
        shutdown(app)


def test_another_session_cannot_take_a_held_nick(app):
    holder = socketio.test_client(app, namespace=NS, auth={'nick': 'Ana'})
    greeting(holder)
    other = socketio.test_client(app, namespace=NS, auth={'nick': 'Ana'})  # a new session
    assert greeting(other)['nick'].startswith('guest-')
    assert holder.is_connected(NS)


def test_direct_history_returns_the_sessions_messages_and_retries_are_stored_once(app):
    ana = socketio.test_client(app, namespace=NS, auth={'nick': 'Ana'})
    bob = socketio.test_client(app, namespace=NS, auth={'nick': 'Bob'})
    carl = socketio.test_client(app, namespace=NS, auth={'nick': 'Carl'})
    ana_token = greeting(ana)['session']
    greeting(bob), greeting(carl)
    message = {'to': 'Bob', 'text': 'hello bob', 'client_id': 'dm-1'}
    first = ask(ana, 'direct_message', message)
    retry = ask(ana, 'direct_message', message)
    assert first['duplicate'] is False and retry == {**first, 'duplicate': True}
    assert len(events(bob, 'direct_message')) == 1
    ask(carl, 'direct_message', {'to': 'Bob', 'text': 'not for ana'})
    ask(bob, 'direct_message', {'to': 'Ana', 'text': 'hi ana'})

    ana.disconnect(namespace=NS)
    back = socketio.test_client(app, namespace=NS, auth={'session': ana_token})
    greeting(back)
    history = ask(back, 'direct_history')
    assert [(m['from'], m['text']) for m in history['messages']] == [
        ('Ana', 'hello bob'), ('Bob', 'hi ana')]
    assert history['more'] is False
    later = ask(back, 'direct_history', {'since_id': history['messages'][0]['id']})
    assert [m['text'] for m in later['messages']] == ['hi ana']
    assert ask(back, 'direct_history', {'since_id': 'x'})['error']['code'] == 'bad_request'


def test_leaving_and_rejoining_the_namespace_buys_no_fresh_allowance():
    app = make_app(RATE_LIMIT_PER_SECOND=0.1, RATE_LIMIT_BURST=3, FLOOD_STRIKES=100)
    client = connect(app)
    ask(client, 'my_event', {'data': 'x'})
    ask(client, 'my_event', {'data': 'x'})
    client.disconnect(namespace=NS)
    client.connect(namespace=NS)
    assert not client.is_connected(NS)


def test_an_event_name_that_is_not_a_string_is_dropped(app):
    client = connect(app)
    client.emit(['not', 'a', 'name'], {'room': 'x'}, namespace=NS)
    assert events(client) == []
    assert ask(client, 'my_event', {'data': 'still here'}) == {'ok': True}



def test_a_huge_since_id_is_refused_before_the_join_takes_effect(app):
    ana, bob = connect(app), connect(app)
    ask(bob, 'join', {'room': 'lobby'})
    events(bob)
    assert ask(ana, 'join', {'room': 'lobby', 'since_id': 2 ** 70})['error']['code'] == 'bad_request'
    assert events(bob) == []
    assert ask(bob, 'room_members', {'room': 'lobby'})['members'] == [bob.nick]


def test_user_ids_are_stable_per_session_and_carried_by_every_message(app):
    ana = socketio.test_client(app, namespace=NS, auth={'nick': 'Ana'})
    first = greeting(ana)
    bob = connect(app)
    ask(ana, 'join', {'room': 'lobby'})
    ask(bob, 'join', {'room': 'lobby'})
    ask(ana, 'room_message', {'room': 'lobby', 'text': 'hi'})
    (message,) = events(bob, 'chat_message')
    assert message['user_id'] == first['user_id'] != bob.user_id
    again = socketio.test_client(app, namespace=NS, auth={'session': first['session']})
    assert greeting(again)['user_id'] == first['user_id']
    assert ask(bob, 'history', {'room': 'lobby'})['messages'][0]['user_id'] == first['user_id']


def test_a_direct_message_for_a_user_is_not_given_to_whoever_holds_the_nick_now(app):
    ana, bob = connect(app), connect(app)
    ask(bob, 'set_nick', {'nick': 'Bob'})
    sent = ask(ana, 'direct_message', {'to': 'Bob', 'text': 'first', 'to_id': bob.user_id})
    assert sent['ok'] is True and sent['to_id'] == bob.user_id
    ask(bob, 'set_nick', {'nick': 'Robert'})
    impostor = connect(app)
    ask(impostor, 'set_nick', {'nick': 'Bob'})
    events(impostor)
    refused = ask(ana, 'direct_message', {'to': 'Bob', 'text': 'second', 'to_id': bob.user_id})
    assert refused['error']['code'] == 'recipient_changed'
    assert events(impostor) == []
    assert ask(ana, 'direct_message', {'to': 'Bob', 'text': 'x', 'to_id': 'not-an-id'})[
        'error']['code'] == 'bad_request'


def test_direct_history_pages_back_and_forth(app):
    ana, bob = connect(app), connect(app)
    sent = [ask(ana, 'direct_message', {'to': bob.nick, 'text': f'd{n}'})['id'] for n in range(4)]
    back = ask(bob, 'direct_history', {'before_id': sent[-1], 'limit': 2})
    assert [m['text'] for m in back['messages']] == ['d1', 'd2'] and back['more'] is True
    forth = ask(bob, 'direct_history', {'since_id': sent[1]})
    assert [m['text'] for m in forth['messages']] == ['d2', 'd3']
    assert ask(bob, 'direct_history', {'since_id': 1, 'before_id': 3})['error']['code'] == \
        'bad_request'


def test_a_retried_direct_message_is_answered_as_stored_whoever_holds_the_nick_now(app):
    ana, bob = connect(app), connect(app)
    ask(bob, 'set_nick', {'nick': 'Bob'})
    payload = {'to': 'Bob', 'text': 'once', 'client_id': 'dm-1', 'to_id': bob.user_id}
    first = ask(ana, 'direct_message', payload)
    ask(bob, 'set_nick', {'nick': 'Robert'})
    impostor = connect(app)
    ask(impostor, 'set_nick', {'nick': 'Bob'})
    retry = ask(ana, 'direct_message', payload)
    assert retry == {**first, 'duplicate': True}
    assert [e for e in events(impostor) if 'text' in e] == []
