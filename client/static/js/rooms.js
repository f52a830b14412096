// Rooms: joining and leaving, their members and messages, their history (catching up after a
// reconnect or a reload, "Load older messages") and closing a room.

import { request } from './connection.js';
import { conversationKey, createConversation } from './conversation.js';
import { byTestId, nickBadge } from './dom.js';
import { failure } from './notice.js';
import { readTab, writeTab } from './session.js';

// ---- Constants --------------------------------------------------------------------------

const OLDER_PAGE = 50; // messages per "Load older messages"
const CATCH_UP_PAGE = 200; // the server's largest history page
const RELOAD_CONTEXT = 50; // after a reload, messages up to the newest one seen shown again
const RATE_LIMIT_RETRIES = 3; // a rejoin refused for going too fast is tried again, this often
const RATE_LIMIT_PAUSE_MS = 1500;
const TAB_ROOMS = 'rooms'; // this tab's rooms: [{room, lastId}], in the order joined

/**
 * Wire the join form and the room events of a /chat socket into the chat panel (shell).
 * onRename(previous, nick) is told when someone in one of our rooms changes nick.
 */
export function initRooms({ socket, notify, shell, me, typing, outbox, onRename }) {
  // ---- DOM refs -------------------------------------------------------------------------

  const joinForm = byTestId('join-form');
  const roomInput = byTestId('room-input');

  // ---- State ----------------------------------------------------------------------------

  const state = {
    joinsInFlight: 0,
    early: new Map(), // room name -> updates that arrived before that room's join ack
    saveQueued: false,
  };

  // ---- Helpers: rooms -------------------------------------------------------------------

  const roomOf = (name) => shell.get(conversationKey('room', name)) ?? null;
  const isOpen = (conv) => shell.get(conv.key) === conv;

  function openRoom(name) {
    const conv = createConversation({
      kind: 'room',
      name,
      isMine: me.isMine,
      onSelect: shell.select,
      onClose: leaveRoom,
      onLoadOlder: loadOlder,
      onNewest: remember,
    });
    conv.joined = false; // whether this connection is a member (set by each join ack)
    conv.resumeFrom = null; // restored after a reload: the newest message id seen before it
    conv.send = (text) => outbox.send(conv, text);
    shell.add(conv);
    remember();
    return conv;
  }

  function dropRoom(conv) {
    outbox.drop(conv);
    typing.clearRoom(conv.name);
    shell.remove(conv);
    remember();
  }

  /**
   * Add messages from a history page; returns how many were new. Given `after`, the newest id
   * seen before a reload, the ones up to it are shown again, neither counted nor unread.
   */
  function addMessages(conv, messages, after = null) {
    let added = 0;
    for (const message of Array.isArray(messages) ? messages : []) {
      if (!isChatMessage(message)) continue;
      const missed = after === null || message.id > after;
      if (conv.addMessage(message, { quiet: !missed }) && missed) added += 1;
    }
    return added;
  }

  /** Apply a join ack. fresh: joined without since_id, so `more` is about older messages. */
  function applyJoin(conv, reply, { fresh, after = null }) {
    conv.joined = true;
    if (Array.isArray(reply.members)) setMembers(conv, reply.members);
    const added = addMessages(conv, reply.history, after);
    if (fresh) conv.setOlder({ more: reply.more === true });
    for (const update of state.early.get(conv.name) ?? []) update(conv);
    state.early.delete(conv.name);
    if (shell.isActive(conv)) shell.refresh();
    return added;
  }

  /** A room's members; they also tell which nicks someone else holds now (see nick.js). */
  function setMembers(conv, members) {
    conv.members = members.map(String);
    me.noteHeld(conv.members);
  }

  function applyRoomInfo(conv, info) {
    if (info.closing === true) {
      closed(conv, info);
      return;
    }
    if (Array.isArray(info.members)) setMembers(conv, info.members);
    const who = typeof info.nick === 'string' ? info.nick : null;
    if (who && typeof info.previous_nick === 'string') {
      showRename(conv, info.previous_nick, who, info.msg);
    } else if (who && !('previous_nick' in info) && !('closing' in info)) {
      showJoinOrLeave(conv, who, info.msg);
    } else if (typeof info.msg === 'string') {
      conv.addSystemLine([info.msg]); // a kind of update this page does not know: say it as is
    }
    if (shell.isActive(conv)) shell.refresh();
  }

  function showRename(conv, previous, nick, msg) {
    const you = [previous, nick].includes(me.nick()) ? ' (you)' : '';
    conv.addSystemLine([nickBadge(previous), ' is now known as ', nickBadge(nick), you],
      'info', String(msg ?? ''));
    typing.rename(conv.name, previous, nick);
    onRename(previous, nick);
  }

  function showJoinOrLeave(conv, nick, msg) {
    const joined = conv.members.includes(nick);
    const you = nick === me.nick() ? ' (you)' : '';
    if (joined && you && conv.rejoining) return; // the "Reconnected" line says it
    conv.addSystemLine([nickBadge(nick), `${you} ${joined ? 'joined' : 'left'} the room`],
      joined ? 'join' : 'leave', String(msg ?? ''));
    if (!joined) typing.set(conv.name, nick, false);
  }

  /** The room was closed (by us or by its longest-standing member): its tab goes. */
  function closed(conv, info) {
    if (!isOpen(conv)) return;
    dropRoom(conv);
    const by = typeof info.nick === 'string' ? info.nick : null;
    notify(by && by === me.nick() ? `You closed #${conv.name}.`
      : `#${conv.name} was closed${by ? ` by ${by}` : ''}. You are no longer in it.`, 'info');
  }

  /**
   * The room an event is for. An event for a room we are still joining (it can overtake the
   * join's ack) is kept and replayed once the ack arrives; any other is dropped.
   */
  function roomFor(name, update) {
    const conv = typeof name === 'string' ? roomOf(name) : null;
    if (conv) return conv;
    if (state.joinsInFlight > 0 && typeof name === 'string') {
      if (!state.early.has(name)) state.early.set(name, []);
      state.early.get(name).push(update);
    }
    return null;
  }

  function finishJoin() {
    state.joinsInFlight -= 1;
    if (state.joinsInFlight === 0) state.early.clear();
  }

  // ---- Helpers: what this tab keeps -----------------------------------------------------
  // The rooms this tab is in, with the newest message id seen in each, outlive a reload: the
  // page joins them again from there, so their history goes on without a gap.

  /** Keep the rooms once the current task is done, however many messages it added. */
  function remember() {
    if (state.saveQueued) return;
    state.saveQueued = true;
    queueMicrotask(() => {
      state.saveQueued = false;
      writeTab(TAB_ROOMS, shell.conversations('room')
        .map((conv) => ({ room: conv.name, lastId: conv.lastId ?? conv.resumeFrom })));
    });
  }

  /** Put back the tabs of the rooms this tab was in; they are joined again on connect. */
  function restoreRooms() {
    const saved = readTab(TAB_ROOMS, []);
    for (const entry of Array.isArray(saved) ? saved : []) {
      if (typeof entry?.room !== 'string' || !entry.room || roomOf(entry.room)) continue;
      const conv = openRoom(entry.room);
      conv.resumeFrom = Number.isInteger(entry.lastId) && entry.lastId >= 0 ? entry.lastId : null;
    }
  }

  // ---- Helpers: actions -----------------------------------------------------------------

  async function joinRoom(rawName) {
    const name = rawName.trim();
    if (!name) {
      notify('Type the name of a room to join.');
      roomInput.focus();
      return;
    }
    const known = roomOf(name);
    if (known?.joined) {
      shell.select(known);
      roomInput.value = '';
      shell.focusInput();
      return;
    }
    state.joinsInFlight += 1;
    try {
      let conv = known;
      if (conv) {
        await rejoin(conv); // a room whose rejoin failed: catch up from the newest message seen
      } else {
        const reply = await request(socket, 'join', { room: name });
        conv = roomOf(reply.room) ?? openRoom(reply.room);
        applyJoin(conv, reply, { fresh: conv.lastId === null });
      }
      shell.select(conv);
      roomInput.value = '';
      shell.focusInput();
      outbox.flush();
    } catch (error) {
      notify(failure('Could not join the room', error));
    } finally {
      finishJoin();
    }
  }

  async function leaveRoom(conv) {
    if (!socket.connected) {
      dropRoom(conv); // the server let go of our rooms when the connection went
      return;
    }
    try {
      await request(socket, 'leave', { room: conv.name });
      dropRoom(conv);
    } catch (error) {
      if (error.code === 'not_in_room') dropRoom(conv);
      notify(failure(`Could not leave ${conv.name}`, error));
    }
  }

  async function closeRoom(conv) {
    try {
      await request(socket, 'close_room', { room: conv.name });
      closed(conv, { nick: me.nick() }); // usually done already, by the room_info before the ack
    } catch (error) {
      notify(failure(`Could not close #${conv.name}`, error));
    }
  }

  async function loadOlder(conv) {
    if (conv.loadingOlder) return;
    conv.setOlder({ loading: true });
    try {
      const before = conv.oldestId();
      const reply = await request(socket, 'history',
        before === null ? { room: conv.name, limit: OLDER_PAGE } : { room: conv.name, before_id: before, limit: OLDER_PAGE });
      conv.addOlder((reply.messages ?? []).filter(isChatMessage));
      conv.setOlder({ more: reply.more === true, loading: false });
    } catch (error) {
      conv.setOlder({ loading: false });
      notify(failure('Could not load older messages', error));
    }
  }

  /**
   * Join a room again after a reconnect or a reload and fetch what was missed: every message
   * after the newest one seen, page by page, merged by id (after a reload, from a page before
   * it, so that the log shows where it was). Returns how many messages were new.
   */
  async function rejoin(conv) {
    const seen = conv.lastId ?? conv.resumeFrom;
    const reloaded = conv.lastId === null && conv.resumeFrom !== null;
    // Ids go up by one per room: a page before the newest one seen is the log as it was.
    const sinceId = reloaded ? Math.max(0, conv.resumeFrom - RELOAD_CONTEXT) : conv.lastId;
    conv.rejoining = true; // our own "joined" announcement comes before the ack
    let reply;
    try {
      reply = await patiently('join',
        sinceId === null ? { room: conv.name } : { room: conv.name, since_id: sinceId });
    } finally {
      conv.rejoining = false;
    }
    if (!isOpen(conv)) return 0;
    let added = applyJoin(conv, reply, { fresh: sinceId === null, after: seen });
    if (reloaded) conv.setOlder({ more: sinceId > 0 });
    // Each page follows the last one received, not the newest message shown: live messages
    // that arrive while a page is on its way are newer than the ones still to fetch.
    let cursor = newestId(reply.history);
    let more = sinceId !== null && reply.more === true && cursor !== null;
    while (more && isOpen(conv)) {
      const page = await patiently('history',
        { room: conv.name, since_id: cursor, limit: CATCH_UP_PAGE });
      added += addMessages(conv, page.messages, seen);
      const newest = newestId(page.messages);
      more = page.more === true && newest !== null && newest > cursor;
      cursor = newest ?? cursor;
    }
    return added;
  }

  async function rejoinRooms() {
    const convs = shell.conversations('room');
    state.joinsInFlight += convs.length;
    await Promise.all(convs.map(async (conv) => {
      try {
        const added = await rejoin(conv);
        conv.addSystemLine([added === 0 ? 'Reconnected.'
          : `Reconnected: ${added} new message${added === 1 ? '' : 's'} while you were away.`], 'ok');
      } catch (error) {
        conv.addSystemLine(['Could not rejoin this room.'], 'warn');
        notify(failure(`Could not rejoin ${conv.name}`, error));
      } finally {
        finishJoin();
      }
    }));
    outbox.flush();
  }

  /** A request that waits and tries again when refused for going too fast (many rooms). */
  async function patiently(event, payload) {
    for (let attempt = 0; ; attempt += 1) {
      try {
        return await request(socket, event, payload);
      } catch (error) {
        if (error.code !== 'rate_limited' || attempt >= RATE_LIMIT_RETRIES) throw error;
        await new Promise((resolve) => { setTimeout(resolve, RATE_LIMIT_PAUSE_MS); });
      }
    }
  }

  // ---- Room messages through the outbox -------------------------------------------------

  outbox.define('room', {
    event: 'room_message',
    payload: (conv, text, clientId) => ({ room: conv.name, text, client_id: clientId }),
    ready: (conv) => conv.joined,
    notSent: () => 'Message not sent',
    accepted: (conv, reply, entry) => ({ id: reply.id, nick: me.nick(), text: entry.text, ts: entry.ts }),
  });

  // ---- Form events ----------------------------------------------------------------------

  joinForm.addEventListener('submit', (event) => {
    event.preventDefault();
    joinRoom(roomInput.value);
  });

  // ---- Socket events --------------------------------------------------------------------

  socket.on('room_info', (info) => {
    if (!info || typeof info !== 'object') return;
    const update = (conv) => applyRoomInfo(conv, info);
    const conv = roomFor(info.room, update);
    if (conv) update(conv);
  });

  socket.on('chat_message', (message) => {
    if (!isChatMessage(message)) return;
    const update = (conv) => {
      if (!outbox.claim(conv, message)) conv.addMessage(message);
      typing.set(conv.name, message.nick, false);
    };
    const conv = roomFor(message.room, update);
    if (conv) update(conv);
  });

  socket.on('connect', rejoinRooms);

  socket.on('disconnect', () => {
    // The server let go of every room with the connection: each is joined again on connect.
    for (const conv of shell.conversations('room')) conv.joined = false;
  });

  restoreRooms();
  return { close: closeRoom };
}

/** The highest id of a page of messages, or null when it holds none. */
function newestId(messages) {
  const ids = (Array.isArray(messages) ? messages : []).filter(isChatMessage)
    .map((message) => message.id);
  return ids.length ? Math.max(...ids) : null;
}

function isChatMessage(message) {
  return Boolean(message) && typeof message === 'object' && Number.isInteger(message.id)
    && typeof message.room === 'string' && typeof message.nick === 'string'
    && typeof message.text === 'string' && Number.isFinite(message.ts);
}
