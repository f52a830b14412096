"""Closing a client's whole connection, which python-socketio only offers in a blocking form."""


def close_transport(server, eio_sid):
    """Close a client's Engine.IO connection (every namespace) without waiting for its queue.

    ``eio.disconnect()`` waits for the client to drain its queue, which a long-polling client
    that never polls again, or a flooder that never reads, would make it do forever. Once the
    transport is closed the server reads nothing more from it.
    """
    socket = server.eio.sockets.pop(eio_sid, None)
    if socket is not None:
        socket.close(wait=False, reason=server.eio.reason.SERVER_DISCONNECT)
