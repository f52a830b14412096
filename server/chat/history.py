"""Room messages: each gets the room's next id, and the latest are kept for newcomers."""
import collections
import dataclasses

from server.clock import now_ms


@dataclasses.dataclass(frozen=True)
class Message:
    """One stored chat message."""

    id: int
    room: str
    nick: str
    text: str
    ts: int

    def to_dict(self):
        """Return the message as the ``chat_message`` payload."""
        return dataclasses.asdict(self)


class MemoryHistory:
    """Per-room message ids and the last ``keep`` messages of each room, in process memory."""

    def __init__(self, keep, clock=now_ms):
        self._keep = keep
        self._clock = clock
        self._last_id = collections.Counter()
        self._recent = {}

    def append(self, room, nick, text):
        """Store a message under the room's next id and return it."""
        self._last_id[room] += 1
        message = Message(self._last_id[room], room, nick, text, self._clock())
        if self._keep:
            self._recent.setdefault(room, collections.deque(maxlen=self._keep)).append(message)
        return message

    def recent(self, room, limit):
        """Return up to ``limit`` of the room's latest messages, oldest first."""
        messages = self._recent.get(room, ())
        return list(messages)[-limit:] if limit > 0 else []
