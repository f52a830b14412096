"""History survives a restart of the server process, and reconnecting clients miss nothing."""
import pytest

from tests.support.live_server import LiveServer, RestartableServer
from tests.support.resuming_client import ResumingChatClient
from tests.support.sio_client import RecordingClient

pytestmark = pytest.mark.live


def chat_client(server, session=None):
    client = RecordingClient(server.url, ['/chat'], auth={'session': session} if session else None)
    client.session = client.wait_for('my_response')[0]['session']
    return client


def send(client, text, client_id=None):
    payload = {'room': 'lobby', 'text': text}
    if client_id:
        payload['client_id'] = client_id
    return client.call('room_message', payload)


def test_restart_mid_conversation_loses_nothing(output_dir):
    database = f'sqlite:///{output_dir / "chat.db"}'
    first = LiveServer(output_dir / 'first.log', DATABASE_URL=database).start()
    try:
        with chat_client(first) as ana, chat_client(first) as bob:
            ana.call('join', {'room': 'lobby'})
            bob.call('join', {'room': 'lobby'})
            for n in (1, 2, 3):
                send(ana, f'm{n}', client_id=f'ana-{n}')
            bob_last_seen = bob.wait_for('chat_message', 3)[-1]['id']
            bob.close()
            for n in (4, 5):
                assert send(ana, f'm{n}', client_id=f'ana-{n}')['id'] == n
            ana_session = ana.session
        assert first.stop() == 0
    finally:
        first.kill()

    with LiveServer(output_dir / 'second.log', DATABASE_URL=database) as second, \
            chat_client(second, session=ana_session) as ana, chat_client(second) as bob:
        whole = ana.call('join', {'room': 'lobby'})['history']
        assert [(m['id'], m['text']) for m in whole] == [(n, f'm{n}') for n in range(1, 6)]

        missed = bob.call('join', {'room': 'lobby', 'since_id': bob_last_seen})
        assert [m['text'] for m in missed['history']] == ['m4', 'm5'] and missed['more'] is False

        retry = send(ana, 'm5', client_id='ana-5')
        assert retry == {'ok': True, 'id': 5, 'room': 'lobby', 'duplicate': True}
        assert send(ana, 'm6')['id'] == 6
        assert [m['text'] for m in bob.wait_for('chat_message')] == ['m6']


@pytest.mark.parametrize('transport', ['websocket', 'polling'])
def test_clients_come_back_by_themselves_after_a_restart(output_dir, transport):
    server = RestartableServer(output_dir).start()
    try:
        with ResumingChatClient(server.url, 'Ana', [transport]) as ana, \
                ResumingChatClient(server.url, 'Bob', [transport]) as bob:
            for client in (ana, bob):
                client.join('lobby')
            ana.send('lobby', 'before the restart')
            bob.wait_delivered('lobby', 1)

            server.restart()

            for client in (ana, bob):
                client.wait(lambda c=client: c.rejoins == 1, f'{client.nick} did not come back')
                assert client.nick in ('Ana', 'Bob') and client.connects == 2
            assert ana.send('lobby', 'after the restart')['id'] == 2
            texts = [m['text'] for m in bob.wait_delivered('lobby', 2)]
            assert texts == ['before the restart', 'after the restart']
            assert (ana.nick, bob.nick) == ('Ana', 'Bob')
    finally:
        server.stop()
