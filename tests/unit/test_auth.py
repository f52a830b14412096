"""Sign-in tokens (AUTH_REQUIRED), without sockets."""
import time

import pytest
from itsdangerous import URLSafeTimedSerializer

from server.auth import SALT, UserTokens
from server.errors import ClientError

SECRET = 'this-servers-secret'
MAX_AGE = 3600


def tokens_at(now=None, secret=SECRET):
    """UserTokens whose clock says ``now`` (the real time if None)."""
    return UserTokens(secret, MAX_AGE, 32, clock=(lambda: now) if now is not None else time.time)


def refusal(tokens, token):
    with pytest.raises(ClientError) as refused:
        tokens.verify(token)
    return refused.value


def test_a_token_names_its_user_on_every_worker_until_it_is_too_old():
    token = tokens_at().issue('Ana')
    assert tokens_at().verify(token) == 'Ana'
    assert tokens_at(time.time() + MAX_AGE - 60).verify(token) == 'Ana'
    late = refusal(tokens_at(time.time() + MAX_AGE + 60), token)
    assert late.code == 'invalid_token' and 'expired' in late.message


def test_a_token_given_a_shorter_life_expires_then():
    token = tokens_at().issue('Ana', ttl=60)
    assert tokens_at(time.time() + 30).verify(token) == 'Ana'
    late = refusal(tokens_at(time.time() + 90), token)
    assert late.code == 'invalid_token' and 'expired' in late.message


@pytest.mark.parametrize('ttl', [0, -1, MAX_AGE + 1])
def test_a_life_beyond_the_max_age_is_not_issued(ttl):
    with pytest.raises(ValueError, match='TOKEN_MAX_AGE'):
        tokens_at().issue('Ana', ttl=ttl)


@pytest.mark.parametrize('user, code', [('', 'invalid_nick'), ('x' * 33, 'invalid_nick'),
                                        ('a\u0000b', 'invalid_nick')])
def test_only_a_name_that_is_a_valid_nick_gets_a_token(user, code):
    with pytest.raises(ClientError) as refused:
        tokens_at().issue(user)
    assert refused.value.code == code


def test_the_name_is_trimmed_as_a_nick_is():
    assert tokens_at().verify(tokens_at().issue('  Ana ')) == 'Ana'


def signed(payload, secret=SECRET):
    """A token as an operator's own login system makes it, with itsdangerous."""
    return URLSafeTimedSerializer(secret, salt=SALT).dumps(payload)


def test_an_operator_may_sign_tokens_with_itsdangerous_directly():
    assert tokens_at().verify(signed({'user': 'Ana'})) == 'Ana'


@pytest.mark.parametrize('token, why', [
    (signed({'user': 'Ana'}, secret='an-old-secret'), 'not valid here'),
    (signed({'user': 'Ana'})[:-2] + 'xx', 'not valid here'),
    ('made-up', 'not valid here'),
    (42, 'must be a string'),
    (signed(['Ana']), 'names no user'),
    (signed({'name': 'Ana'}), 'names no valid user'),
    (signed({'user': 'x' * 33}), 'names no valid user'),
])
def test_a_token_the_server_cannot_take_is_refused_saying_why(token, why):
    refused = refusal(tokens_at(), token)
    assert refused.code == 'invalid_token' and why in refused.message


@pytest.mark.parametrize('auth', [None, {}, {'token': None}, 'token', {'session': 'x' * 43}])
def test_a_connect_without_a_token_is_told_one_is_required(auth):
    with pytest.raises(ClientError) as refused:
        tokens_at().user(auth)
    assert refused.value.code == 'auth_required'


def test_a_connect_with_a_good_token_signs_its_user_in():
    assert tokens_at().user({'token': tokens_at().issue('Ana'), 'nick': 'Bob'}) == 'Ana'
