"""Handler tests run against both presence backends: in this process, and in Redis."""
import pytest

from config import TestingConfig
from server import create_app, shutdown


@pytest.fixture(name='app', params=['memory', 'redis'])
def app_on_each_presence(request):
    """A fresh app whose /chat keeps presence in this process, or in Redis."""
    application = create_app(TestingConfig)
    if request.param == 'redis':
        from server.chat.redis_presence import RedisPresence
        chat = application.extensions['chat']
        chat.presence.close()
        chat.presence = RedisPresence(request.getfixturevalue('redis_url'), worker_id='w1')
    yield application
    shutdown(application)
