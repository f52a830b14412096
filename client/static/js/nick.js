// Who we are: our user id, and our nick, shown in the chat panel's head and changed with the
// nick form. This tab keeps its nick (and the session token that proves it is ours) with its
// state (session.js), so that a reload or a reconnect takes it back at once, even from our own
// old connection the server still holds. The server names our user id in every greeting: it is
// the same for every connection of this tab's session, so it is not kept here.
// The nick chosen last is kept in localStorage too, for the next new tab.

import { request } from './connection.js';
import { byTestId } from './dom.js';
import { failure } from './notice.js';
import { keepSessionToken, readTab, sessionToken, signInAuth, writeTab } from './session.js';

// ---- Constants --------------------------------------------------------------------------

const STORAGE_KEY = 'relay.nick'; // localStorage: the nick a new tab asks for
const TAB_NICK = 'nick'; // this tab's nick
const TAB_NICKS = 'nicks'; // every nick this tab has had
const TAB_TAKEN = 'nicksTaken'; // nicks this tab had that someone else was seen holding since
const USER_ID = /^[0-9a-f]{16}$/;

/** Whether two nicks are the same to the server, which ignores case. */
export function sameNick(a, b) {
  return typeof a === 'string' && typeof b === 'string' && a.toLowerCase() === b.toLowerCase();
}

/** The user id in `value` (16 lowercase hex digits), or null. */
export function userIdOf(value) {
  return typeof value === 'string' && USER_ID.test(value) ? value : null;
}

/**
 * Wire the nick display and form to a /chat socket. Returns { nick(), userId(),
 * isMine(message), isMineByNick(nick), hadNick(nick), noteHeld(nicks), onChange(listener),
 * onGreeting(listener), auth() }: userId is ours as the latest greeting named it (null before);
 * isMine says whether a message is ours (see below); isMineByNick the same for something that
 * carries a nick and no user id (a shout); hadNick whether this tab ever had that nick; noteHeld
 * is told the nicks other people hold now (a room's members); auth() is the payload for the
 * socket's connect (`{nick?, session?, token?}`); listener(nick, previous) runs on every change of nick;
 * a greeting listener runs once the server has named us on each connect.
 *
 * A message is ours when its sender's user id (`user_id` of a room message, `from_id` of a
 * direct one) is ours: a nick is a label that someone else may hold later, or held before us.
 * Only a message without one (stored before user ids existed) is told by its nick: ours when it
 * comes from our nick, or from a nick this tab had before, unless someone else has been seen
 * holding that nick since (then nobody can tell whose it was).
 */
