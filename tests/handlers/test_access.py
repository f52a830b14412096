"""Who may connect: signed session tokens, and sign-in tokens under AUTH_REQUIRED.

Flask-SocketIO's test client sees a refused connect only as not connected; the code each
refusal carries is read from the server's log line here, and from a real client in
tests/live/test_sign_in.py and tests/js/.
"""
import logging
import time

import pytest

from config import TestingConfig
from server import create_app, shutdown
from server.auth import UserTokens
from server.chat import sessions
from server.chat.sessions import SessionTokens
from server.extensions import socketio
from tests.handlers.test_chat_namespace import NS, ask, events

TICKER = '/test_conn'
SECRET = TestingConfig.SECRET_KEY


@pytest.fixture
def refusals(caplog):
    """Return refusals(): the codes of the connects refused so far, as the log names them."""
    caplog.set_level(logging.INFO, logger='server.namespaces.access')

    def codes():
        return [record.args[2] for record in caplog.records
                if record.name == 'server.namespaces.access']
    return codes


def greeting(client):
    return client.get_received(NS)[0]['args'][0]


def tampered(token):
    return ('B' if token[0] == 'A' else 'A') + token[1:]


@pytest.mark.parametrize('make_token', [
    lambda: 'x' * 43,
    lambda: 'a' * 43 + '.' + 'b' * 43,
    lambda: tampered(SessionTokens(SECRET).issue()),
    lambda: SessionTokens('the-key-before-rotation').issue(),
], ids=['invented', 'invented-in-the-issued-form', 'tampered', 'signed-with-an-old-key'])
def test_a_session_token_the_server_did_not_sign_is_refused_as_such(app, refusals, caplog,
                                                                    make_token):
    token = make_token()
    client = socketio.test_client(app, namespace=NS, auth={'nick': 'Ana', 'session': token})
    assert not client.is_connected(NS)
    assert refusals() == ['invalid_session']
    assert token not in caplog.text
    # Without it, the same client starts a new session at once.
    fresh = socketio.test_client(app, namespace=NS, auth={'nick': 'Ana'})
    assert fresh.is_connected(NS) and greeting(fresh)['session'] != token


def test_a_session_token_the_server_signed_resumes_its_session_after_a_restart():
    first_app = create_app(TestingConfig)
    try:
        first = socketio.test_client(first_app, namespace=NS, auth={'nick': 'Ana'})
        welcome = greeting(first)
        assert sessions.TOKEN_FORMAT.fullmatch(welcome['session'])
    finally:
        shutdown(first_app)
    # The same SECRET_KEY (this server restarted, or another worker) takes the token back.
    second_app = create_app(TestingConfig)
    try:
        back = socketio.test_client(second_app, namespace=NS, auth={'session': welcome['session']})
        again = greeting(back)
        assert again['session'] == welcome['session'] and again['user_id'] == welcome['user_id']
    finally:
        shutdown(second_app)


@pytest.fixture
def auth_app():
    application = create_app(TestingConfig, {'AUTH_REQUIRED': True, 'TOKEN_MAX_AGE': 600})
    yield application
    shutdown(application)


def sign_in(user, **kwargs):
    return {'token': UserTokens(SECRET, 600, 32, **kwargs).issue(user)}


@pytest.mark.parametrize('namespace', [NS, TICKER])
@pytest.mark.parametrize('auth, code', [
    (None, 'auth_required'),
    ({'nick': 'Ana', 'session': SessionTokens(SECRET).issue()}, 'auth_required'),
    ({'token': 'made-up'}, 'invalid_token'),
    ({'token': UserTokens('the-key-before-rotation', 600, 32).issue('Ana')}, 'invalid_token'),
    ({'token': tampered(UserTokens(SECRET, 600, 32).issue('Ana'))}, 'invalid_token'),
], ids=['nothing', 'a-session-only', 'invented', 'signed-with-an-old-key', 'tampered'])
def test_with_auth_required_a_connect_without_a_good_sign_in_token_is_refused(
        auth_app, refusals, namespace, auth, code):
    client = socketio.test_client(auth_app, namespace=namespace, auth=auth)
    assert not client.is_connected(namespace)
    assert refusals() == [code]


