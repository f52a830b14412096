"""What server/namespaces/internals.py relies on in python-socketio and python-engineio.

These are private parts of the pinned versions; if an upgrade changes any of them, this fails
before anything subtler does, and internals.py is the one module to adapt.
"""
import inspect

import engineio
import socketio


def parameters(function):
    return list(inspect.signature(function).parameters)


def test_the_socketio_server_methods_that_are_wrapped_keep_their_shape():
    assert parameters(socketio.Server._handle_eio_message) == ['self', 'eio_sid', 'data']
    assert parameters(socketio.Server._handle_event_internal) == [
        'self', 'server', 'sid', 'eio_sid', 'data', 'namespace', 'id']
    source = inspect.getsource(socketio.Server._handle_event)
    assert 'self._handle_event_internal(self, sid, eio_sid, data' in source


def test_the_engineio_server_keeps_its_sockets_and_a_non_blocking_close():
    server = engineio.Server(async_mode='threading')
    assert server.sockets == {}
    assert parameters(engineio.socket.Socket.close) == ['self', 'wait', 'abort', 'reason']
    assert server.reason.TRANSPORT_CLOSE == 'transport close'
    assert server.reason.SERVER_DISCONNECT == 'server disconnect'
