"""Who is typing where; a flag nobody refreshes expires by itself."""
import time


class TypingTracker:
    """Typing flags per (client, room), each with a deadline ``timeout`` seconds ahead."""

    def __init__(self, timeout, clock=time.monotonic):
        self.timeout = timeout
        self._clock = clock
        self._deadlines = {}

    def __len__(self):
        return len(self._deadlines)

    def start(self, sid, room):
        """Set or refresh the flag; return True if the client was not typing there before."""
        is_new = (sid, room) not in self._deadlines
        self._deadlines[(sid, room)] = self._clock() + self.timeout
        return is_new

    def stop(self, sid, room):
        """Clear the flag; return True if it was set."""
        return self._deadlines.pop((sid, room), None) is not None

    def stop_client(self, sid):
        """Clear every flag of a client; return the rooms it was typing in."""
        keys = [key for key in self._deadlines if key[0] == sid]
        for key in keys:
            del self._deadlines[key]
        return [room for _, room in keys]

    def expire(self):
        """Clear the flags past their deadline; return them as (sid, room) pairs."""
        now = self._clock()
        expired = [key for key, deadline in self._deadlines.items() if deadline <= now]
        for key in expired:
            del self._deadlines[key]
        return expired
