"""Closing a client's whole connection, which python-socketio only offers in a blocking form."""


def close_transport(server, eio_sid, lost=False):
    """Close a client's Engine.IO connection (every namespace) without waiting for its queue.

    ``eio.disconnect()`` waits for the client to drain its queue, which a long-polling client
    that never polls again, or a flooder that never reads, would make it do forever. Once the
    transport is closed the server reads nothing more from it.

    By default the client is sent Engine.IO's CLOSE packet, which Socket.IO clients take as
    the server's wish and do not reconnect after. With ``lost`` the connection just ends, as a
    network failure would: clients reconnect by themselves (a server that is restarting).
    """
    socket = server.eio.sockets.pop(eio_sid, None)
    if socket is not None:
        reason = server.eio.reason.TRANSPORT_CLOSE if lost else server.eio.reason.SERVER_DISCONNECT
        socket.close(wait=False, abort=lost, reason=reason)
