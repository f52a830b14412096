"""A TCP proxy on the loopback whose connections a test can cut, like a network that fails."""
import socket
import threading

CHUNK = 65536


class CuttableProxy:
    """Forwards every connection to ``target`` (host, port); ``cut()`` breaks the live ones.

    New connections are still accepted after a cut, so clients that reconnect get through.
    With ``source`` (a local address), the forwarded connections leave from it: a client of
    any transport then reaches ``target`` as if from that address.
    """

    def __init__(self, target, source=None):
        self.target = target
        self.source_address = None if source is None else (source, 0)
        self._listener = socket.create_server(('127.0.0.1', 0))
        self.url = f'http://127.0.0.1:{self._listener.getsockname()[1]}'
        self._lock = threading.Lock()
        self._sockets = set()
        self._closed = False
        self._acceptor = threading.Thread(target=self._accept, daemon=True)
        self._acceptor.start()

    def cut(self):
        """Break every connection open now, in both directions, without a goodbye."""
        with self._lock:
            sockets, self._sockets = self._sockets, set()
        for sock in sockets:
            _close(sock)

    def close(self):
        """Stop accepting and break every connection."""
        self._closed = True
        _close(self._listener)
        self.cut()
        self._acceptor.join(5)

    def _accept(self):
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target, timeout=5,
                                                    source_address=self.source_address)
            except OSError:
                _close(client)
                continue
            upstream.settimeout(None)
            with self._lock:
                self._sockets.update((client, upstream))
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    def _pump(self, source, sink):
        try:
            while chunk := source.recv(CHUNK):
                sink.sendall(chunk)
        except OSError:
            pass
        finally:
            with self._lock:
                self._sockets.discard(source)
                self._sockets.discard(sink)
            _close(source)
            _close(sink)

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()


def _close(sock):
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    sock.close()
