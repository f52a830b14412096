"""Starting and stopping the real run.py process."""
import os
import signal
import subprocess
import sys

import pytest

from tests.support.live_server import ROOT, LiveServer
from tests.support.sio_client import RecordingClient

pytestmark = pytest.mark.live


@pytest.mark.parametrize('signum', [signal.SIGTERM, signal.SIGINT])
def test_a_signal_stops_the_ticker_closes_clients_and_exits_0(output_dir, signum):
    server = LiveServer(output_dir / 'server.log', PUSH_INTERVAL='0.2').start()
    try:
        with RecordingClient(server.url, ['/chat', '/test_conn']) as ws, \
                RecordingClient(server.url, ['/chat', '/test_conn'], transports=['polling']) as poll:
            for client in (ws, poll):
                client.call('join', {'room': 'lobby'})
                client.wait_for('server_response', namespace='/test_conn')
            server.process.send_signal(signum)
            assert server.process.wait(10) == 0
            for client in (ws, poll):
                client.wait_disconnected(timeout=10)
    finally:
        server.kill()
    log = server.output()
    assert 'ticker stopped' in log and log.rstrip().endswith('run: stopped')
    assert 'Traceback' not in log


def test_an_idle_server_stops_at_once(output_dir):
    server = LiveServer(output_dir / 'server.log', PUSH_INTERVAL='3600').start()
    try:
        with RecordingClient(server.url, ['/test_conn']) as client:
            client.wait_for('ticker_history', namespace='/test_conn')
            assert server.stop(timeout=5) == 0
    finally:
        server.kill()


def run_briefly(env):
    return subprocess.run([sys.executable, 'run.py'], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=20, stdin=subprocess.DEVNULL)


def base_env(**overrides):
    env = {k: v for k, v in os.environ.items() if k not in ('SECRET_KEY', 'APP_ENV')}
    return {**env, 'PORT': '0', **overrides}


def test_production_refuses_to_start_without_a_secret():
    result = run_briefly(base_env(APP_ENV='production'))
    assert result.returncode == 2
    assert 'SECRET_KEY must be set' in result.stderr


@pytest.mark.parametrize('name, value', [('PUSH_INTERVAL', 'soon'), ('PORT', '-1'),
                                         ('PUSH_INTERVAL', '0'), ('APP_ENV', 'staging'),
                                         ('LOG_LEVEL', 'chatty'),
                                         ('MESSAGE_QUEUE', 'amqp://127.0.0.1:5672')])
def test_a_malformed_setting_is_reported_and_refused(name, value):
    result = run_briefly(base_env(**{name: value}))
    assert result.returncode == 2
    assert name in result.stderr and 'Traceback' not in result.stderr


def test_production_starts_with_a_secret(output_dir):
    server = LiveServer(output_dir / 'server.log', APP_ENV='production',
                        SECRET_KEY='a-real-secret-from-the-environment')
    with server:
        assert 'serving on' in server.output()