@pytest.mark.parametrize('namespace', [NS, TICKER])
def test_with_auth_required_an_expired_sign_in_token_is_refused_saying_so(
        auth_app, refusals, caplog, namespace):
    long_ago = time.time() - 3600
    expired = {'token': UserTokens(SECRET, 600, 32, clock=lambda: long_ago).issue('Ana', ttl=60)}
    client = socketio.test_client(auth_app, namespace=namespace, auth=expired)
    assert not client.is_connected(namespace)
    assert refusals() == ['invalid_token'] and 'expired' in caplog.text


def test_with_auth_required_a_signed_in_user_gets_the_ticker(auth_app):
    client = socketio.test_client(auth_app, namespace=TICKER, auth=sign_in('Ana'))
    assert client.is_connected(TICKER)
    assert [e['name'] for e in client.get_received(TICKER)] == ['ticker_history']


def test_with_auth_required_the_users_name_is_its_nick_and_stays_so(auth_app, caplog):
    caplog.set_level(logging.INFO, logger='server.namespaces.chat')
    ana = socketio.test_client(auth_app, namespace=NS, auth={**sign_in('Ana'), 'nick': 'Bob'})
    welcome = greeting(ana)
    assert welcome == {'data': 'Connected', 'nick': 'Ana', 'session': None,
                       'user_id': sessions.user_id(sessions.user_key('Ana'))}
    assert 'chat client connected: Ana from ' in caplog.text
    assert '(signed in as Ana)' in caplog.text
    refused = ask(ana, 'set_nick', {'nick': 'Bob'})
    assert refused['error']['code'] == 'nick_locked' and '"Ana"' in refused['error']['message']
    assert ask(ana, 'set_nick', {'nick': 'Ana'}) == {'ok': True, 'nick': 'Ana'}


def test_with_auth_required_a_user_is_one_session_whichever_tab_it_connects_from(auth_app):
    first = socketio.test_client(auth_app, namespace=NS, auth=sign_in('Ana'))
    user_id = greeting(first)['user_id']
    ask(first, 'join', {'room': 'lobby'})
    bob = socketio.test_client(auth_app, namespace=NS, auth=sign_in('Bob'))
    ask(bob, 'join', {'room': 'lobby'})
    events(bob)
    second = socketio.test_client(auth_app, namespace=NS, auth=sign_in('Ana'))
    assert greeting(second)['user_id'] == user_id
    assert not first.is_connected(NS)
    assert ask(second, 'room_message', {'room': 'lobby', 'text': 'here now'})['ok'] is True
    assert [e['text'] for e in events(bob, 'chat_message')] == ['here now']
    assert events(bob, 'room_info') == []


def test_with_auth_required_two_names_for_one_nick_do_not_share_it(auth_app, refusals):
    ana = socketio.test_client(auth_app, namespace=NS, auth=sign_in('Ana'))
    other = socketio.test_client(auth_app, namespace=NS, auth=sign_in('ana'))
    assert not other.is_connected(NS) and refusals() == ['nick_taken']
    assert ask(ana, 'nick_status', {'nick': 'ANA'})['online'] is True
    ana.disconnect(namespace=NS)
    assert socketio.test_client(auth_app, namespace=NS, auth=sign_in('ana')).is_connected(NS)


def test_without_auth_required_a_sign_in_token_changes_nothing(app):
    client = socketio.test_client(app, namespace=NS, auth={**sign_in('Ana'), 'nick': 'Bob'})
    assert greeting(client)['nick'] == 'Bob'
    assert ask(client, 'set_nick', {'nick': 'Carl'})['ok'] is True
