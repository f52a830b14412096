"""The /test_conn namespace: every client receives the ticker's values unless it pauses."""
from server.namespaces.access import signed_in_user
from server.namespaces.replies import AnsweringNamespace, replies

SUBSCRIBERS = 'ticker:subscribers'


class TickerNamespace(AnsweringNamespace):
    """Handlers for /test_conn; the values come from one shared ``Ticker``."""

    def __init__(self, namespace, ticker, limiter=None, users=None):
        super().__init__(namespace, limiter)
        self.ticker = ticker
        self.users = users  # sign-in tokens when AUTH_REQUIRED, else None: anyone may connect

    def on_connect(self, auth=None):
        """Send the recent values and subscribe the client; with AUTH_REQUIRED, only a client
        with a good sign-in token."""
        self.count_connect()
        signed_in_user(self, self.users, auth)
        self.enter_room(self.sid, SUBSCRIBERS)
        self.reply('ticker_history', {'values': self.ticker.history(),
                                      'interval': self.ticker.interval})
        self.ticker.client_connected()

    def on_disconnect(self, reason=None):
        self.ticker.client_disconnected()

    @replies
    def on_ticker_pause(self, payload):
        self.leave_room(self.sid, SUBSCRIBERS)
        return {'paused': True}

    @replies
    def on_ticker_resume(self, payload):
        self.enter_room(self.sid, SUBSCRIBERS)
        return {'paused': False}
