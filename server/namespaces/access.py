"""Who may connect: a refused connect is a Socket.IO ``connect_error`` saying why.

The refusal carries the reason twice: ``message`` for people, and ``data`` ``{"code",
"message"}``, the shape of every other refusal, for programs (socket.io-client gives them as
``err.message`` and ``err.data``). The address and the code are logged, never a token.
"""
import logging

from flask_socketio import ConnectionRefusedError

from server.edge import address_of
from server.errors import ClientError

log = logging.getLogger(__name__)


def client_address(namespace):
    """The address the client being served connected from (behind a trusted proxy, the one
    the proxy names)."""
    return address_of(namespace.server.get_environ(namespace.sid,
                                                   namespace=namespace.namespace) or {})


def refuse_connect(namespace, error):
    """Log the refusal of the connect being served and return it as the exception to raise."""
    log.info('refused a connect to %s from %s: %s (%s)', namespace.namespace,
             client_address(namespace), error.code, error.message)
    return ConnectionRefusedError(error.message, {'code': error.code, 'message': error.message})


def signed_in_user(namespace, users, auth):
    """Return the user a connect's ``auth`` signs in, or None when ``users`` is None (anyone
    may connect); raise the connect's refusal when it signs nobody in."""
    if users is None:
        return None
    try:
        return users.user(auth)
    except ClientError as error:
        raise refuse_connect(namespace, error) from None
