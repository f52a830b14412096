"""Fixtures shared by every test layer."""
import shutil
from pathlib import Path

import pytest

from config import TestingConfig
from server import create_app, shutdown
from server.extensions import socketio
from tests.support.calm_client import CALM_ALLOWANCE
from tests.support.live_server import LiveServer
from tests.support.redis_server import RedisServer


@pytest.fixture
def app():
    """A fresh app for handler tests, on threads with a ticker that never fires by itself."""
    application = create_app(TestingConfig)
    yield application
    shutdown(application)


@pytest.fixture
def chat_client(app):
    """A Socket.IO test client connected to /chat."""
    client = socketio.test_client(app, namespace='/chat')
    yield client
    if client.is_connected('/chat'):
        client.disconnect(namespace='/chat')


@pytest.fixture
def output_dir(request):
    """A fresh folder for this test's logs, database and screenshots, kept under test-output/."""
    path = Path(__file__).resolve().parent.parent / 'test-output' / request.node.name
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return path


@pytest.fixture
def live_server(output_dir):
    """``run.py`` on a free port with a fast ticker and a short reconnect grace; stopped
    (SIGTERM) after the test."""
    with LiveServer(output_dir / 'server.log', PUSH_INTERVAL='0.2',
                    RECONNECT_GRACE='0.5') as server:
        yield server


@pytest.fixture
def watched_server(output_dir):
    """``run.py`` as ``live_server`` is, allowing a calm client (tests/support/calm_client.py)
    its 50 echoes a second."""
    with LiveServer(output_dir / 'server.log', PUSH_INTERVAL='0.2', RECONNECT_GRACE='0.5',
                    **CALM_ALLOWANCE) as server:
        yield server


@pytest.fixture(scope='session')
def redis_server(tmp_path_factory):
    """One real redis-server for the session, on a free loopback port."""
    with RedisServer(tmp_path_factory.mktemp('redis')) as server:
        yield server


@pytest.fixture
def redis_url(redis_server):
    """The URL of the session's Redis, emptied for this test."""
    redis_server.flush()
    return redis_server.url


@pytest.fixture(scope='session')
def postgres_server():
    """One real PostgreSQL server for the session, in a temporary folder, on a free port."""
    from tests.support.postgres_server import PostgresServer
    with PostgresServer() as server:
        yield server


@pytest.fixture
def postgres_url(postgres_server):
    """The URL of a fresh, empty database on the session's PostgreSQL, dropped after the test."""
    if not postgres_server.running():  # a test that stopped it and failed before restarting
        postgres_server.start()
    url = postgres_server.create_database()
    yield url
    postgres_server.drop_database(url)
