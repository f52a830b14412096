"""Optional authentication (``AUTH_REQUIRED``): sign-in tokens that name a user.

A sign-in token is the user's name (and, if it was given a shorter life, when it expires) with
the time it was issued, signed with ``SECRET_KEY`` by itsdangerous's ``URLSafeTimedSerializer``
under the salt ``SALT``. An operator's own login system may call ``UserTokens.issue`` (or
``python run.py token USER``), or make the same token itself with itsdangerous. The server takes
a token only while it is younger than ``TOKEN_MAX_AGE`` seconds and before its own expiry.
"""
import time

from itsdangerous import BadData, URLSafeTimedSerializer

from server.chat import validation
from server.errors import ClientError

SALT = 'relay.user'


def auth_required():
    """Return the refusal of a connect without a sign-in token."""
    return ClientError('auth_required', 'this server requires a sign-in token '
                       '(auth {"token": ...}); ask whoever runs it for one')


def invalid_token(why):
    """Return the refusal of a sign-in token the server cannot take, saying ``why``."""
    return ClientError('invalid_token', f'the sign-in token {why}; ask for a new one')


class UserTokens:
    """Issues sign-in tokens for users and checks presented ones.

    ``max_age`` bounds every token's age in seconds; ``max_nick_length`` is the nick rule a
    user's name must follow, since it is the user's nick. ``clock`` gives the time in seconds
    since the epoch (tokens carry wall-clock times).
    """

    def __init__(self, secret_key, max_age, max_nick_length, clock=time.time):
        self._serializer = URLSafeTimedSerializer(secret_key, salt=SALT)
        self.max_age = max_age
        self.max_nick_length = max_nick_length
        self._clock = clock

    def issue(self, user, ttl=None):
        """Return a sign-in token for ``user``, valid ``ttl`` seconds (``max_age`` if None).

        Raises ClientError ``invalid_nick`` for a name that is not a valid nick, and
        ValueError for a ``ttl`` outside 1..``max_age``.
        """
        payload = {'user': self._name(user)}
        if ttl is not None:
            if not 1 <= ttl <= self.max_age:
                raise ValueError(f'the time to live must be 1 to {self.max_age} seconds '
                                 f'(TOKEN_MAX_AGE), got {ttl}')
            payload['exp'] = int(self._clock() + ttl)
        return self._serializer.dumps(payload)

    def verify(self, token):
        """Return the user a sign-in token names; raise ClientError ``invalid_token`` if the
        token is not one this server signed, has expired, or names no valid user."""
        if not isinstance(token, str):
            raise invalid_token('must be a string')
        try:
            payload, issued = self._serializer.loads(token, return_timestamp=True)
        except BadData:
            raise invalid_token('is not valid here (altered, or signed with another '
                                'SECRET_KEY)') from None
        now = self._clock()
        if not isinstance(payload, dict):
            raise invalid_token('names no user')
        expires = payload.get('exp')
        if now - issued.timestamp() > self.max_age or (
                isinstance(expires, (int, float)) and now >= expires):
            raise invalid_token('has expired')
        try:
            return self._name(payload.get('user'))
        except ClientError as error:
            raise invalid_token(f'names no valid user ({error.message})') from None

    def user(self, auth):
        """Return the user signed in by a connect ``auth`` payload's ``token``.

        Raises ClientError ``auth_required`` when it carries none, ``invalid_token`` when the
        token is not good.
        """
        token = auth.get('token') if isinstance(auth, dict) else None
        if token is None:
            raise auth_required()
        return self.verify(token)

    def _name(self, user):
        return validation.nick({'user': user}, 'user', self.max_nick_length)
