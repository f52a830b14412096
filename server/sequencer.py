"""Putting numbered items back in order: room messages that reach a worker out of order.

Several workers store messages in one room, each taking the next id from the database, and
each publishes what it stored to the message queue. Two workers storing ids 7 and 8 at the same
moment may publish them the other way round, and every worker would then deliver 8 before 7.
A ``Sequencer`` per worker sits where deliveries come in: it hands an item on as soon as it is
the next in its key's sequence, and holds one that comes early until the gap is filled or, if
the missing one never comes (its worker died between storing and publishing), until ``hold``
seconds have passed; clients then fetch the missing message from history, by the resume rule.

The first item of a key it has not seen (or has forgotten: it remembers ``max_keys`` keys)
is held ``first_hold`` seconds, so that another published at about the same moment with a lower
number still goes first.
"""
import collections
import time


class Sequencer:
    """Hands items on in the order of their numbers, per key (a room)."""

    def __init__(self, hold, first_hold=None, max_keys=10_000, clock=time.monotonic):
        self.hold = hold
        self.first_hold = hold if first_hold is None else first_hold
        self._max_keys = max_keys
        self._clock = clock
        self._last = collections.OrderedDict()  # key -> the number last handed on
        self._held = {}  # key -> {number: item}
        self._due_at = {}  # key -> when its held items go, whatever is missing

    @property
    def holding(self):
        """Return whether any item is held."""
        return bool(self._held)

    def offer(self, key, number, item):
        """Take an item in; return the items to hand on now, in order (maybe none)."""
        last = self._last.get(key)
        if last is not None:
            self._last.move_to_end(key)
        if last is not None and number <= last:
            return [item]  # late (its gap was given up on) or a repeat: no use holding it
        if last is not None and number == last + 1 and key not in self._held:
            self._remember(key, number)
            return [item]
        self._held.setdefault(key, {})[number] = item
        wait = self.hold if last is not None else self.first_hold
        self._due_at.setdefault(key, self._clock() + wait)
        return self._release(key, give_up=False) if last is not None else []

    def due(self):
        """Return the held items whose wait is over, each key's in order, giving up on the gap
        before them."""
        now = self._clock()
        ready = []
        for key in [key for key, due_at in self._due_at.items() if due_at <= now]:
            ready += self._release(key, give_up=True)
        return ready

    def next_due_in(self):
        """Return the seconds until ``due()`` has something to hand on, or None if nothing is
        held."""
        if not self._due_at:
            return None
        return max(0.0, min(self._due_at.values()) - self._clock())

    def _release(self, key, give_up):
        """Hand on the key's held items that are next in line; with ``give_up``, the gap before
        the lowest is given up on first. Items after a further gap wait a whole hold for it."""
        held = self._held[key]
        numbers = sorted(held)
        expected = numbers[0] if give_up else self._last[key] + 1
        ready = []
        for number in numbers:
            if number != expected:
                break
            ready.append(held.pop(number))
            expected += 1
        if ready:
            self._remember(key, expected - 1)
        if not held:
            del self._held[key], self._due_at[key]
        elif ready:
            self._due_at[key] = self._clock() + self.hold
        return ready

    def _remember(self, key, number):
        self._last[key] = number
        self._last.move_to_end(key)
        while len(self._last) > self._max_keys:
            oldest = next(iter(self._last))
            if oldest in self._held:
                break  # never forget a key whose items are held
            del self._last[oldest]
