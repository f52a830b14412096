"""AUTH_REQUIRED against the real run.py: ``python run.py token USER`` prints a sign-in token
that signs USER in on both namespaces, and every refused connect reaches a real client as a
connect_error carrying its code."""
import re
import subprocess
import sys

import pytest
import socketio

from tests.support.live_server import ROOT, LiveServer, hermetic_env
from tests.support.sio_client import RecordingClient

pytestmark = pytest.mark.live

SECRET = 'the-live-tests-secret'


def run_token(*args, **settings):
    """``python run.py token ARGS`` with only ``settings``: its result."""
    env = hermetic_env(**{'APP_ENV': 'development', 'SECRET_KEY': SECRET, **settings})
    return subprocess.run([sys.executable, 'run.py', 'token', *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=20, stdin=subprocess.DEVNULL)


def issue(*args, **settings):
    result = run_token(*args, **settings)
    assert result.returncode == 0 and result.stderr == '', result.stderr
    return result.stdout.strip()


def refusal(url, namespace, auth):
    """Connect to ``namespace`` with ``auth``, which must be refused; return the connect_error
    data the client received."""
    errors = []
    client = socketio.Client(reconnection=False)
    client.on('connect_error', errors.append, namespace=namespace)
    with pytest.raises(socketio.exceptions.ConnectionError):
        client.connect(url, namespaces=[namespace], transports=['websocket'], auth=auth,
                       wait_timeout=5)
    (error,) = errors
    assert error['message'] == error['data']['message']
    return error['data']


def test_a_token_from_the_command_line_signs_its_user_in_and_no_other_gets_in(output_dir):
    token = issue('Ana', '--ttl', '600')
    rotated = issue('Ana', SECRET_KEY='the-key-before-rotation')
    with LiveServer(output_dir / 'server.log', AUTH_REQUIRED='1', SECRET_KEY=SECRET) as server:
        with RecordingClient(server.url, ['/chat', '/test_conn'], auth={'token': token}) as ana:
            assert ana.wait_for('my_response')[0]['nick'] == 'Ana'
            ana.wait_for('ticker_history', namespace='/test_conn')
            refused = ana.call('set_nick', {'nick': 'Bob'})
            assert refused['error']['code'] == 'nick_locked'
        for namespace in ('/chat', '/test_conn'):
            assert refusal(server.url, namespace, None)['code'] == 'auth_required'
            assert refusal(server.url, namespace, {'nick': 'Ana'})['code'] == 'auth_required'
            stale = refusal(server.url, namespace, {'token': rotated})
            assert stale['code'] == 'invalid_token' and 'SECRET_KEY' in stale['message']
        output = server.output()
    assert 'chat client connected: Ana from 127.0.0.1 (signed in as Ana)' in output
    assert token not in output and rotated not in output


@pytest.mark.parametrize('args, settings, pattern', [
    (('',), {}, r"^cannot issue a token for '': the nick is empty$"),
    (('Ana', '--ttl', '0'), {}, r'TOKEN_MAX_AGE'),
    (('Ana', '--ttl', '61'), {'TOKEN_MAX_AGE': '60'}, r'1 to 60 seconds'),
    (('Ana',), {'APP_ENV': 'production', 'SECRET_KEY': ''}, r'^configuration error: SECRET_KEY'),
], ids=['an-empty-name', 'no-life', 'a-life-beyond-TOKEN_MAX_AGE', 'production-without-a-secret'])
def test_the_command_line_refuses_what_it_cannot_sign_in_one_line(args, settings, pattern):
    result = run_token(*args, **settings)
    assert result.returncode == 2 and result.stdout == ''
    assert 'Traceback' not in result.stderr
    (line,) = result.stderr.splitlines()
    assert re.search(pattern, line), line
