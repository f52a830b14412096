// Direct messages: one conversation per person, opened from the member list or the "Message
// someone" form. Both sides see every message; a conversation not shown counts them unread.
// They belong to this tab's session: on every connect the page asks for those it has not seen
// (all of them after a reload), so none is lost with a connection that had silently died.

import { request } from './connection.js';
import { conversationKey, createConversation } from './conversation.js';
import { byTestId, nickBadge } from './dom.js';
import { sameNick } from './nick.js';
import { failure } from './notice.js';
import { readTab, writeTab } from './session.js';

// ---- Constants --------------------------------------------------------------------------

const HISTORY_PAGE = 200; // the server's largest direct_history page
const TAB_SEEN = 'dmSeen'; // the newest direct message id this tab has received
const TAB_CLOSED = 'dmClosed'; // nick (lower case) -> newest id of a conversation closed here

/**
 * Wire the "Message someone" form and direct_message events of a /chat socket into the chat
 * panel (shell); messages go out through the outbox. Returns { open(nick), renamePeer(previous,
 * nick) }.
 */
export function initDirect({ socket, notify, shell, me, outbox }) {
  // ---- DOM refs -------------------------------------------------------------------------

  const form = byTestId('dm-form');
  const input = byTestId('dm-input');

  // ---- State ----------------------------------------------------------------------------

  const state = {
    wasConnected: false, // a connect after this is a reconnect
    lastId: 0, // the newest direct message id this page holds: catching up starts after it
    seenBefore: Number(readTab(TAB_SEEN, 0)) || 0, // received before a reload: not unread again
    closed: readClosed(),
    sync: 0, // which catch-up is current (a reconnect starts another)
  };

  // ---- Helpers: conversations -----------------------------------------------------------

  const conversationWith = (nick) => shell.get(conversationKey('direct', nick)) ?? null;

  /**
   * The other person of a message of this session's (it is to or from us): this tab may have
   * had several nicks, and someone else may hold one of them now.
   */
  function peerOf(message) {
    if (sameNick(message.from, me.nick())) return message.to;
    if (sameNick(message.to, me.nick())) return message.from;
    return me.hadNick(message.to) && !me.hadNick(message.from) ? message.from : message.to;
  }

  /** The conversation with `nick`, opened (not shown) if there is none yet. */
  function ensure(nick) {
    const known = conversationWith(nick);
    if (known) return known;
    const conv = createConversation({
      kind: 'direct',
      name: nick,
      isMine: me.isMine,
      onSelect: shell.select,
      onClose: close,
    });
    conv.send = (text) => outbox.send(conv, text);
    shell.add(conv);
    conv.addSystemLine(['Direct messages: only you and ', nickBadge(nick), ' see them.']);
    return conv;
  }

  /** Open (or show) the conversation with `nick` and put the cursor in the send box. */
  function open(rawNick) {
    const nick = String(rawNick).trim();
    if (!nick) {
      notify('Type the nick of the person you want to message.');
      input.focus();
      return null;
    }
    if (sameNick(nick, me.nick())) {
      notify('That is your own nick: pick someone else to message.');
      input.focus();
      return null;
    }
    const conv = ensure(nick);
    shell.select(conv);
    shell.focusInput();
    return conv;
  }

  /** Close a conversation; after a reload its messages so far stay closed. */
  function close(conv) {
    if (conv.lastId !== null) {
      state.closed[conv.name.toLowerCase()] = conv.lastId;
      writeTab(TAB_CLOSED, state.closed);
    }
    outbox.drop(conv);
    shell.remove(conv);
  }

  // ---- Helpers: messages ----------------------------------------------------------------

  /** Show a direct message in its conversation (once: they are merged by id). */
  function receive(message, { fromHistory = false } = {}) {
    const peer = peerOf(message);
    if (fromHistory && message.id <= (state.closed[peer.toLowerCase()] ?? 0)) {
      note(message.id);
      return null;
    }
    const conv = ensure(peer);
    add(conv, message, { quiet: message.id <= state.seenBefore });
    return conv;
  }

  function add(conv, message, { quiet = false } = {}) {
    if (!isDirectMessage(message)) return;
    note(message.id);
    const mine = peerOf(message) === message.to; // it went out from this session
    conv.addMessage({ id: message.id, nick: message.from, text: message.text, ts: message.ts },
      { quiet, mine });
  }

  function note(id) {
    if (id <= state.lastId) return;
    state.lastId = id;
    if (id > state.seenBefore) writeTab(TAB_SEEN, id);
  }

  /**
   * Fetch the direct messages of this session newer than the newest one held, page by page.
   * Each page follows the last one received: messages that arrive meanwhile (and the acks of
   * ours) are newer than the ones still to fetch. A reconnect meanwhile starts a new catch-up,
   * and this one stops.
   */
  async function catchUp() {
    const sync = ++state.sync;
    try {
      let cursor = state.lastId;
      let more = true;
      while (more && sync === state.sync) {
        const reply = await request(socket, 'direct_history', { since_id: cursor, limit: HISTORY_PAGE });
        const messages = Array.isArray(reply.messages) ? reply.messages.filter(isDirectMessage) : [];
        for (const message of messages) receive(message, { fromHistory: true });
        const newest = Math.max(cursor, ...messages.map((message) => message.id));
        more = reply.more === true && newest > cursor;
        cursor = newest;
      }
    } catch (error) {
      if (sync === state.sync && socket.connected) {
        notify(failure('Could not fetch your direct messages', error));
      }
    } finally {
      if (sync === state.sync) shell.settle();
    }
  }

  /** Someone we talk to changed nick (we saw it in a room we share): follow them. */
  function renamePeer(previous, nick) {
    const conv = conversationWith(previous);
    if (!conv || (conversationWith(nick) && !sameNick(previous, nick))) return;
    rename(conv, nick);
    conv.addSystemLine([nickBadge(previous), ' is now known as ', nickBadge(nick)]);
  }

  function rename(conv, nick) {
    const oldKey = conv.key;
    conv.rename(nick);
    shell.rekey(conv, oldKey);
    if (shell.isActive(conv)) shell.refresh();
  }

  // ---- Direct messages through the outbox -----------------------------------------------

  outbox.define('direct', {
    event: 'direct_message',
    payload: (conv, text, clientId) => ({ to: conv.name, text, client_id: clientId }),
    ready: () => true,
    notSent: (conv) => `Message to ${conv.name} not sent`,
    accepted: (conv, reply) => {
      if (typeof reply.to === 'string' && reply.to !== conv.name && sameNick(reply.to, conv.name)) {
        rename(conv, reply.to); // the server spells the nick as its holder does
      }
      if (Number.isInteger(reply.id)) note(reply.id);
      return { id: reply.id, nick: reply.from, text: reply.text, ts: reply.ts };
    },
  });

  // ---- Form events ----------------------------------------------------------------------

  form.addEventListener('submit', (event) => {
    event.preventDefault();
    if (open(input.value)) input.value = '';
  });

  // ---- Socket events --------------------------------------------------------------------

  socket.on('direct_message', (message) => {
    if (!isDirectMessage(message)) return;
    const conv = receive(message);
    if (conv && !shell.active()) shell.select(conv);
  });

  // After each greeting (the nick is known): fetch what was missed, then send what waits.
  me.onGreeting(async () => {
    await catchUp();
    outbox.flush();
  });

  socket.on('connect', () => {
    if (state.wasConnected) {
      for (const conv of shell.conversations('direct')) conv.addSystemLine(['Reconnected.'], 'ok');
    }
    state.wasConnected = true;
  });

  return { open, renamePeer };
}

function isDirectMessage(message) {
  return Boolean(message) && typeof message === 'object' && Number.isInteger(message.id)
    && typeof message.from === 'string' && typeof message.to === 'string'
    && typeof message.text === 'string' && Number.isFinite(message.ts);
}

/** The conversations closed in this tab: nick (lower case) -> newest message id then. */
function readClosed() {
  const closed = readTab(TAB_CLOSED, {});
  return closed && typeof closed === 'object' && !Array.isArray(closed) ? closed : {};
}
