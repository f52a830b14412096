"""The /test_conn namespace: every client receives the ticker's values unless it pauses."""
from flask_socketio import emit, join_room, leave_room

from server.namespaces.replies import AnsweringNamespace, replies

SUBSCRIBERS = 'ticker:subscribers'


class TickerNamespace(AnsweringNamespace):
    """Handlers for /test_conn; the values come from one shared ``Ticker``."""

    def __init__(self, namespace, ticker):
        super().__init__(namespace)
        self.ticker = ticker

    def on_connect(self, auth=None):
        join_room(SUBSCRIBERS)
        emit('ticker_history', {'values': self.ticker.history(), 'interval': self.ticker.interval})
        self.ticker.client_connected()

    def on_disconnect(self, reason=None):
        self.ticker.client_disconnected()

    @replies
    def on_ticker_pause(self, payload):
        leave_room(SUBSCRIBERS)
        return {'paused': True}

    @replies
    def on_ticker_resume(self, payload):
        join_room(SUBSCRIBERS)
        return {'paused': False}
