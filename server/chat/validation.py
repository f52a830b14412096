"""Checks on what clients send; each failure raises a ClientError naming the problem."""
import unicodedata

from server.errors import ClientError

# Message text may hold newlines, tabs and format characters (emoji sequences need U+200D);
# names are shown on one line, so they refuse every control, format and separator character.
_TEXT_ALLOWED = frozenset('\n\t')
_TEXT_FORBIDDEN = frozenset({'Cc'})
_NAME_FORBIDDEN = frozenset({'Cc', 'Cf', 'Zl', 'Zp'})


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
    """Return the trimmed room name from ``payload["room"]``: 1..max_length visible characters."""
    room = require_string(payload, 'room').strip()
    if not room:
        raise ClientError('invalid_room', 'the room name is empty')
    if len(room) > max_length:
        raise ClientError('invalid_room', f'the room name is longer than {max_length} characters')
    if _has_forbidden(room, _NAME_FORBIDDEN):
        raise ClientError('invalid_room', 'the room name contains control characters')
    return room


def message_text(payload, key, max_length):
    """Return ``payload[key]`` as message text: not blank, at most max_length characters."""
    text = require_string(payload, key)
    if not text.strip():
        raise ClientError('empty_message', f'"{key}" is empty')
    if len(text) > max_length:
        raise ClientError('message_too_long', f'"{key}" is longer than {max_length} characters')
    if _has_forbidden(text, _TEXT_FORBIDDEN, _TEXT_ALLOWED):
        raise ClientError('bad_request', f'"{key}" contains control characters')
    return text


def _has_forbidden(text, categories, allowed=frozenset()):
    return any(
        unicodedata.category(char) in categories and char not in allowed for char in text
    )
