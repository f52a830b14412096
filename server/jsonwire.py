"""The JSON module Socket.IO encodes and decodes every packet with: orjson, falling back to the
standard library for the rare value orjson refuses.

orjson is several times faster; what it refuses (a lone surrogate such as ``"\\ud800"``, which
the standard library decodes and the chat then turns down with a clear error, or an integer
beyond 64 bits) goes to the standard library, so every packet means what it meant before.
"""
import json

import orjson


def dumps(obj, **_options):
    """Encode compactly (python-socketio's ``separators`` are orjson's only output)."""
    try:
        return orjson.dumps(obj).decode()
    except TypeError:
        return json.dumps(obj, separators=(',', ':'))


def loads(text, **_options):
    """Decode ``text``; raise ValueError if neither decoder can."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(text)
