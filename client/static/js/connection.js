// Connection status of one Socket.IO socket, and requests that always wait for an answer.

import { failure } from './notice.js';

const ACK_TIMEOUT_MS = 5000;
const SERVER_KICK_RETRY_MS = 2000;

const STATE_TEXT = {
  connecting: 'connecting…',
  connected: 'connected',
  reconnecting: 'reconnecting…',
  offline: 'offline',
  kicked: 'disconnected by the server',
};

/** A refused or unanswered request: code is stable for programs, message is for people. */
export class RequestError extends Error {
  constructor(code, message, event) {
    super(message);
    this.name = 'RequestError';
    this.code = code;
    this.event = event;
  }
}

/**
 * Emit an event and wait for its acknowledgement. Resolves with the reply when it says
 * {ok: true}; rejects with a RequestError when the server refuses, does not answer within
 * the timeout, or the socket is not connected (nothing is queued to be sent later).
 */
export async function request(socket, event, payload) {
  if (!socket.connected) {
    throw new RequestError('offline', 'Not connected to the server. Wait until it reconnects.', event);
  }
  const args = payload === undefined ? [event] : [event, payload];
  let reply;
  try {
    reply = await socket.timeout(ACK_TIMEOUT_MS).emitWithAck(...args);
  } catch {
    throw new RequestError('timeout', `The server did not answer "${event}" in time.`, event);
  }
  if (!reply || reply.ok !== true) {
    const error = reply?.error ?? {};
    throw new RequestError(error.code ?? 'unknown',
      error.message ?? 'The server refused the request.', event);
  }
  return reply;
}

/**
 * Show a socket's connection state in a status element: sets data-state (connecting,
 * connected, reconnecting, offline, kicked), data-transport (polling, websocket) and the
 * visible text. Returns a function that reports the current state.
 *
 * When the server closes the namespace on purpose ("io server disconnect", which
 * socket.io-client never retries by itself), the socket tries again after a pause; with
 * retryWhenKicked false it stays "kicked" until something else connects it again.
 */
export function watchConnection(socket, element, { onServerError, retryWhenKicked = true } = {}) {
  const textElement = element.querySelector('.status-text') ?? element;
  const manager = socket.io;
  let state = 'connecting';

  const show = (next, detail = '') => {
    state = next;
    element.dataset.state = next;
    textElement.textContent = detail ? `${STATE_TEXT[next]} ${detail}` : STATE_TEXT[next];
  };

  const showTransport = () => {
    const transport = manager.engine?.transport?.name;
    if (transport) {
      element.dataset.transport = transport;
      element.title = `Transport: ${transport}`;
    }
  };

  socket.on('connect', () => {
    show('connected');
    showTransport();
    manager.engine?.once('upgrade', showTransport);
  });

  socket.on('disconnect', (reason) => {
    if (reason === 'io client disconnect') {
      show('offline');
    } else if (socket.active) {
      show('reconnecting');
    } else if (!retryWhenKicked) {
      show('kicked');
    } else {
      // The server closed this namespace on purpose, so the client does not retry by itself:
      // try again after a pause (never in a tight loop).
      show('reconnecting');
      setTimeout(() => socket.connect(), SERVER_KICK_RETRY_MS);
    }
  });

  // A refusal of an event sent without an acknowledgement comes back as an `error` event.
  socket.on('error', (reply) => {
    onServerError?.(failure(`The server refused "${reply?.event ?? 'a request'}"`, reply?.error));
  });

  socket.on('connect_error', (error) => {
    if (socket.active) {
      show('reconnecting');
    } else {
      show('offline');
      onServerError?.(`The server refused the connection: ${error.message}`);
    }
  });

  // The manager is shared by every namespace: a kicked socket is not part of its reconnection.
  manager.on('reconnect_attempt', (attempt) => {
    if (!socket.connected && state !== 'kicked') show('reconnecting', `(attempt ${attempt})`);
  });

  manager.on('reconnect_failed', () => {
    if (state !== 'kicked') show('offline');
  });

  window.addEventListener('offline', () => {
    if (!socket.connected && state !== 'kicked') show('offline');
  });

  return () => state;
}
