"""Sessions: a secret token the server gives each new client, which it presents on reconnect.

The token is the client's identity across reconnects and restarts until real accounts exist:
whoever holds it may take back its nick from a connection that has not been noticed dead yet,
and may read the direct messages sent to or from it. Only a hash of it is ever stored.
"""
import hashlib
import re
import secrets

_TOKEN = re.compile(r'[A-Za-z0-9_-]{32,64}')


def new_token():
    """Return a fresh unguessable session token."""
    return secrets.token_urlsafe(32)


def presented_token(auth):
    """Return the well-formed session token in a connect ``auth`` payload, or None."""
    token = auth.get('session') if isinstance(auth, dict) else None
    return token if isinstance(token, str) and _TOKEN.fullmatch(token) else None


def session_key(token):
    """Return the key under which a session's data is stored: a hash, never the token."""
    return hashlib.sha256(token.encode()).hexdigest()


def user_id(key):
    """Return the public, stable id of the user a session key stands for.

    Derived one way from the key, so it names the same user on every worker and after every
    restart without being stored, and tells nothing that would let anyone act as that user.
    """
    return hashlib.sha256(f'user:{key}'.encode()).hexdigest()[:16]
