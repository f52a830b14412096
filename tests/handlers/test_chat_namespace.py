"""Every /chat event and its bad inputs, through Flask-SocketIO's test client."""
import pytest

from server.extensions import socketio

NS = '/chat'


def connect(app):
    client = socketio.test_client(app, namespace=NS)
    greeting = client.get_received(NS)[0]['args'][0]
    client.nick, client.user_id = greeting['nick'], greeting['user_id']
    return client


def events(client, name=None):
    received = client.get_received(NS)
    return [e['args'][0] for e in received if name is None or e['name'] == name]


def ask(client, event, *args):
    return client.emit(event, *args, namespace=NS, callback=True)


def test_connect_greets_with_connected_and_a_guest_nick(app):
    client = socketio.test_client(app, namespace=NS)
    received = client.get_received(NS)
    assert [e['name'] for e in received] == ['my_response']
    greeting = received[0]['args'][0]
    assert greeting['data'] == 'Connected'
    assert greeting['nick'].startswith('guest-')


def test_my_event_echoes_to_the_sender_only(app):
    sender, other = connect(app), connect(app)
    assert ask(sender, 'my_event', {'data': 'hello'}) == {'ok': True}
    assert events(sender) == [{'data': 'hello'}]
    assert events(other) == []


def test_my_broadcast_event_reaches_every_client(app):
    sender, other = connect(app), connect(app)
    assert ask(sender, 'my_broadcast_event', {'data': 'all'}) == {'ok': True}
    expected = [{'data': 'all', 'from': sender.nick}]
    assert events(sender, 'my_response') == expected
    assert events(other, 'my_response') == expected


def test_join_announces_to_the_room_and_acks_members_and_history(app):
    ana, bob, outsider = connect(app), connect(app), connect(app)
    ack = ask(ana, 'join', {'room': 'lobby'})
    assert ack == {'ok': True, 'room': 'lobby', 'members': [ana.nick], 'owner': ana.nick,
                   'history': [], 'more': False}
    assert events(ana, 'room_info') == [{
        'kind': 'join', 'msg': 'New member joined: lobby', 'room': 'lobby', 'nick': ana.nick,
        'members': [ana.nick], 'owner': ana.nick,
    }]
    ack = ask(bob, 'join', {'room': '  lobby '})
    members = sorted([ana.nick, bob.nick], key=str.casefold)
    assert ack['members'] == members
    for client in (ana, bob):
        (info,) = events(client, 'room_info')
        assert info['msg'] == 'New member joined: lobby' and info['members'] == members
    assert events(outsider) == []


def test_joining_twice_is_acknowledged_without_a_second_announcement(app):
    ana = connect(app)
    ask(ana, 'join', {'room': 'lobby'})
    events(ana)
    assert ask(ana, 'join', {'room': 'lobby'})['ok'] is True
    assert events(ana) == []


def test_room_message_reaches_members_only_with_one_id(app):
    ana, bob, outsider = connect(app), connect(app), connect(app)
    for client in (ana, bob):
        ask(client, 'join', {'room': 'lobby'})
    for client in (ana, bob, outsider):
        events(client)
    ack = ask(ana, 'room_message', {'room': 'lobby', 'text': '<b>hi</b>'})
    assert ack == {'ok': True, 'id': 1, 'room': 'lobby', 'duplicate': False}
    (to_ana,), (to_bob,) = events(ana, 'chat_message'), events(bob, 'chat_message')
    assert to_ana == to_bob
    assert to_ana['id'] == 1 and to_ana['room'] == 'lobby'
    assert to_ana['nick'] == ana.nick and to_ana['text'] == '<b>hi</b>'
    assert isinstance(to_ana['ts'], int)
    assert events(outsider) == []
    assert ask(bob, 'room_message', {'room': 'lobby', 'text': 'again'})['id'] == 2


def test_history_is_given_to_later_joiners(app):
    ana, bob = connect(app), connect(app)
    ask(ana, 'join', {'room': 'lobby'})
    for text in ('one', 'two'):
        ask(ana, 'room_message', {'room': 'lobby', 'text': text})
    history = ask(bob, 'join', {'room': 'lobby'})['history']
    assert [(m['id'], m['text'], m['nick']) for m in history] == [(1, 'one', ana.nick), (2, 'two', ana.nick)]


