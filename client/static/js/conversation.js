// One conversation of the chat panel, a room or a direct chat with someone: its tab, its log,
// and the lines in the log (messages in id order, system lines, messages still being sent).

import { formatClock, h, isNearBottom, nickBadge, scrollToBottom } from './dom.js';

// ---- Constants --------------------------------------------------------------------------

const MAX_LOG_LINES = 500; // per conversation; the oldest lines are dropped from the page

const KINDS = {
  room: {
    prefix: '#',
    testids: { item: 'room-item', select: 'room-select', unread: 'room-unread', close: 'room-leave' },
    closeLabel: (name) => `Leave ${name}`,
  },
  direct: {
    prefix: '@',
    testids: { item: 'dm-item', select: 'dm-select', unread: 'dm-unread', close: 'dm-close' },
    closeLabel: (name) => `Close the conversation with ${name}`,
  },
};

/**
 * The key a conversation is filed under: a room by its name; a direct chat by the other
 * person's user id once known (their nick may change, or pass to someone else), and until then
 * by the nick it was opened with, ignoring case.
 */
export function conversationKey(kind, name, userId = null) {
  if (kind !== 'direct') return `#${name}`;
  return userId ? `@id:${userId}` : `@${name.toLowerCase()}`;
}

/**
 * Build a conversation (not yet on the page). kind is 'room' or 'direct'; name is the room or
 * the other person's nick; key, if given, is the one it is filed under (else that of its name,
 * see conversationKey). isMine(message) tells our own messages apart (unless addMessage is
 * told); onSelect, onClose and onLoadOlder (rooms only) are called from its tab and its "Load
 * older messages" button; onAdded(conv), if given, after addMessage has added a message.
 * cursor, if given (rooms: see cursor.js), keeps the ids that addMessage takes: a message it
 * holds already is not shown again, even once its line has been dropped from the log.
 */
