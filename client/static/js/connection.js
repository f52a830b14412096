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
  denied: 'sign-in needed',
};
// Connect refusals that only a new sign-in token (AUTH_REQUIRED) cures: never retried.
const SIGN_IN_REFUSALS = new Set(['auth_required', 'invalid_token']);

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
 * connected, reconnecting, offline, kicked, denied), data-transport (polling, websocket) and
 * the visible text. Returns a function that reports the current state.
 *
 * When the server closes the namespace on purpose ("io server disconnect", which
 * socket.io-client never retries by itself), the socket tries again after a pause; with
 * retryWhenKicked false it stays "kicked" until something else connects it again.
 *
 * When the server refuses the connect (which socket.io-client does not retry either),
 * onRefused(error) may cure the cause and return true: the socket then connects again at once.
 * A refusal for want of a sign-in token stays "denied", saying so.
 */
export function watchConnection(socket, element, {
  onServerError, onRefused, retryWhenKicked = true,
} = {}) {
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
    } else if (onRefused?.(error)) {
      show('reconnecting');
      socket.connect();
    } else if (SIGN_IN_REFUSALS.has(error.data?.code)) {
      show('denied');
      const why = error.data.code === 'auth_required'
        ? 'this server admits signed-in users only; open it with the sign-in link you were given'
        : error.message;
      onServerError?.(`Sign-in needed: ${why}.`);
    } else {
      show('offline');
      onServerError?.(`The server refused the connection: ${error.message}`);
    }
  });

  // The manager is shared by every namespace: a kicked socket is not part of its reconnection.
  // A socket the server put out or refused is not part of it either.
  const settled = () => state === 'kicked' || state === 'denied';

  manager.on('reconnect_attempt', (attempt) => {
    if (!socket.connected && !settled()) show('reconnecting', `(attempt ${attempt})`);
  });

  manager.on('reconnect_failed', () => {
    if (!settled()) show('offline');
  });

  window.addEventListener('offline', () => {
    if (!socket.connected && !settled()) show('offline');
  });

  return () => state;
}