export function initNick({ socket, notify }) {
  // ---- DOM refs -------------------------------------------------------------------------

  const meLine = byTestId('me');
  const myNickEl = byTestId('my-nick');
  const editButton = byTestId('nick-edit');
  const form = byTestId('nick-form');
  const input = byTestId('nick-input');
  const saveButton = byTestId('nick-save');
  const cancelButton = byTestId('nick-cancel');

  // ---- State ----------------------------------------------------------------------------

  const state = {
    nick: null,
    userId: null, // named by each greeting
    known: new Set(readNicks(TAB_NICKS)), // every nick this tab has had
    taken: new Set(readNicks(TAB_TAKEN)), // of those, the ones seen held by someone else since
    asked: null, // the nick asked for on the latest connect
    listeners: [],
    greetingListeners: [],
    saving: false,
  };

  // ---- Helpers: storage -----------------------------------------------------------------
  // localStorage may be unavailable (privacy settings): a new tab then starts as a guest.

  function loadSaved() {
    try {
      return localStorage.getItem(STORAGE_KEY) || null;
    } catch {
      return null;
    }
  }

  function save(nick) {
    try {
      localStorage.setItem(STORAGE_KEY, nick);
    } catch {
      // not kept: nothing else to do
    }
  }

  // ---- Helpers: the nick ----------------------------------------------------------------

  function setNick(nick) {
    const previous = state.nick;
    state.nick = nick;
    state.known.add(nick);
    state.taken.delete(nick);
    writeTab(TAB_NICK, nick);
    writeTab(TAB_NICKS, [...state.known]);
    writeTab(TAB_TAKEN, [...state.taken]);
    myNickEl.textContent = nick;
    editButton.disabled = false;
    if (previous !== nick) {
      for (const listener of state.listeners) listener(nick, previous);
    }
  }

  /** Whether something from `nick`, with no user id to tell by, is ours. */
  const isMineByNick = (nick) => nick === state.nick
    || (state.known.has(nick) && !state.taken.has(nick));

  /** Whether a message ({user_id or from_id, nick or from}) is ours: see above. */
  function isMine(message) {
    const senderId = userIdOf(message.user_id ?? message.from_id);
    if (senderId !== null && state.userId !== null) return senderId === state.userId;
    return isMineByNick(message.nick ?? message.from);
  }

  /** Someone else holds these nicks now: messages from the ones this tab had are not ours. */
  function noteHeld(nicks) {
    let changed = false;
    for (const nick of nicks) {
      if (nick !== state.nick && state.known.has(nick) && !state.taken.has(nick)) {
        state.taken.add(nick);
        changed = true;
      }
    }
    if (changed) writeTab(TAB_TAKEN, [...state.taken]);
  }

  /**
   * What to ask for on connect: the nick this tab has (a reconnect or a reload), else the one
   * chosen last in any tab; and this tab's session token once the server has given one. A tab
   * signed in (AUTH_REQUIRED) asks for no nick: its user's name is its nick.
   */
  function auth() {
    const signIn = signInAuth();
    state.asked = signIn.token ? null : state.nick ?? readTabNick() ?? loadSaved();
    const token = sessionToken();
    return {
      ...(state.asked ? { nick: state.asked } : {}),
      ...(token ? { session: token } : {}),
      ...signIn,
    };
  }

  /**
   * The connect greeting names us: the nick asked for, or a guest's when someone else holds it
   * (another tab is another session). It brings the session token to present next time, and
   * our user id.
   */
  function greet(nick, token, userId) {
    keepSessionToken(token);
    state.userId = userIdOf(userId) ?? state.userId;
    setNick(nick);
    if (state.asked && !sameNick(nick, state.asked)) {
      notify(`The nick "${state.asked}" is in use elsewhere, so you are ${nick} in this tab.`, 'info');
    }
    for (const listener of state.greetingListeners) listener(nick);
  }

  async function changeNick(raw) {
    const nick = raw.trim();
    if (!nick) {
      notify('Type the nick you want.');
      input.focus();
      return;
    }
    if (nick === state.nick) {
      closeForm();
      return;
    }
    state.saving = true;
    renderForm();
    try {
      const reply = await request(socket, 'set_nick', { nick });
      save(reply.nick);
      setNick(reply.nick);
      closeForm();
    } catch (error) {
      notify(failure('Could not change your nick', error));
      input.focus();
      input.select();
    } finally {
      state.saving = false;
      renderForm();
    }
  }

  // ---- Helpers: the form ----------------------------------------------------------------

  function openForm() {
    meLine.hidden = true;
    form.hidden = false;
    input.value = state.nick ?? '';
    renderForm();
    input.focus();
    input.select();
  }

  function closeForm() {
    form.hidden = true;
    meLine.hidden = false;
    editButton.focus();
  }

  function renderForm() {
    saveButton.disabled = state.saving || !socket.connected;
    input.readOnly = state.saving;
  }

  // ---- Form and click events ------------------------------------------------------------

  editButton.addEventListener('click', openForm);
  cancelButton.addEventListener('click', closeForm);

  form.addEventListener('submit', (event) => {
    event.preventDefault();
    if (!state.saving) changeNick(input.value);
  });

  input.addEventListener('keydown', (event) => {
    if (event.key === 'Escape') {
      event.stopPropagation(); // Escape here cancels the form, not the toast
      closeForm();
    }
  });

  // ---- Socket events --------------------------------------------------------------------

  // The greeting is my_response {data: "Connected", nick, session, user_id}; a broadcast
  // carries `from` instead. socket.io-client hands it over before the 'connect' event.
  socket.on('my_response', (payload) => {
    if (payload && payload.data === 'Connected' && typeof payload.nick === 'string') {
      greet(payload.nick, payload.session, payload.user_id);
    }
  });

  socket.on('connect', renderForm);
  socket.on('disconnect', renderForm);

  editButton.disabled = true; // until the server names us

  return {
    nick: () => state.nick,
    userId: () => state.userId,
    isMine,
    isMineByNick,
    hadNick: (nick) => state.known.has(nick),
    noteHeld,
    onChange: (listener) => state.listeners.push(listener),
    onGreeting: (listener) => state.greetingListeners.push(listener),
    auth,
  };
}

/** This tab's nick, kept across reloads. */
function readTabNick() {
  const nick = readTab(TAB_NICK);
  return typeof nick === 'string' && nick ? nick : null;
}

/** A list of nicks kept for this tab under `name`. */
function readNicks(name) {
  const nicks = readTab(name, []);
  return Array.isArray(nicks) ? nicks.filter((nick) => typeof nick === 'string') : [];
}