export function createConversation({
  kind, name, key = null, isMine, onSelect, onClose, onLoadOlder, onAdded, cursor = null,
}) {
  const spec = KINDS[kind];
  const conv = {
    kind,
    name,
    key: key ?? conversationKey(kind, name),
    members: [],
    ids: new Set(), // message ids shown
    lastId: null, // the highest message id seen, even once its line is dropped
    unread: 0,
    pinned: true, // scrolled to the end: new lines keep it there
    active: false,
    olderMore: false, // the server holds messages older than the oldest shown
    loadingOlder: false,
  };

  // ---- DOM ------------------------------------------------------------------------------

  const olderButton = h('button', {
    className: 'load-older',
    text: 'Load older messages',
    dataset: { testid: 'load-older' },
    attrs: { type: 'button', hidden: true },
    on: { click: () => onLoadOlder?.(conv) },
  });
  const lines = h('div', { className: 'log-lines' });
  const pendingBox = h('div', { className: 'log-pending' });
  const log = h('div', {
    className: 'room-log',
    dataset: { kind, room: name },
    attrs: { role: 'log', 'aria-live': 'polite', 'aria-label': `Messages in ${spec.prefix}${name}`, tabindex: 0, hidden: true },
    on: { scroll: () => { conv.pinned = isNearBottom(log); } },
  }, kind === 'room' ? h('div', { className: 'log-older' }, olderButton) : null, lines, pendingBox);

  const nameEl = h('span', { className: 'room-name', text: name });
  const unreadBadge = h('span', { className: 'unread', dataset: { testid: spec.testids.unread }, attrs: { hidden: true } });
  const selectButton = h('button', {
    className: 'room-select',
    dataset: { testid: spec.testids.select },
    attrs: { type: 'button' },
    on: { click: () => onSelect(conv) },
  },
  h('span', { className: 'room-hash', text: spec.prefix, attrs: { 'aria-hidden': 'true' } }),
  nameEl,
  unreadBadge);
  const closeButton = h('button', {
    className: 'room-leave',
    text: '×',
    dataset: { testid: spec.testids.close },
    attrs: { type: 'button', 'aria-label': spec.closeLabel(name), title: spec.closeLabel(name) },
    on: { click: () => onClose(conv) },
  });
  const item = h('li', {
    className: kind === 'direct' ? 'room-item dm' : 'room-item',
    dataset: { testid: spec.testids.item, [kind === 'direct' ? 'nick' : 'room']: name },
  }, selectButton, closeButton);

  Object.assign(conv, { log, item, title: () => `${spec.prefix} ${conv.name}` });

  // ---- Helpers: lines -------------------------------------------------------------------

  function timeElement(ms) {
    const date = new Date(ms);
    return h('time', {
      className: 'line-time',
      text: formatClock(ms),
      dataset: { testid: 'message-time' },
      attrs: { datetime: date.toISOString(), title: date.toLocaleString() },
    });
  }

  function messageLine(message, { pending = false, mine = null } = {}) {
    mine = pending || (mine ?? isMine(message));
    const classes = ['message', mine ? 'mine' : '', pending ? 'pending' : ''].filter(Boolean);
    return h('div', {
      className: classes.join(' '),
      dataset: pending
        ? { testid: 'pending-message', nick: message.nick }
        : { testid: 'chat-message', id: message.id, nick: message.nick },
    }, timeElement(message.ts),
    nickBadge(message.nick, { dataset: { testid: 'message-nick' } }),
    h('p', { className: 'message-text', text: message.text, dataset: { testid: 'message-text' } }));
  }

  /** Put a line into the log before `before` (or at the end), keeping the view where it is. */
  function insertLine(node, before = null) {
    const stick = conv.active && isNearBottom(log);
    lines.insertBefore(node, before);
    // Drop the oldest lines, unless the person is reading up there.
    while (lines.childElementCount > MAX_LOG_LINES && (stick || !conv.active)) {
      const dropped = lines.firstElementChild;
      if (dropped.dataset.testid === 'chat-message') {
        conv.ids.delete(Number(dropped.dataset.id));
        conv.olderMore = true;
      }
      dropped.remove();
    }
    showOlderButton();
    if (stick) scrollToBottom(log);
  }

  /** Put older lines at the top, keeping the lines in view where they are on the screen. */
  function prependLines(nodes) {
    const fromBottom = log.scrollHeight - log.scrollTop;
    lines.prepend(...nodes);
    if (conv.active) log.scrollTop = log.scrollHeight - fromBottom;
  }

  function showOlderButton() {
    olderButton.hidden = !conv.olderMore;
    olderButton.disabled = conv.loadingOlder;
    olderButton.textContent = conv.loadingOlder ? 'Loading…' : 'Load older messages';
  }

  function noteId(id) {
    conv.ids.add(id);
    if (conv.lastId === null || id > conv.lastId) conv.lastId = id;
  }

  function countUnread(message, mine) {
    if (!conv.active && !(mine ?? isMine(message))) {
      conv.unread += 1;
      showUnread();
    }
  }

  function showUnread() {
    unreadBadge.hidden = conv.unread === 0;
    unreadBadge.replaceChildren(conv.unread > 99 ? '99+' : String(conv.unread),
      h('span', { className: 'visually-hidden', text: ' unread' }));
  }

  // ---- Methods --------------------------------------------------------------------------

  /**
   * Add a message ({id, nick, user_id, text, ts}; user_id is the sender's, null if unknown)
   * unless it is shown already, in id order. Returns whether it was added. quiet: one this tab
   * had received before (a reload), not unread; mine: whether it is ours, when known otherwise
   * (acknowledged to this tab).
   */
  conv.addMessage = (message, { quiet = false, mine = null } = {}) => {
    if (conv.ids.has(message.id) || (cursor && !cursor.note(message.id))) return false;
    noteId(message.id);
    // Usually the newest; a message missed while offline can arrive after newer lines.
    let before = null;
    for (let line = lines.lastElementChild; line; line = line.previousElementSibling) {
      if (line.dataset.testid !== 'chat-message') continue;
      if (Number(line.dataset.id) < message.id) break;
      before = line;
    }
    insertLine(messageLine(message, { mine }), before);
    if (!quiet) countUnread(message, mine);
    onAdded?.(conv);
    return true;
  };

  /** Add messages older than every one shown (oldest first) at the top of the log. */
  conv.addOlder = (messages) => {
    const fresh = messages.filter((message) => !conv.ids.has(message.id));
    for (const message of fresh) noteId(message.id);
    prependLines(fresh.map((message) => messageLine(message)));
    return fresh.length;
  };

  /** Add a system line (joins, leaves, connection changes); parts are strings or nodes. */
  conv.addSystemLine = (parts, tone = 'info', title = '') => {
    insertLine(h('p', {
      className: `system ${tone}`,
      dataset: { testid: 'system-message' },
      attrs: { title: title || undefined },
    }, timeElement(Date.now()), h('span', { className: 'system-text' }, ...parts)));
  };

  /**
   * Show a message of ours that the server has not confirmed yet, below every other line.
   * Returns { setStatus(text), remove(), markUnsent(text) }: markUnsent turns it into a line of
   * the log that stays, struck through, saying `text` ("not sent") instead of its status.
   */
  conv.addPending = (nick, text) => {
    const status = h('span', { className: 'pending-status', text: 'sending…', dataset: { testid: 'pending-status' } });
    const line = messageLine({ nick, text, ts: Date.now() }, { pending: true });
    line.append(status);
    pendingBox.append(line);
    if (conv.active) scrollToBottom(log); // what we just sent is worth seeing
    return {
      setStatus: (value) => { status.textContent = value; },
      remove: () => line.remove(),
      markUnsent: (value) => {
        line.classList.replace('pending', 'unsent');
        line.dataset.testid = 'unsent-message';
        status.textContent = value;
        status.dataset.testid = 'unsent-status';
        insertLine(line); // after the messages so far, and the lines that follow come below
      },
    };
  };

  /** The id of the oldest message shown, or null. */
  conv.oldestId = () => {
    const first = lines.querySelector('[data-testid="chat-message"]');
    return first ? Number(first.dataset.id) : null;
  };

  conv.setOlder = ({ more = conv.olderMore, loading = conv.loadingOlder } = {}) => {
    conv.olderMore = more;
    conv.loadingOlder = loading;
    showOlderButton();
  };

  conv.setActive = (active) => {
    conv.active = active;
    log.hidden = !active;
    item.classList.toggle('active', active);
    if (active) {
      selectButton.setAttribute('aria-current', 'true');
      conv.unread = 0;
      showUnread();
      if (conv.pinned) scrollToBottom(log);
    } else {
      selectButton.removeAttribute('aria-current');
    }
  };

  /** Show a direct chat under the other person's new nick (its key is the caller's). */
  conv.rename = (newName) => {
    conv.name = newName;
    nameEl.textContent = newName;
    item.dataset[kind === 'direct' ? 'nick' : 'room'] = newName;
    closeButton.setAttribute('aria-label', spec.closeLabel(newName));
    closeButton.title = spec.closeLabel(newName);
    log.setAttribute('aria-label', `Messages in ${spec.prefix}${newName}`);
  };

  conv.remove = () => {
    item.remove();
    log.remove();
  };

  return conv;
}
