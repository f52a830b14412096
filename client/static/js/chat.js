// The /chat panel: its conversations (rooms and direct chats) as tabs, the log and members of the
// one shown, and the send box. Rooms, direct messages, typing and the outbox have their own
// modules; this one holds them together, and shows again after a reload the conversation that
// was shown.

import { initDirect } from './direct.js';
import { byTestId, h, nickBadge } from './dom.js';
import { sameNick } from './nick.js';
import { createOutbox } from './outbox.js';
import { initRooms } from './rooms.js';
import { readTab, writeTab } from './session.js';
import { initTyping } from './typing.js';

// ---- Constants --------------------------------------------------------------------------

const MAX_INPUT_HEIGHT_PX = 160;
const CONFIRM_CLOSE_MS = 4000;
const TAB_ACTIVE = 'active'; // the key of the conversation shown in this tab
const TAB_DRAFTS = 'drafts'; // conversation key -> the text typed there and not sent yet
const RECONNECT_LABEL = { kicked: 'Reconnect', moved: 'Use it here' };

/**
 * Wire the chat panel to a /chat socket. notify(message, tone) shows a message; me is the
 * nick module ({nick(), userId(), isMine(message), onChange(listener), ...}: see nick.js).
 */
export function initChat({ socket, notify, me }) {
  // ---- DOM refs -------------------------------------------------------------------------

  const panel = byTestId('message-log').closest('.chat');
  const roomList = byTestId('room-list');
  const dmList = byTestId('dm-list');
  const logTitle = byTestId('active-room');
  const closeRoomButton = byTestId('close-room');
  const logArea = byTestId('message-log');
  const emptyState = byTestId('empty-state');
  const memberList = byTestId('member-list');
  const memberCount = byTestId('member-count');
  const membersHint = byTestId('members-hint');
  const messageForm = byTestId('message-form');
  const messageInput = byTestId('message-input');
  const sendButton = byTestId('send-button');
  const banner = byTestId('kicked-banner');
  const kickedText = byTestId('kicked-text');
  const movedText = byTestId('moved-text');
  const reconnectButton = byTestId('reconnect-button');

  // ---- State ----------------------------------------------------------------------------

  const state = {
    conversations: new Map(), // key (see conversationKey) -> conversation, in the order opened
    active: null, // the conversation shown
    kicked: false, // the server closed /chat on purpose: only the Reconnect button reopens it
    moved: false, // ...because this session connected elsewhere (another tab or window)
    confirmClose: null, // timer while the Close room button asks for a second click
    selectListeners: [],
    restoreKey: readTab(TAB_ACTIVE), // shown before a reload: shown again once it is back
    drafts: new Map(Object.entries(readDrafts())), // one send box text per conversation
  };

  // ---- Helpers: conversations -----------------------------------------------------------

  function addConversation(conv) {
    state.conversations.set(conv.key, conv);
    (conv.kind === 'direct' ? dmList : roomList).append(conv.item);
    logArea.append(conv.log);
    if (conv.key === state.restoreKey) select(conv);
    return conv;
  }

  function removeConversation(conv) {
    if (state.conversations.get(conv.key) !== conv) return;
    state.conversations.delete(conv.key);
    setDraft(conv.key, '');
    conv.remove();
    if (state.active === conv) {
      const next = state.conversations.values().next();
      select(next.done ? null : next.value);
    }
  }

  /** Show a conversation (or none). restoring: a stand-in until the one shown before is back. */
  function select(conv, { restoring = false } = {}) {
    const previous = state.active;
    state.active = conv && state.conversations.get(conv.key) === conv ? conv : null;
    if (previous !== state.active) swapDraft(previous);
    if (state.active && !restoring) {
      state.restoreKey = null;
      writeTab(TAB_ACTIVE, state.active.key);
    }
    for (const each of state.conversations.values()) each.setActive(each === state.active);
    emptyState.hidden = state.active !== null;
    logTitle.textContent = state.active ? state.active.title() : 'No room selected';
    logTitle.dataset.kind = state.active?.kind ?? '';
    resetCloseButton();
    showCloseButton();
    renderMembers();
    updateControls();
    for (const listener of state.selectListeners) listener(state.active, previous);
  }

  /** A direct chat filed under an old nick moves to the new one. */
  function rekey(conv, oldKey) {
    if (state.conversations.get(oldKey) !== conv) return;
    state.conversations.delete(oldKey);
    state.conversations.set(conv.key, conv);
    if (state.drafts.has(oldKey)) {
      setDraft(conv.key, state.drafts.get(oldKey));
      setDraft(oldKey, '');
    }
    if (state.active === conv) {
      logTitle.textContent = conv.title();
      writeTab(TAB_ACTIVE, conv.key);
    }
  }

  /** The conversations of this session are all back: stop waiting for the one shown before. */
  function settle() {
    if (state.restoreKey === null) return;
    state.restoreKey = null;
    if (!state.active) select(state.conversations.values().next().value ?? null);
  }

  const conversations = (kind) => [...state.conversations.values()].filter((conv) => conv.kind === kind);

  // ---- Helpers: members -----------------------------------------------------------------

  function renderMembers() {
    const conv = state.active;
    const members = conv?.kind === 'direct'
      ? sortNicks([conv.name, me.nick()].filter(Boolean)) : conv?.members ?? [];
    // In a room everyone listed is connected; a direct chat's person is checked (direct.js).
    const presence = (nick) => (conv?.kind !== 'direct' || nick === me.nick() ? 'online'
      : { true: 'online', false: 'offline' }[conv.online] ?? 'unknown');
    memberList.replaceChildren(...members.map((nick) => renderMember(nick, presence(nick))));
    memberCount.textContent = String(members.length);
    membersHint.hidden = conv?.kind !== 'room' || !members.some((nick) => nick !== me.nick());
  }

  function renderMember(nick, presence) {
    const badge = nickBadge(nick, { dataset: { testid: 'member-nick' } });
    const dataset = { testid: 'member', nick, presence };
    const status = presence === 'online' ? null
      : h('span', { className: 'presence', text: presence === 'offline' ? 'offline' : 'checking…', dataset: { testid: 'member-presence' } });
    if (nick === me.nick()) {
      return h('li', { className: 'member self', dataset },
        badge, h('span', { className: 'you', text: 'you' }));
    }
    return h('li', { className: 'member', dataset },
      h('button', {
        className: 'member-open',
        dataset: { testid: 'member-open' },
        attrs: { type: 'button', 'aria-label': `${nick}${status ? `, ${status.textContent}` : ''}: send a direct message` },
        on: { click: () => direct.open(nick) },
      }, badge, status, h('span', { className: 'member-dm', text: 'Message', attrs: { 'aria-hidden': 'true' } })));
  }

  // ---- Helpers: drafts ------------------------------------------------------------------
  // The send box belongs to the conversation shown: what is typed in one stays with it (and
  // with the tab, across a reload), and never goes to another by mistake.

  function setDraft(key, text) {
    if (text) {
      state.drafts.set(key, text);
    } else {
      state.drafts.delete(key);
    }
    writeTab(TAB_DRAFTS, Object.fromEntries(state.drafts));
  }

  /** Keep the send box's text as the previous conversation's draft; show the new one's. */
  function swapDraft(previous) {
    if (previous && state.conversations.get(previous.key) === previous) {
      setDraft(previous.key, messageInput.value);
    }
    setInput(state.active ? state.drafts.get(state.active.key) ?? '' : '');
  }

  // ---- Helpers: the send box ------------------------------------------------------------

  function send() {
    const conv = state.active;
    const text = messageInput.value;
    if (!conv) {
      notify('Join a room, or open a conversation, before sending a message.');
      byTestId('room-input').focus();
      return;
    }
    if (!text.trim()) return;
    setInput(''); // offline too: the outbox sends it once reconnected
    setDraft(conv.key, '');
    typing.inputChanged(conv, '');
    conv.send(text);
  }

  /**
   * Put the text of a message that was refused back into its own conversation's draft (the
   * send box, if that one is shown), before anything typed there since.
   */
  function giveBack(conv, text) {
    if (state.conversations.get(conv.key) !== conv) return;
    const shown = state.active === conv;
    const draft = shown ? messageInput.value : state.drafts.get(conv.key) ?? '';
    const restored = draft ? `${text}\n${draft}` : text;
    if (shown) setInput(restored);
    setDraft(conv.key, restored);
  }

  function setInput(value) {
    messageInput.value = value;
    fitInput();
    updateControls();
  }

  function fitInput() {
    messageInput.style.height = 'auto';
    messageInput.style.height = `${Math.min(messageInput.scrollHeight + 2, MAX_INPUT_HEIGHT_PX)}px`;
  }

  function updateControls() {
    const conv = state.active;
    const online = socket.connected;
    panel.dataset.online = String(online); // members shown offline are stale
    sendButton.disabled = !conv || !messageInput.value.trim();
    closeRoomButton.disabled = !online;
    messageInput.placeholder = placeholder(conv, online);
  }

  function placeholder(conv, online) {
    if (!conv) return 'Join a room to start chatting';
    const where = conv.title().replace(' ', '');
    return online ? `Message ${where}` : `Offline: messages to ${where} go out once reconnected`;
  }

  // ---- Helpers: the banner --------------------------------------------------------------
  // Shown while the server has closed /chat on purpose: for flooding, or because this session
  // connected in another tab or window (the server says session_moved just before).

  function showBanner() {
    banner.hidden = !state.kicked;
    kickedText.hidden = state.moved;
    movedText.hidden = !state.moved;
    reconnectButton.textContent = RECONNECT_LABEL[state.moved ? 'moved' : 'kicked'];
  }

  // ---- Helpers: closing a room ----------------------------------------------------------
  // A destructive click: the first one asks, a second one within a few seconds does it.

  function onCloseRoomClick() {
    const conv = state.active;
    if (conv?.kind !== 'room') return;
    if (state.confirmClose === null) {
      closeRoomButton.textContent = 'Click again to close';
      closeRoomButton.dataset.state = 'confirm';
      state.confirmClose = setTimeout(resetCloseButton, CONFIRM_CLOSE_MS);
      return;
    }
    resetCloseButton();
    rooms.close(conv);
  }

  /** Close room is offered to the one member who may close the room (its owner). */
  function showCloseButton() {
    const conv = state.active;
    closeRoomButton.hidden = conv?.kind !== 'room' || !sameNick(conv.owner, me.nick());
    if (closeRoomButton.hidden) resetCloseButton();
  }

  function resetCloseButton() {
    clearTimeout(state.confirmClose);
    state.confirmClose = null;
    closeRoomButton.textContent = 'Close room';
    delete closeRoomButton.dataset.state;
  }

  // ---- The shell: what the room and direct-chat modules use -----------------------------

  const shell = {
    add: addConversation,
    remove: removeConversation,
    select,
    rekey,
    get: (key) => state.conversations.get(key),
    active: () => state.active,
    conversations,
    isActive: (conv) => state.active === conv,
    refresh: () => {
      if (state.active) logTitle.textContent = state.active.title();
      showCloseButton();
      renderMembers();
      updateControls();
    },
    giveBack,
    focusInput: () => messageInput.focus(),
    onSelect: (listener) => state.selectListeners.push(listener),
    settle,
  };

  const typing = initTyping({ socket, shell, me, indicator: byTestId('typing-indicator') });
  const outbox = createOutbox({ socket, notify, shell, me });
  const direct = initDirect({ socket, notify, shell, me, outbox });
  const rooms = initRooms({
    socket, notify, shell, me, typing, outbox,
    onRename: (previous, nick) => direct.renamePeer(previous, nick),
  });

  // ---- Keyboard events ------------------------------------------------------------------

  messageInput.addEventListener('keydown', (event) => {
    if (event.key === 'Enter' && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      send();
    }
  });

  messageInput.addEventListener('input', () => {
    fitInput();
    updateControls();
    if (state.active) {
      setDraft(state.active.key, messageInput.value);
      typing.inputChanged(state.active, messageInput.value);
    }
  });

  // ---- Form and click events ------------------------------------------------------------

  messageForm.addEventListener('submit', (event) => {
    event.preventDefault();
    send();
  });

  closeRoomButton.addEventListener('click', onCloseRoomClick);

  reconnectButton.addEventListener('click', () => {
    reconnectButton.disabled = true;
    socket.connect();
  });

  me.onChange(() => {
    showCloseButton();
    renderMembers();
  });

  // ---- Socket events --------------------------------------------------------------------

  socket.on('session_moved', () => {
    state.moved = true;
  });

  socket.on('connect', () => {
    state.kicked = false;
    state.moved = false;
    showBanner();
    reconnectButton.disabled = false;
    updateControls();
  });

  socket.on('disconnect', (reason) => {
    state.kicked = reason === 'io server disconnect';
    state.moved = state.kicked && state.moved;
    showBanner();
    const line = !state.kicked ? 'Connection lost. Reconnecting…'
      : state.moved ? 'This chat continued in another tab or window.' : 'Disconnected by the server.';
    for (const conv of state.conversations.values()) conv.addSystemLine([line], 'warn');
    resetCloseButton();
    updateControls();
  });

  // The rooms of this tab are back already (its direct chats come once connected): show the
  // one shown before the reload, or the first room meanwhile.
  if (!state.active) select(state.conversations.values().next().value ?? null, { restoring: true });
}

/** The drafts kept for this tab: conversation key -> text. */
function readDrafts() {
  const drafts = readTab(TAB_DRAFTS, {});
  if (!drafts || typeof drafts !== 'object' || Array.isArray(drafts)) return {};
  return Object.fromEntries(Object.entries(drafts).filter(([, text]) => typeof text === 'string'));
}

/** Nicks in the order the server lists members: by code point, ignoring case. */
function sortNicks(nicks) {
  const fold = (nick) => nick.toLowerCase();
  return [...nicks].sort((a, b) => (fold(a) < fold(b) ? -1 : fold(a) > fold(b) ? 1 : 0));
}
