// This tab's session: the token the server gave it, and what the page should find again after a
// reload (its nick, rooms, direct messages, the conversation shown). It belongs to one tab: two
// tabs are two sessions, a reload stays one.
//
// sessionStorage alone cannot tell a reload from a duplicated tab (a duplicate gets a copy of it,
// and with the token it would take over our session and nick). So the page reads its state from
// sessionStorage once, at load, and takes it out; it keeps it in memory and writes it back only
// when the page goes (pagehide), where the reload finds it. A tab duplicated meanwhile finds none
// and starts a session of its own.
// The token is a secret: it is sent only in the socket's auth, never logged or shown.

// ---- Constants --------------------------------------------------------------------------

const PREFIX = 'relay.tab.';
const TOKEN_KEY = 'session';
const TOKEN = /^[A-Za-z0-9_-]{32,64}$/; // the server ignores anything else

// ---- State ------------------------------------------------------------------------------

const tab = takeStored(); // name -> raw JSON text: this tab's state while the page lives

// ---- Helpers: sessionStorage ------------------------------------------------------------
// sessionStorage may be unavailable (privacy settings): then nothing outlives the page.

/** Read this tab's values from sessionStorage and take them out of it. */
function takeStored() {
  const values = new Map();
  try {
    for (let index = sessionStorage.length - 1; index >= 0; index -= 1) {
      const key = sessionStorage.key(index);
      if (key?.startsWith(PREFIX)) values.set(key.slice(PREFIX.length), sessionStorage.getItem(key));
    }
    clearStored([...values.keys()]);
  } catch {
    // nothing kept: a new session
  }
  return values;
}

function clearStored(names) {
  try {
    for (const name of names) sessionStorage.removeItem(PREFIX + name);
  } catch {
    // nothing to take out
  }
}

/** The page goes (a reload, a navigation, maybe the back-forward cache): keep it for its return. */
function putBack() {
  try {
    for (const [name, raw] of tab) sessionStorage.setItem(PREFIX + name, raw);
  } catch {
    // not kept: the page still worked, it just forgets on reload
  }
}

// ---- Tab state --------------------------------------------------------------------------

/** The value kept under `name` for this tab (any JSON value), or `fallback`. */
export function readTab(name, fallback = null) {
  const raw = tab.get(name);
  if (raw === undefined || raw === null) return fallback;
  try {
    return JSON.parse(raw);
  } catch {
    return fallback;
  }
}

/** Keep `value` (any JSON value) under `name` for this tab; null forgets it. */
export function writeTab(name, value) {
  if (value === null || value === undefined) {
    tab.delete(name);
  } else {
    tab.set(name, JSON.stringify(value));
  }
}

// ---- The session token ------------------------------------------------------------------

/** This tab's session token, or null before the server has given one. */
export function sessionToken() {
  const token = readTab(TOKEN_KEY);
  return typeof token === 'string' && TOKEN.test(token) ? token : null;
}

/** Keep the token of a connect greeting (a new session's, or ours again). */
export function keepSessionToken(token) {
  if (typeof token === 'string' && TOKEN.test(token) && token !== sessionToken()) {
    writeTab(TOKEN_KEY, token);
  }
}

// ---- Wiring -----------------------------------------------------------------------------

window.addEventListener('pagehide', putBack);

// Back from the back-forward cache: the page lives on with its state in memory, so take it out
// of sessionStorage again (a tab duplicated now must not copy it).
window.addEventListener('pageshow', (event) => {
  if (event.persisted) clearStored([...tab.keys()]);
});
