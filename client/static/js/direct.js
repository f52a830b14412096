// Direct messages: one conversation per person, opened from the member list or the "Message
// someone" form. Both sides see every message; a conversation not shown counts them unread.

import { request } from './connection.js';
import { conversationKey, createConversation } from './conversation.js';
import { byTestId, nickBadge } from './dom.js';
import { failure } from './notice.js';

/**
 * Wire the "Message someone" form and direct_message events of a /chat socket into the chat
 * panel (shell). Returns { open(nick), renamePeer(previous, nick) }.
 */
export function initDirect({ socket, notify, shell, me }) {
  // ---- DOM refs -------------------------------------------------------------------------

  const form = byTestId('dm-form');
  const input = byTestId('dm-input');

  // ---- State ----------------------------------------------------------------------------

  const state = {
    wasConnected: false, // a connect after this is a reconnect
  };

  // ---- Helpers --------------------------------------------------------------------------

  const conversationWith = (nick) => shell.get(conversationKey('direct', nick)) ?? null;
  const sameNick = (a, b) => typeof a === 'string' && typeof b === 'string'
    && a.toLowerCase() === b.toLowerCase();

  /** The conversation with `nick`, opened (not shown) if there is none yet. */
  function ensure(nick) {
    const known = conversationWith(nick);
    if (known) return known;
    const conv = createConversation({
      kind: 'direct',
      name: nick,
      isMine: me.isMine,
      onSelect: shell.select,
      onClose: shell.remove,
    });
    conv.send = (text) => send(conv, text);
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

  async function send(conv, text) {
    const pending = conv.addPending(me.nick(), text);
    try {
      const reply = await request(socket, 'direct_message', { to: conv.name, text });
      pending.remove();
      if (typeof reply.to === 'string' && reply.to !== conv.name && sameNick(reply.to, conv.name)) {
        conv.rename(reply.to); // the server spells the nick as its holder does
        shell.refresh();
      }
      add(conv, reply);
    } catch (error) {
      pending.remove();
      shell.giveBack(conv, text);
      notify(failure(`Message to ${conv.name} not sent`, error));
    }
  }

  function add(conv, message) {
    if (!isDirectMessage(message)) return;
    conv.addMessage({ id: message.id, nick: message.from, text: message.text, ts: message.ts });
  }

  /** Someone we talk to changed nick (we saw it in a room we share): follow them. */
  function renamePeer(previous, nick) {
    const conv = conversationWith(previous);
    if (!conv || (conversationWith(nick) && !sameNick(previous, nick))) return;
    const oldKey = conv.key;
    conv.rename(nick);
    shell.rekey(conv, oldKey);
    conv.addSystemLine([nickBadge(previous), ' is now known as ', nickBadge(nick)]);
    if (shell.isActive(conv)) shell.refresh();
  }

  // ---- Form events ----------------------------------------------------------------------

  form.addEventListener('submit', (event) => {
    event.preventDefault();
    if (open(input.value)) input.value = '';
  });

  // ---- Socket events --------------------------------------------------------------------

  socket.on('direct_message', (message) => {
    if (!isDirectMessage(message)) return;
    const peer = me.isMine(message.from) ? message.to : message.from;
    const conv = ensure(peer);
    add(conv, message);
    if (!shell.active()) shell.select(conv);
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
