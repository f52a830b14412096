"""A python-socketio client that records what it receives, with bounded waits."""
import threading
import time

import requests
import socketio


class RecordingClient:
    """Connects to some namespaces and keeps every event received, per namespace."""

    def __init__(self, url, namespaces, transports=('websocket',), auth=None):
        # Our own HTTP session: python-engineio drops its own without closing it when a
        # long-polling connection fails, leaking a socket.
        self.http = requests.Session()
        self.sio = socketio.Client(reconnection=False, http_session=self.http)
        self.events = []
        self.arrivals = []  # time.monotonic() of each of ``events``
        self.disconnects = []
        self._changed = threading.Condition()
        for namespace in namespaces:
            self.sio.on('*', self._recorder(namespace), namespace=namespace)
            self.sio.on('disconnect', self._disconnect_recorder(namespace), namespace=namespace)
        self.sio.connect(url, namespaces=list(namespaces), transports=list(transports),
                         auth=auth, wait_timeout=5)
        self._websocket = getattr(self.sio.eio, 'ws', None)

    def _recorder(self, namespace):
        def record(event, *args):
            with self._changed:
                self.events.append((namespace, event, args[0] if args else None))
                self.arrivals.append(time.monotonic())
                self._changed.notify_all()
        return record

    def _disconnect_recorder(self, namespace):
        def record(reason=None):
            with self._changed:
                self.disconnects.append((namespace, reason))
                self._changed.notify_all()
        return record

    def received(self, event, namespace='/chat'):
        """Return the payloads of ``event`` received so far."""
        with self._changed:
            return [data for ns, name, data in self.events if ns == namespace and name == event]

    def received_at(self, event, namespace='/chat'):
        """Return ``(time.monotonic() of arrival, payload)`` of each ``event`` received so far."""
        with self._changed:
            return [(at, data) for at, (ns, name, data) in zip(self.arrivals, self.events)
                    if ns == namespace and name == event]

    def forget(self):
        """Forget every event received so far."""
        with self._changed:
            self.events.clear()
            self.arrivals.clear()

    def wait_for(self, event, count=1, namespace='/chat', timeout=5.0, where=None):
        """Wait until ``count`` payloads of ``event`` (matching ``where``) arrived; return them."""
        def matching():
            found = self.received(event, namespace)
            return [data for data in found if where is None or where(data)]

        with self._changed:
            if not self._changed.wait_for(lambda: len(matching()) >= count, timeout):
                raise AssertionError(f'{count} x {event} not received in {timeout}s; got '
                                     f'{len(matching())} of them, and lately: {self.events[-5:]}')
            return matching()

    def wait_disconnected(self, timeout=5.0):
        """Wait until the server has closed the connection."""
        with self._changed:
            if not self._changed.wait_for(lambda: self.disconnects, timeout):
                raise AssertionError(f'still connected after {timeout}s')
            return list(self.disconnects)

    def call(self, event, data=None, namespace='/chat', timeout=5.0):
        """Emit ``event`` asking for an acknowledgement and return it."""
        args = () if data is None else (data,)
        return self.sio.call(event, *args, namespace=namespace, timeout=timeout)

    def emit(self, event, data=None, namespace='/chat'):
        """Emit ``event`` without asking for an acknowledgement."""
        self.sio.emit(event, data, namespace=namespace)

    def close(self):
        """Disconnect, and close the socket the server may have dropped first."""
        if self.sio.connected:
            self.sio.disconnect()
        # python-engineio's client forgets its WebSocket without closing it when the server
        # drops the connection; close it here rather than leak it.
        if self._websocket is not None:
            self._websocket.shutdown()
        self.http.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()
