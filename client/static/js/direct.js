// Direct messages: one conversation per person, opened from the member list or the "Message
// someone" form. Both sides see every message; a conversation not shown counts them unread.
// They belong to this tab's session: on every connect the page asks for those it has not seen
// (all of them after a reload), so none is lost with a connection that had silently died.
//
// A conversation is with a person, not a nick: it is filed under their user id as soon as one
// is known (from_id / to_id of any message or acknowledgement), and shown under the nick they
// had last. A conversation opened by nick before any message has no id yet; the first
// acknowledgement's to_id gives it one. Once it has an id, every message to it carries to_id,
// so the server refuses it (recipient_changed) rather than hand it to someone else who holds
// that nick by then.

import { request } from './connection.js';
import { conversationKey, createConversation } from './conversation.js';
import { byTestId, nickBadge } from './dom.js';
import { sameNick, userIdOf } from './nick.js';
import { failure } from './notice.js';
import { readTab, writeTab } from './session.js';

// ---- Constants --------------------------------------------------------------------------

const HISTORY_PAGE = 200; // the server's largest direct_history page
const TAB_SEEN = 'dmSeen'; // the newest direct message id this tab has received
const TAB_CLOSED = 'dmClosed'; // conversation key -> newest id of a conversation closed here

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

  // ---- Helpers: who a message is with ---------------------------------------------------
  // A person is {id, nick}: their user id (null in a message stored before user ids existed)
  // and the nick they had then.

  /**
   * The two ends of a message of this session's (it is to or from us): { peer, outgoing }, the
   * other person and whether we sent it. By user id; a message without ids is told by nick, as
   * this tab may have had several nicks, and someone else may hold one of them now.
   */
  function sides(message) {
    const from = { id: userIdOf(message.from_id), nick: message.from };
    const to = { id: userIdOf(message.to_id), nick: message.to };
    const myId = me.userId();
    let outgoing;
    if (myId !== null && from.id !== null && to.id !== null) {
      outgoing = from.id === myId;
    } else if (sameNick(message.from, me.nick()) || sameNick(message.to, me.nick())) {
      outgoing = sameNick(message.from, me.nick());
    } else {
      outgoing = !(me.hadNick(message.to) && !me.hadNick(message.from));
    }
    return { peer: outgoing ? to : from, outgoing };
  }

  const keyOf = (person) => conversationKey('direct', person.nick, person.id);

  /** The conversation filed under `person`: their id's, or (no id) their nick's. */
  const conversationWith = (person) => shell.get(keyOf(person)) ?? null;

  /** The conversation opened with `nick` that has no id yet, if any. */
  const openedByNick = (nick) => shell.get(conversationKey('direct', nick)) ?? null;

  /**
   * The conversation shown under `nick` whose person we believe holds it still, if any: not
   * one whose nick has passed to someone else since (see noteNick). One with an id first.
   */
  function shownAs(nick) {
    const matches = shell.conversations('direct')
      .filter((conv) => sameNick(conv.name, nick) && !conv.stale);
    return matches.find((conv) => conv.peerId !== null) ?? matches[0] ?? null;
  }

  // ---- Helpers: conversations -----------------------------------------------------------

  /** The conversation with `person`, opened (not shown) if there is none yet. */
  function ensure(person) {
    const known = conversationWith(person);
    if (known) return known;
    const conv = createConversation({
      kind: 'direct',
      name: person.nick,
      key: keyOf(person),
      isMine: me.isMine,
      onSelect: shell.select,
      onClose: close,
    });
    conv.peerId = person.id; // null until a message or an acknowledgement names them
    conv.nickAsOf = 0; // the direct message id (or the moment, see renamePeer) its nick is from
    conv.stale = false; // someone else has been seen holding the nick it is shown under
    conv.online = null; // whether someone holds its nick now: null until the server says
    conv.checking = false;
    conv.item.dataset.presence = 'unknown';
    if (person.id) conv.item.dataset.userId = person.id;
    conv.send = (text) => outbox.send(conv, text);
    shell.add(conv);
    conv.addSystemLine(['Direct messages: only you and ', nickBadge(person.nick), ' see them.']);
    return conv;
  }

  /**
   * The conversation of a message with `person` (who has an id). live: the message is arriving
   * now, so `person.nick` is theirs now, and a conversation opened with that nick that has no id
   * yet is with them: it takes their id.
   */
  function conversationFor(person, { live }) {
    const known = conversationWith(person);
    if (known) return known;
    const opened = person.id && live ? openedByNick(person.nick) : null;
    return opened ? identify(opened, person) : ensure(person);
  }

  /**
   * `conv` is with `person` (an acknowledgement said so): file it under their id if it had none.
   * Returns the conversation their messages belong to: conv, or the one filed under that id
   * already (then conv's waiting messages move there and conv closes).
   */
  function identify(conv, person) {
    if (!person.id || conv.peerId === person.id) return conv;
    if (conv.peerId !== null) return ensure(person); // the server checks to_id: not expected
    const known = conversationWith(person);
    if (known && known !== conv) {
      outbox.transfer(conv, known);
      if (shell.isActive(conv)) shell.select(known);
      shell.remove(conv);
      return known;
    }
    const oldKey = conv.key;
    conv.peerId = person.id;
    conv.key = keyOf(person);
    conv.item.dataset.userId = person.id;
    shell.rekey(conv, oldKey);
    return conv;
  }

  /**
   * The person of `conv` had `nick` as of `asOf` (a direct message id): show it, unless a newer
   * one is known; live: learned just now, so said in the log. Another conversation shown under
   * that nick from before is with someone who no longer holds it: it is stale, and neither
   * opening that nick nor a rename of it finds it.
   */
  function noteNick(conv, nick, asOf, { live = false } = {}) {
    if (asOf < conv.nickAsOf) return;
    conv.nickAsOf = asOf;
    conv.stale = false;
    if (conv.name !== nick) {
      if (live && !sameNick(conv.name, nick)) { // not the server's spelling of a typed nick
        conv.addSystemLine([nickBadge(conv.name), ' is now known as ', nickBadge(nick)]);
      }
      rename(conv, nick);
    }
    passedOn(nick, asOf);
  }

  /** Someone holds `nick` as of `asOf`: conversations shown under it from before are stale. */
  function passedOn(nick, asOf) {
    for (const conv of shell.conversations('direct')) {
      if (conv.nickAsOf < asOf && sameNick(conv.name, nick)) conv.stale = true;
    }
  }

  function rename(conv, nick) {
    conv.rename(nick);
    if (conv.peerId === null) { // filed under its nick until it has an id
      const oldKey = conv.key;
      const key = conversationKey('direct', nick);
      if (!shell.get(key)) {
        conv.key = key;
        shell.rekey(conv, oldKey);
      }
    }
    if (shell.isActive(conv)) shell.refresh();
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
    const conv = shownAs(nick) ?? openedByNick(nick) ?? ensure({ id: null, nick });
    shell.select(conv);
    shell.focusInput();
    return conv;
  }

  /** Close a conversation; after a reload its messages so far stay closed. */
  function close(conv) {
    if (conv.lastId !== null) {
      state.closed[conv.key] = conv.lastId;
      writeTab(TAB_CLOSED, state.closed);
    }
    outbox.drop(conv);
    shell.remove(conv);
  }

  // ---- Helpers: presence ----------------------------------------------------------------
  // A conversation tells whether its person is there: asked when it is shown, and learned
  // from what arrives (their message, an acknowledgement, a refusal for an unknown nick).

  function setOnline(conv, online) {
    conv.online = online;
    conv.item.dataset.presence = online === null ? 'unknown' : online ? 'online' : 'offline';
    if (shell.isActive(conv)) shell.refresh();
  }

  async function checkPresence(conv) {
    if (conv.checking || !socket.connected) return;
    conv.checking = true;
    try {
      const reply = await request(socket, 'nick_status', { nick: conv.name });
      if (sameNick(reply.nick, conv.name)) setOnline(conv, reply.online === true);
    } catch {
      // Not known now: asked again when the conversation is shown next, or reconnected.
    } finally {
      conv.checking = false;
    }
  }

  // ---- Helpers: messages ----------------------------------------------------------------

  /** Show a direct message in its conversation (once: they are merged by id). */
  function receive(message, { fromHistory = false } = {}) {
    const { peer, outgoing } = sides(message);
    if (fromHistory && message.id <= (state.closed[keyOf(peer)] ?? 0)) {
      note(message.id);
      return null;
    }
    const conv = conversationFor(peer, { live: !fromHistory });
    if (peer.id) noteNick(conv, peer.nick, message.id, { live: !fromHistory });
    if (!fromHistory && !outgoing) setOnline(conv, true);
    add(conv, message, { quiet: message.id <= state.seenBefore, mine: outgoing });
    return conv;
  }

  function add(conv, message, { quiet = false, mine }) {
    note(message.id);
    conv.addMessage({
      id: message.id, nick: message.from, user_id: userIdOf(message.from_id), text: message.text, ts: message.ts,
    }, { quiet, mine });
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

  /**
   * Someone changed nick in a room we share (room_info names nicks, not ids): the conversation
   * shown under their old nick follows them, as of now (after every direct message held). Told
   * once per room we share with them: the second time, nobody is shown under the old nick.
   */
  function renamePeer(previous, nick) {
    const asOf = state.lastId + 0.5;
    const conv = shownAs(previous);
    if (conv) {
      noteNick(conv, nick, asOf, { live: true });
    } else {
      passedOn(nick, asOf);
    }
  }

  // ---- Direct messages through the outbox -----------------------------------------------

  outbox.define('direct', {
    event: 'direct_message',
    // Sent again after a lost acknowledgement too: to_id from the moment we know who it is.
    payload: (conv, text, clientId) => ({
      to: conv.name, text, client_id: clientId, ...(conv.peerId ? { to_id: conv.peerId } : {}),
    }),
    ready: () => true,
    notSent: (conv) => `Message to ${conv.name} not sent`,
    unsent: (conv, error) => {
      if (error.code === 'unknown_nick') setOnline(conv, false);
      if (error.code !== 'recipient_changed') return null;
      conv.stale = true;
      return `${conv.name} is now someone else; not sent`;
    },
    recipient: (conv, reply) => {
      const to = { id: userIdOf(reply.to_id), nick: reply.to };
      if (typeof to.nick !== 'string') return conv;
      const target = identify(conv, to);
      setOnline(target, true);
      if (to.id && Number.isInteger(reply.id)) {
        noteNick(target, to.nick, reply.id, { live: true });
      } else if (to.nick !== target.name && sameNick(to.nick, target.name)) {
        rename(target, to.nick); // the server spells the nick as its holder does
      }
      return target;
    },
    accepted: (conv, reply) => {
      if (Number.isInteger(reply.id)) note(reply.id);
      return {
        id: reply.id, nick: reply.from, user_id: userIdOf(reply.from_id), text: reply.text, ts: reply.ts,
      };
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

  shell.onSelect((active) => {
    if (active?.kind === 'direct') checkPresence(active);
  });

  socket.on('connect', () => {
    const active = shell.active();
    if (active?.kind === 'direct') checkPresence(active);
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

/** The conversations closed in this tab: conversation key -> newest message id then. */
function readClosed() {
  const closed = readTab(TAB_CLOSED, {});
  return closed && typeof closed === 'object' && !Array.isArray(closed) ? closed : {};
}
