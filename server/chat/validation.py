"""Checks on what clients send; each failure raises a ClientError naming the problem."""
import re
import unicodedata

from server.chat import names
from server.errors import ClientError

# Message text may hold newlines, tabs and format characters (emoji sequences need U+200D);
# names are shown on one line, so they refuse every control, format and separator character.
_TEXT_ALLOWED = frozenset('\n\t')
_TEXT_FORBIDDEN = frozenset({'Cc'})
_NAME_FORBIDDEN = frozenset({'Cc', 'Cf', 'Zl', 'Zp'})
# A lone surrogate (half of a UTF-16 pair: a client that cuts a string inside an emoji sends
# one) has no UTF-8 form, so SQLite cannot store it and a page shows it as U+FFFD; no text may
# hold one. In message text every other code point, unassigned, private-use and noncharacters
# included, goes through UTF-8, SQLite and JSON unchanged; names refuse those (PRECIS).
_SURROGATE = frozenset({'Cs'})
MAX_ID = 2 ** 63 - 1
_CLIENT_ID = re.compile(r'[A-Za-z0-9_.:-]{1,64}')
_USER_ID = re.compile(r'[0-9a-f]{16}')


def require_object(payload):
    """Return the payload if it is a JSON object, else refuse it."""
    if not isinstance(payload, dict):
        raise ClientError('bad_request', 'the payload must be a JSON object')
    return payload


def require_string(payload, key):
    """Return ``payload[key]`` if the payload is an object holding a string there."""
    value = require_object(payload).get(key)
    if value is None:
        raise ClientError('bad_request', f'"{key}" is required')
    if not isinstance(value, str):
        raise ClientError('bad_request', f'"{key}" must be a string')
    return value


def room_name(payload, max_length):
    """Return the room name from ``payload["room"]`` in its PRECIS form (server.chat.names):
    1..max_length characters."""
    return _name(require_string(payload, 'room'), 'the room name', max_length, 'invalid_room')


def nick(payload, key, max_length):
    """Return the nick from ``payload[key]`` in its PRECIS form (server.chat.names): 1..max_length
    characters."""
    return _name(require_string(payload, key), 'the nick', max_length, 'invalid_nick')


def _name(value, what, max_length, code):
    name = value.strip()
    if not name:
        raise ClientError(code, f'{what} is empty')
    # Checked before PRECIS too, which would otherwise work through a whole oversized packet.
    if len(name) > max_length:
        raise ClientError(code, f'{what} is longer than {max_length} characters')
    if _has_forbidden(name, _SURROGATE):
        raise ClientError(code, f'{what} contains a lone surrogate (half of a UTF-16 pair)')
    if _has_forbidden(name, _NAME_FORBIDDEN):
        raise ClientError(code, f'{what} contains control characters')
    try:
        name = names.enforce(name)
    except names.NameRefused as refused:
        raise ClientError(code, f'{what} {refused}') from None
    if len(name) > max_length:  # NFKC spells some characters out (U+FDFA is 18 letters)
        raise ClientError(code, f'{what} is longer than {max_length} characters once normalized')
    return name


def message_text(payload, key, max_length):
    """Return ``payload[key]`` as message text: not blank, at most max_length characters."""
    text = require_string(payload, key)
    if not text.strip():
        raise ClientError('empty_message', f'"{key}" is empty')
    if len(text) > max_length:
        raise ClientError('message_too_long', f'"{key}" is longer than {max_length} characters')
    if _has_forbidden(text, _SURROGATE):
        raise ClientError('bad_request',
                          f'"{key}" contains a lone surrogate (half of a UTF-16 pair)')
    if _has_forbidden(text, _TEXT_FORBIDDEN, _TEXT_ALLOWED):
        raise ClientError('bad_request', f'"{key}" contains control characters')
    return text


def optional_id(payload, key):
    """Return ``payload[key]`` as a message id (0 up to SQLite's largest integer), or None."""
    value = require_object(payload).get(key)
    if value is None:
        return None
    if not _is_whole(value) or not 0 <= value <= MAX_ID:
        raise ClientError('bad_request', f'"{key}" must be a whole number from 0 to {MAX_ID}')
    return value


def optional_limit(payload, default, maximum):
    """Return ``payload["limit"]`` (at least 1, capped at maximum), or ``default`` (capped too)."""
    value = require_object(payload).get('limit')
    if value is None:
        return min(default, maximum)
    if not _is_whole(value) or value < 1:
        raise ClientError('bad_request', '"limit" must be a whole number from 1 up')
    return min(value, maximum)


def _is_whole(value):
    return isinstance(value, int) and not isinstance(value, bool)


def optional_client_id(payload):
    """Return ``payload["client_id"]``, 1..64 letters, digits or ``-_.:``, or None when absent."""
    value = require_object(payload).get('client_id')
    if value is None:
        return None
    if not isinstance(value, str) or not _CLIENT_ID.fullmatch(value):
        raise ClientError('bad_request', '"client_id" must be 1 to 64 letters, digits or -_.:')
    return value


def optional_user_id(payload, key):
    """Return ``payload[key]`` as a user id (16 lowercase hex digits), or None when absent."""
    value = require_object(payload).get(key)
    if value is None:
        return None
    if not isinstance(value, str) or not _USER_ID.fullmatch(value):
        raise ClientError('bad_request', f'"{key}" must be a user id (16 hex digits)')
    return value


def require_bool(payload, key):
    """Return ``payload[key]`` if it is true or false."""
    value = require_object(payload).get(key)
    if not isinstance(value, bool):
        raise ClientError('bad_request', f'"{key}" must be true or false')
    return value


def _has_forbidden(text, categories, allowed=frozenset()):
    # Every category forbidden anywhere is one str.isprintable() refuses, and it looks at the
    # whole text in C: most text needs no look at each character.
    if text.isprintable():
        return False
    return any(
        unicodedata.category(char) in categories and char not in allowed for char in text
    )
