"""Starting run.py as a person does: what it says when it cannot start, and what it logs when
it can. Every server here is the real run.py, given its whole configuration by the test."""
import re
import socket
import subprocess
import sys

import pytest
import requests

from tests.support.live_server import ROOT, LiveServer, hermetic_env
from tests.support.sio_client import RecordingClient

pytestmark = pytest.mark.live

TIMESTAMP = r'\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}'


def run_briefly(tmp_path, args=(), **settings):
    """run.py with only ``settings``, expected to refuse to start: its result."""
    env = hermetic_env(**{'APP_ENV': 'development', 'HOST': '127.0.0.1', 'PORT': '0',
                          'DATABASE_URL': f'sqlite:///{tmp_path / "chat.db"}', **settings})
    return subprocess.run([sys.executable, 'run.py', *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=20, stdin=subprocess.DEVNULL)


def assert_one_line_and_exit_2(result, pattern):
    assert result.returncode == 2, result.stderr
    assert 'Traceback' not in result.stderr + result.stdout
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert re.search(pattern, lines[0]), lines[0]


def test_a_port_in_use_is_one_clear_line_and_exit_2(tmp_path):
    with socket.socket() as taken:
        taken.bind(('127.0.0.1', 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_briefly(tmp_path, PORT=port)
    assert_one_line_and_exit_2(result, rf'^port {port} is in use; set PORT=')


@pytest.mark.parametrize('port', ['65536', '70000', '-1', 'http'])
def test_a_port_out_of_range_is_one_clear_line_and_exit_2(tmp_path, port):
    result = run_briefly(tmp_path, PORT=port)
    assert_one_line_and_exit_2(result, r'^configuration error: PORT must be ')


@pytest.mark.parametrize('queue', ['amqp://127.0.0.1:5672', '127.0.0.1:6379',
                                   'redis://127.0.0.1:notaport'])
def test_a_message_queue_the_server_cannot_use_is_refused_at_start(tmp_path, queue):
    result = run_briefly(tmp_path, MESSAGE_QUEUE=queue)
    assert_one_line_and_exit_2(result, r'^configuration error: .*(MESSAGE_QUEUE|Port)')


def test_a_message_queue_nothing_answers_at_is_refused_at_start(tmp_path):
    with socket.socket() as closed:
        closed.bind(('127.0.0.1', 0))
        port = closed.getsockname()[1]  # bound, never listening: connections are refused
        result = run_briefly(tmp_path, MESSAGE_QUEUE=f'redis://:hunter2@127.0.0.1:{port}/0')
    assert_one_line_and_exit_2(
        result, rf'^configuration error: MESSAGE_QUEUE redis://:\*\*\*@127.0.0.1:{port}/0 does '
                r'not answer \(ConnectionError: .*\); start Redis there or fix the URL$')
    assert 'hunter2' not in result.stderr


def test_a_database_in_a_folder_that_does_not_exist_is_refused_not_created(tmp_path):
    missing = tmp_path / 'no-such-folder'
    result = run_briefly(tmp_path, DATABASE_URL=f'sqlite:///{missing / "chat.db"}')
    assert_one_line_and_exit_2(result, rf'^configuration error: DATABASE_URL .*{missing}.* does '
                                       r'not exist')
    assert not missing.exists()


def test_a_relative_database_path_is_checked_from_the_project_root(tmp_path):
    result = run_briefly(tmp_path, DATABASE_URL='sqlite:///no-such-folder/chat.db')
    assert_one_line_and_exit_2(result, r'DATABASE_URL .* does not exist')
    assert not (ROOT / 'no-such-folder').exists()


def info_lines(server):
    """The log's lines at INFO and above, without their timestamps."""
    return [re.sub(rf'^{TIMESTAMP} ', '', line) for line in server.output().splitlines()]


def visit(server):
    """What a browser does: the page, a static file, then Socket.IO over long-polling (which
    carries the Engine.IO sid in its query string) with a typing flag; then it leaves."""
    for path in ('/', '/static/css/app.css', '/vendor/socket.io.esm.min.js?v=1'):
        assert requests.get(server.url + path, timeout=5).status_code == 200
    with RecordingClient(server.url, ['/chat'], transports=['polling']) as client:
        client.call('join', {'room': 'lobby'})
        client.call('typing', {'room': 'lobby', 'typing': True})
        client.call('typing', {'room': 'lobby', 'typing': False})
        sid = client.sio.eio.sid
    return sid


def test_the_default_log_is_a_line_per_start_stop_connect_and_disconnect(output_dir):
    server = LiveServer(output_dir / 'server.log', PUSH_INTERVAL='5').start()
    try:
        sid = visit(server)
        assert server.stop() == 0
    finally:
        server.kill()
    lines = info_lines(server)
    assert [line for line in lines if line.startswith('INFO run: serving on')] == lines[:1]
    chat_lines = [line for line in lines if 'chat client' in line]
    assert len(chat_lines) == 2, chat_lines
    connected = re.fullmatch(r'INFO server\.namespaces\.chat: chat client connected: '
                             r'(guest-[0-9a-f]{6}) from 127\.0\.0\.1', chat_lines[0])
    assert connected, chat_lines
    assert chat_lines[1] == (f'INFO server.namespaces.chat: chat client disconnected: '
                             f'{connected[1]} from 127.0.0.1 (client disconnect)')
    assert lines[-2:] == ['INFO run: shutting down', 'INFO run: stopped']
    assert not [line for line in lines if 'GET' in line or 'POST' in line or 'typing' in line]
    assert sid not in server.output()


def test_after_start_the_log_says_where_to_point_the_browser_and_what_it_shows(output_dir):
    with LiveServer(output_dir / 'server.log', PUSH_INTERVAL='5') as server:
        first = info_lines(server)[0]
    assert first.startswith(f'INFO run: serving on {server.url} ')
    assert f'open {server.url} in a browser: the Relay page' in first
    assert 'chat' in first and 'a new value every 5 s' in first


def test_on_every_address_the_log_points_the_browser_at_this_machine(output_dir):
    with LiveServer(output_dir / 'server.log', HOST='0.0.0.0') as server:
        first = info_lines(server)[0]
    port = server.url.rsplit(':', 1)[1]
    assert f'open http://127.0.0.1:{port} in a browser' in first


@pytest.mark.parametrize('how', [{'args': ['--access-log']}, {'ACCESS_LOG': '1'}],
                         ids=['option', 'variable'])
def test_the_access_log_brings_request_lines_back_without_query_strings(output_dir, how):
    server = LiveServer(output_dir / 'server.log', **how).start()
    try:
        sid = visit(server)
        assert server.stop() == 0
    finally:
        server.kill()
    requests_logged = [line for line in info_lines(server) if line.startswith('INFO run.access')]
    assert any('"GET /static/css/app.css" 200' in line for line in requests_logged)
    assert any('"GET /vendor/socket.io.esm.min.js" 200' in line for line in requests_logged)
    assert any('"POST /socket.io/" 200' in line for line in requests_logged)
    assert '?' not in ''.join(requests_logged)
    assert sid not in server.output()


def test_a_request_for_a_gone_session_is_no_error_and_its_sid_is_not_logged(output_dir):
    """A long-poll that races its own close, or any poll after a restart, names a session the
    server no longer has: that is the client's affair, and the sid is still a credential."""
    server = LiveServer(output_dir / 'server.log', args=['--access-log']).start()
    try:
        sid = visit(server)
        for method in ('GET', 'POST'):
            gone = requests.request(method, f'{server.url}/socket.io/?EIO=4&transport=polling'
                                            f'&sid={sid}', data='40/chat,', timeout=5)
            assert gone.status_code == 400
        assert server.stop() == 0
    finally:
        server.kill()
    assert sid not in server.output()
    assert not [line for line in info_lines(server) if line.startswith('ERROR')]
    assert any('"GET /socket.io/" 400' in line for line in info_lines(server))