def test_leave_tells_the_remaining_members_and_stops_delivery(app):
    ana, bob = connect(app), connect(app)
    for client in (ana, bob):
        ask(client, 'join', {'room': 'lobby'})
    events(ana), events(bob)
    assert ask(bob, 'leave', {'room': 'lobby'}) == {'ok': True, 'room': 'lobby'}
    assert events(ana, 'room_info') == [{
        'kind': 'leave', 'msg': 'Member left: lobby', 'room': 'lobby', 'nick': bob.nick,
        'members': [ana.nick], 'owner': ana.nick,
    }]
    assert events(bob) == []
    ask(ana, 'room_message', {'room': 'lobby', 'text': 'still here?'})
    assert events(bob) == []
    assert ask(bob, 'room_message', {'room': 'lobby', 'text': 'x'})['error']['code'] == 'not_in_room'


def test_disconnect_leaves_every_room_and_tells_the_rest(app):
    ana, bob = connect(app), connect(app)
    for room in ('a', 'b'):
        ask(ana, 'join', {'room': room})
        ask(bob, 'join', {'room': room})
    events(ana)
    bob.disconnect(namespace=NS)
    infos = events(ana, 'room_info')
    assert sorted(i['room'] for i in infos) == ['a', 'b']
    assert all(i['msg'] == f"Member left: {i['room']}" and i['members'] == [ana.nick] for i in infos)


def test_a_room_named_like_a_client_sid_does_not_reach_that_client(app):
    victim, spy = connect(app), connect(app)
    victim_sid = socketio.server.manager.sid_from_eio_sid(victim.eio_sid, NS)
    ask(spy, 'join', {'room': victim_sid})
    events(victim), events(spy)
    socketio.emit('my_response', {'data': 'private'}, namespace=NS, to=victim_sid)
    assert events(spy) == []
    assert events(victim) == [{'data': 'private'}]


BAD_INPUTS = [
    ('join', 'lobby', 'bad_request'),
    ('join', None, 'bad_request'),
    ('join', {}, 'bad_request'),
    ('join', {'room': 12}, 'bad_request'),
    ('join', {'room': ''}, 'invalid_room'),
    ('join', {'room': 'r' * 65}, 'invalid_room'),
    ('join', {'room': 'a\x00b'}, 'invalid_room'),
    ('leave', {'room': 'never-joined'}, 'not_in_room'),
    ('leave', [], 'bad_request'),
    ('room_message', {'room': 'lobby'}, 'bad_request'),
    ('room_message', {'text': 'hi'}, 'bad_request'),
    ('room_message', {'room': 'lobby', 'text': ''}, 'empty_message'),
    ('room_message', {'room': 'lobby', 'text': 'x' * 2001}, 'message_too_long'),
    ('room_message', {'room': 'lobby', 'text': ['x']}, 'bad_request'),
    ('room_message', {'room': 'elsewhere', 'text': 'hi'}, 'not_in_room'),
    ('my_event', {'data': 5}, 'bad_request'),
    ('my_event', 'hello', 'bad_request'),
    ('my_broadcast_event', {}, 'bad_request'),
]


@pytest.mark.parametrize('event, payload, code', BAD_INPUTS)
def test_bad_input_is_refused_in_the_ack_and_harms_nobody(app, event, payload, code):
    sender, member = connect(app), connect(app)
    ask(sender, 'join', {'room': 'lobby'})
    ask(member, 'join', {'room': 'lobby'})
    events(sender), events(member)
    ack = ask(sender, event, payload)
    assert ack['ok'] is False and ack['event'] == event
    assert ack['error']['code'] == code and ack['error']['message']
    assert events(sender) == [] and events(member) == []
    assert sender.is_connected(NS)
    assert ask(sender, 'room_message', {'room': 'lobby', 'text': 'fine'})['id'] == 1


@pytest.mark.parametrize('event, payload, code', BAD_INPUTS[:4] + BAD_INPUTS[10:13])
def test_bad_input_without_an_ack_gets_an_error_event_to_the_sender_only(app, event, payload, code):
    sender, other = connect(app), connect(app)
    ask(other, 'join', {'room': 'lobby'})
    events(other)
    sender.emit(event, payload, namespace=NS)
    (error,) = events(sender, 'error')
    assert error['ok'] is False and error['event'] == event and error['error']['code'] == code
    assert events(other) == []


