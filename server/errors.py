"""The one error type a client is told about, and the reply shape that carries it."""


class ClientError(Exception):
    """A request the server refuses; ``code`` is stable for programs, ``message`` is for people."""

    def __init__(self, code, message):
        super().__init__(message)
        self.code = code
        self.message = message

    def to_reply(self):
        """Return the ``{"ok": false, "error": {code, message}}`` reply sent to the client."""
        return {'ok': False, 'error': {'code': self.code, 'message': self.message}}
