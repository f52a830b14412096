// Messages on their way, to a room or to someone directly. Each gets a client_id and stays in the
// outbox, shown greyed in its conversation, until the server acknowledges it. One whose
// acknowledgement does not come (a timeout, a dropped connection) is sent again with the same
// client_id, after the reconnect if need be: the server stores it once and answers the repeat
// with duplicate: true. A refusal gives the text back to the send box, except one that a kind
// of conversation keeps in the log as not sent (a direct message whose nick changed hands).
// Each kind of conversation says how its messages go (see define).

import { request } from './connection.js';
import { failure } from './notice.js';

// ---- Constants --------------------------------------------------------------------------

const RETRY_MS = 2000; // before sending again while still connected (no answer, rate limited)

const STATUS_TEXT = {
  sending: 'sending…',
  waiting: 'waiting for the connection…',
  retrying: 'retrying…',
};

/**
 * The outbox of a /chat socket. Returns { define(kind, spec), send(conv, text), flush(),
 * drop(conv), transfer(from, to), claim(conv, message) }: define tells how a kind of
 * conversation sends (below); flush() once conversations can take messages again (a room
 * rejoined, a reconnect); drop when a conversation is left or closed; transfer when the
 * messages waiting for one conversation belong in another (the same person's); claim(conv,
 * message) says whether an incoming message is the echo of the one being sent, which then shows
 * once acknowledged (so it never shows beside its grey line).
 *
 * A kind's spec: { event, payload(conv, text, clientId), ready(conv), notSent(conv),
 * accepted(conv, reply, entry), recipient?(conv, reply), unsent?(conv, error) }: the event that
 * sends a message and its payload (built again for each try); whether the conversation takes
 * messages now (a room once this connection has joined it); how a refusal starts ("Message not
 * sent"); the message ({id, nick, user_id, text, ts}) that an acknowledgement shows when no echo
 * came; the conversation an acknowledgement shows it in, if it can be another one (a direct
 * chat learns whom it is with); and, for a refusal that keeps the message in the log as not
 * sent rather than giving it back to the send box, the line that says why (else null).
 */
export function createOutbox({ socket, notify, shell, me }) {
  // ---- State ----------------------------------------------------------------------------

  const state = {
    kinds: new Map(), // conversation kind -> spec
    entries: [], // {clientId, conv, text, ts, line, status, echo}, in the order sent
    inFlight: null, // the entry waiting for its acknowledgement
    pumping: false,
    retryTimer: null,
    warnedRateLimit: false,
  };

  // ---- Helpers --------------------------------------------------------------------------

  const isOpen = (conv) => shell.get(conv.key) === conv;
  const specOf = (entry) => state.kinds.get(entry.conv.kind);

  function send(conv, text) {
    const entry = { clientId: newClientId(), conv, text, ts: Date.now(), line: conv.addPending(me.nick(), text) };
    state.entries.push(entry);
    showStatus(entry, socket.connected ? 'sending' : 'waiting');
    pump();
  }

  /**
   * Send what can go, one message at a time so that a conversation gets them in the order
   * typed. A message waits while its conversation is not ready (a room not rejoined yet); the
   * others go on.
   */
  async function pump() {
    if (state.pumping) return;
    state.pumping = true;
    try {
      while (socket.connected) {
        state.entries.filter((entry) => !isOpen(entry.conv)).forEach(forget);
        const entry = state.entries.find((each) => specOf(each).ready(each.conv));
        if (!entry) break;
        if (await deliver(entry) === 'retry') {
          scheduleRetry();
          break;
        }
      }
    } finally {
      state.pumping = false;
    }
  }

  async function deliver(entry) {
    const spec = specOf(entry);
    showStatus(entry, 'sending');
    state.inFlight = entry;
    try {
      const reply = await request(socket, spec.event, spec.payload(entry.conv, entry.text, entry.clientId));
      confirm(entry, reply);
      return 'sent';
    } catch (error) {
      if (error.code === 'offline' || error.code === 'timeout') {
        showStatus(entry, socket.connected ? 'retrying' : 'waiting');
        return 'retry';
      }
      if (error.code === 'rate_limited') {
        showStatus(entry, 'retrying');
        if (!state.warnedRateLimit) {
          notify(failure('Sending too fast', error) + '. Your message goes out in a moment.', 'info');
          state.warnedRateLimit = true;
        }
        return 'retry';
      }
      refuse(entry, error);
      return 'refused';
    } finally {
      state.inFlight = null;
    }
  }

  /** Whether `message` is the server's copy of the message being sent (it precedes the ack). */
  function claim(conv, message) {
    const entry = state.inFlight;
    if (!entry || entry.echo || entry.conv !== conv || !me.isMine(message)
        || message.text !== entry.text) return false;
    entry.echo = message;
    return true;
  }

  function confirm(entry, reply) {
    forget(entry);
    state.warnedRateLimit = false;
    // Show the server's copy (claimed above); if it never came (the ack of a first try was
    // lost, and this retry is a duplicate), show the message from what the ack says.
    if (!isOpen(entry.conv) || !Number.isInteger(reply.id)) return;
    const spec = specOf(entry);
    const conv = spec.recipient?.(entry.conv, reply) ?? entry.conv;
    const echo = entry.echo?.id === reply.id ? entry.echo : null;
    conv.addMessage(echo ?? spec.accepted(conv, reply, entry), { mine: true });
  }

  function refuse(entry, error) {
    const spec = specOf(entry);
    const why = spec.unsent?.(entry.conv, error) ?? null;
    if (why === null) {
      forget(entry);
      shell.giveBack(entry.conv, entry.text);
      notify(failure(spec.notSent(entry.conv), error));
      return;
    }
    // Not given back to the send box: sending it again would be refused again. It stays in
    // the log, marked, with the reason below it.
    state.entries = state.entries.filter((each) => each !== entry);
    entry.line.markUnsent('not sent');
    entry.conv.addSystemLine([why], 'warn');
    notify(why);
  }

  function forget(entry) {
    state.entries = state.entries.filter((each) => each !== entry);
    entry.line.remove();
  }

  /** The messages waiting for `from` go to `to` instead, in their order, grey there. */
  function transfer(from, to) {
    for (const entry of state.entries) {
      if (entry.conv !== from) continue;
      entry.line.remove();
      entry.conv = to;
      entry.line = to.addPending(me.nick(), entry.text);
      showStatus(entry, entry.status);
    }
  }

  function scheduleRetry() {
    clearTimeout(state.retryTimer);
    state.retryTimer = setTimeout(pump, RETRY_MS);
  }

  function showStatus(entry, status) {
    entry.status = status;
    entry.line.setStatus(STATUS_TEXT[status]);
  }

  // ---- Wiring ---------------------------------------------------------------------------

  socket.on('disconnect', () => {
    for (const entry of state.entries) showStatus(entry, 'waiting');
  });

  return {
    define: (kind, spec) => state.kinds.set(kind, spec),
    send,
    flush: pump,
    drop: (conv) => state.entries.filter((entry) => entry.conv === conv).forEach(forget),
    transfer,
    claim,
  };
}

/** A random id for a message: a UUID where the browser offers one (secure contexts). */
function newClientId() {
  if (typeof crypto.randomUUID === 'function') return crypto.randomUUID();
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (byte) => byte.toString(16).padStart(2, '0')).join('');
}
