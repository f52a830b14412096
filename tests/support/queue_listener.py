"""Flask-SocketIO's Redis channel, listened to from a test as one more worker would."""
import json
import time

import redis


class QueueListener:
    """Listens on Flask-SocketIO's Redis channel from the test, as one more worker would."""

    def __init__(self, redis_url):
        self.client = redis.Redis.from_url(redis_url)
        self.channel = self.client.pubsub(ignore_subscribe_messages=True)
        self.channel.subscribe('flask-socketio')

    def wait_for_emit(self, event, timeout=5.0):
        """Wait until an emit of ``event`` crosses the queue, decoding every message as JSON."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            message = self.channel.get_message(timeout=deadline - time.monotonic())
            if message is not None:
                packet = json.loads(message['data'])  # a pickle would not load
                if packet['method'] == 'emit' and packet['event'] == event:
                    return packet
        raise AssertionError(f'no {event} emitted through the queue in {timeout}s')

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.channel.close()
        self.client.close()

    def emitted_events(self, seconds):
        """Return the events of every emit that crosses the queue within ``seconds``."""
        deadline = time.monotonic() + seconds
        events = []
        while (left := deadline - time.monotonic()) > 0:
            message = self.channel.get_message(timeout=left)
            if message is not None:
                packet = json.loads(message['data'])
                if packet['method'] == 'emit':
                    events.append(packet['event'])
        return events
