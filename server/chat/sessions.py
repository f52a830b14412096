"""Sessions: a token the server signs and gives each new client, which it presents on reconnect.

The token is the client's identity across reconnects and restarts until real accounts exist:
whoever holds it may take back its nick from a connection that has not been noticed dead yet,
and may read the direct messages sent to or from it. It is signed with the server's
``SECRET_KEY``, so a token the server did not issue (made up, altered, or signed with a key the
server no longer has) is refused rather than taken as a new session. Only a hash of it is ever
stored. A client signed in with a user token (``server.auth``) has its user's session instead.
"""
import hashlib
import re
import secrets

from itsdangerous import Signer

from server.errors import ClientError

SALT = 'relay.session'
# What the server issues: 43 characters of randomness, a dot, a 43-character HMAC-SHA256.
TOKEN_FORMAT = re.compile(r'[A-Za-z0-9_-]{43}\.[A-Za-z0-9_-]{43}')


def invalid_session():
    """Return the refusal of a session token the server did not sign with its current key."""
    return ClientError('invalid_session',
                       'the session token is not valid here (made up, altered, or signed with an '
                       'old SECRET_KEY); connect without it to start a new session')


class SessionTokens:
    """Issues session tokens signed with the server's secret key, and checks presented ones."""

    def __init__(self, secret_key):
        self._signer = Signer(secret_key, salt=SALT, digest_method=hashlib.sha256)

    def issue(self):
        """Return a fresh, unguessable session token signed with the secret key."""
        return self._signer.sign(secrets.token_urlsafe(32)).decode()

    def presented(self, auth):
        """Return the session token in a connect ``auth`` payload, or None if it names none.

        Raises ClientError ``invalid_session`` for a token this server did not sign with its
        current key.
        """
        token = auth.get('session') if isinstance(auth, dict) else None
        if token is None:
            return None
        if not isinstance(token, str) or not TOKEN_FORMAT.fullmatch(token) \
                or not self._signer.validate(token):
            raise invalid_session()
        return token


def session_key(token):
    """Return the key under which a session's data is stored: a hash, never the token."""
    return hashlib.sha256(token.encode()).hexdigest()


def user_key(user):
    """Return the key under which a signed-in user's session data is stored.

    One per user, whichever tab or device it connects from; never equal to a session token's
    key (no token has this form).
    """
    return hashlib.sha256(f'signed-in user:{user}'.encode()).hexdigest()


def user_id(key):
    """Return the public, stable id of the user a session key stands for.

    Derived one way from the key, so it names the same user on every worker and after every
    restart without being stored, and tells nothing that would let anyone act as that user.
    """
    return hashlib.sha256(f'user:{key}'.encode()).hexdigest()[:16]