def test_success_without_an_ack_sends_no_error_event(app):
    client = connect(app)
    client.emit('join', {'room': 'lobby'}, namespace=NS)
    assert [e['name'] for e in client.get_received(NS)] == ['room_info']


def test_an_event_with_no_payload_or_extra_arguments_is_refused(app):
    client = connect(app)
    assert ask(client, 'join')['error']['code'] == 'bad_request'
    assert ask(client, 'join', {'room': 'a'}, 'extra')['error']['code'] == 'bad_request'


def test_a_failing_handler_answers_internal_error_without_details(app, monkeypatch, caplog):
    client = connect(app)
    namespace = socketio.server.namespace_handlers[NS]

    def explode(*args):
        raise RuntimeError('secret database detail')

    monkeypatch.setattr(namespace.store, 'append', explode)
    ask(client, 'join', {'room': 'lobby'})
    ack = ask(client, 'room_message', {'room': 'lobby', 'text': 'hi'})
    assert ack['error'] == {'code': 'internal_error', 'message': 'the server failed; try again'}
    assert 'secret database detail' in caplog.text
    assert client.is_connected(NS)


def test_limits_come_from_the_configuration():
    from config import TestingConfig
    from server import create_app

    app = create_app(TestingConfig, {'MAX_MESSAGE_LENGTH': 5, 'MAX_ROOM_NAME_LENGTH': 3,
                                     'HISTORY_LIMIT': 1})
    client = connect(app)
    assert ask(client, 'join', {'room': 'abcd'})['error']['code'] == 'invalid_room'
    ask(client, 'join', {'room': 'abc'})
    assert ask(client, 'room_message', {'room': 'abc', 'text': '123456'})['error']['code'] == \
        'message_too_long'
    ask(client, 'room_message', {'room': 'abc', 'text': 'one'})
    ask(client, 'room_message', {'room': 'abc', 'text': 'two'})
    other = connect(app)
    assert [m['text'] for m in ask(other, 'join', {'room': 'abc'})['history']] == ['two']


@pytest.mark.parametrize('namespace', ['/', '/admin', '/chat2'])
def test_unknown_namespaces_are_refused(app, namespace):
    client = socketio.test_client(app, namespace=namespace)
    assert not client.is_connected(namespace)


def test_a_join_is_announced_to_the_members_there_when_it_happened_not_to_later_joiners(
        app, monkeypatch):
    ana, bob, cara = connect(app), connect(app), connect(app)
    ask(ana, 'join', {'room': 'lobby'})
    store = app.extensions['chat'].store
    read = store.recent

    def read_while_cara_joins(room, limit):
        # Bob's history read waits for the database; meanwhile Cara joins.
        monkeypatch.setattr(store, 'recent', read)
        assert ask(cara, 'join', {'room': 'lobby'})['ok'] is True
        return read(room, limit)

    monkeypatch.setattr(store, 'recent', read_while_cara_joins)
    events(ana), events(cara)
    assert ask(bob, 'join', {'room': 'lobby'})['members'] == sorted(
        [ana.nick, bob.nick, cara.nick], key=str.casefold)
    assert [info['nick'] for info in events(ana, 'room_info')] == [cara.nick, bob.nick]
    # Cara's own reply listed Bob; she is not told of a join that came before hers.
    assert [info['nick'] for info in events(cara, 'room_info')] == [cara.nick]
    assert [info['nick'] for info in events(bob, 'room_info')] == [cara.nick, bob.nick]


def test_a_join_whose_history_cannot_be_read_is_undone_and_never_announced(app, caplog):
    ana, bob = connect(app), connect(app)
    ask(ana, 'join', {'room': 'lobby'})
    events(ana)
    app.extensions['chat'].store.close()  # every read now fails, as a lost database would

    refused = ask(bob, 'join', {'room': 'lobby'})
    assert refused['ok'] is False and refused['error']['code'] == 'internal_error'
    assert events(ana) == []
    assert ask(ana, 'room_members', {'room': 'lobby'})['members'] == [ana.nick]
    assert ask(bob, 'leave', {'room': 'lobby'})['error']['code'] == 'not_in_room'
    assert 'handler for "join" failed' in caplog.text
