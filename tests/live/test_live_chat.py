"""/chat against the real run.py process, with python-socketio clients over real transports."""
import pytest
import requests
import socketio

from tests.support.sio_client import RecordingClient

pytestmark = pytest.mark.live


def chat_client(server, transports=('websocket',)):
    client = RecordingClient(server.url, ['/chat'], transports=transports)
    client.nick = client.wait_for('my_response')[0]['nick']
    return client


@pytest.mark.parametrize('transports', [('websocket',), ('polling',)])
def test_members_chat_in_a_room_and_outsiders_hear_nothing(live_server, transports):
    with chat_client(live_server, transports) as ana, chat_client(live_server) as bob, \
            chat_client(live_server) as outsider:
        assert ana.call('join', {'room': 'lobby'})['members'] == [ana.nick]
        joined = bob.call('join', {'room': 'lobby'})
        assert joined['members'] == sorted([ana.nick, bob.nick], key=str.casefold)
        ana.wait_for('room_info', 2)

        ack = ana.call('room_message', {'room': 'lobby', 'text': 'hello <b>bob</b>'})
        assert ack['ok'] is True
        (to_bob,) = bob.wait_for('chat_message')
        (to_ana,) = ana.wait_for('chat_message')
        assert to_bob == to_ana
        assert to_bob['id'] == ack['id'] and to_bob['nick'] == ana.nick
        assert to_bob['text'] == 'hello <b>bob</b>'

        bob.call('room_message', {'room': 'lobby', 'text': 'hi ana'})
        assert [m['text'] for m in ana.wait_for('chat_message', 2)] == ['hello <b>bob</b>', 'hi ana']
        assert outsider.call('my_event', {'data': 'ping'}) == {'ok': True}
        outsider.wait_for('my_response', 2)
        assert outsider.received('chat_message') == [] and outsider.received('room_info') == []


def test_leaving_stops_delivery_and_disconnecting_tells_the_room(live_server):
    with chat_client(live_server) as ana, chat_client(live_server) as bob, \
            chat_client(live_server) as carl:
        for client in (ana, bob, carl):
            client.call('join', {'room': 'lobby'})
        assert bob.call('leave', {'room': 'lobby'}) == {'ok': True, 'room': 'lobby'}
        left = ana.wait_for('room_info', where=lambda i: i['msg'] == 'Member left: lobby')
        assert left[0]['nick'] == bob.nick and bob.nick not in left[0]['members']

        ana.call('room_message', {'room': 'lobby', 'text': 'after bob left'})
        carl.wait_for('chat_message')
        assert bob.received('chat_message') == []

        carl.close()
        gone = ana.wait_for('room_info', 2, where=lambda i: i['msg'] == 'Member left: lobby')
        assert gone[1]['nick'] == carl.nick and gone[1]['members'] == [ana.nick]


def test_broadcast_reaches_every_chat_client(live_server):
    with chat_client(live_server) as ana, chat_client(live_server, ('polling',)) as bob:
        ana.call('my_broadcast_event', {'data': 'to all'})
        for client in (ana, bob):
            client.wait_for('my_response', where=lambda r: r['data'] == 'to all')


def test_bad_input_gets_an_error_to_the_sender_alone_and_the_connection_stays(live_server):
    with chat_client(live_server) as sender, chat_client(live_server) as member:
        for client in (sender, member):
            client.call('join', {'room': 'lobby'})
        too_long = sender.call('room_message', {'room': 'lobby', 'text': 'x' * 2001})
        assert too_long['error']['code'] == 'message_too_long'
        assert sender.call('join', {'room': ''})['error']['code'] == 'invalid_room'
        sender.emit('room_message', 'not an object')
        (error,) = sender.wait_for('error')
        assert error['error']['code'] == 'bad_request' and error['event'] == 'room_message'

        assert sender.call('room_message', {'room': 'lobby', 'text': 'still fine'})['id'] == 1
        assert [m['text'] for m in member.wait_for('chat_message')] == ['still fine']
        assert member.received('error') == []


def test_a_frame_over_the_transport_limit_drops_only_that_client(live_server):
    with chat_client(live_server) as flooder, chat_client(live_server) as member:
        for client in (flooder, member):
            client.call('join', {'room': 'lobby'})
        flooder.emit('room_message', {'room': 'lobby', 'text': 'x' * 100_000})
        left = member.wait_for('room_info', where=lambda i: i['msg'] == 'Member left: lobby')
        assert left[0]['nick'] == flooder.nick
        flooder.wait_disconnected()
        assert member.call('room_message', {'room': 'lobby', 'text': 'unharmed'})['ok'] is True
        assert [m['text'] for m in member.wait_for('chat_message')] == ['unharmed']


@pytest.mark.parametrize('namespace', ['/', '/admin'])
def test_unknown_namespaces_are_refused(live_server, namespace):
    client = socketio.Client(reconnection=False)
    with pytest.raises(socketio.exceptions.ConnectionError):
        client.connect(live_server.url, namespaces=[namespace], transports=['websocket'],
                       wait_timeout=5)
    client.disconnect()


def test_http_routes_serve_the_page_its_libraries_and_health(live_server):
    with requests.Session() as http:
        def get(path):
            return http.get(live_server.url + path, timeout=5)

        page = get('/')
        assert page.status_code == 200 and 'text/html' in page.headers['Content-Type']
        assert "default-src 'self'" in page.headers['Content-Security-Policy']
        library = get('/vendor/socket.io.esm.min.js')
        assert library.status_code == 200 and 'javascript' in library.headers['Content-Type']
        assert get('/vendor/package.json').status_code == 404
        assert get('/vendor/..%2Fpackage.json').status_code == 404
        assert get('/healthz').json() == {'status': 'ok', 'store': 'ok'}
