// This tab's session: the token the server gave it, and what the page should find again after a
// reload (its nick, rooms, direct messages, the conversation shown). All of it lives in
// sessionStorage, which belongs to one tab: two tabs are two sessions, a reload stays one.
// The token is a secret: it is sent only in the socket's auth, never logged or shown.

// ---- Constants --------------------------------------------------------------------------

const PREFIX = 'relay.tab.';
const TOKEN_KEY = 'session';
const TOKEN = /^[A-Za-z0-9_-]{32,64}$/; // the server ignores anything else

// ---- Tab storage ------------------------------------------------------------------------
// sessionStorage may be unavailable (privacy settings): then nothing outlives the page.

/** The value kept under `name` for this tab (any JSON value), or `fallback`. */
export function readTab(name, fallback = null) {
  try {
    const raw = sessionStorage.getItem(PREFIX + name);
    return raw === null ? fallback : JSON.parse(raw);
  } catch {
    return fallback;
  }
}

/** Keep `value` (any JSON value) under `name` for this tab; null forgets it. */
export function writeTab(name, value) {
  try {
    if (value === null || value === undefined) {
      sessionStorage.removeItem(PREFIX + name);
    } else {
      sessionStorage.setItem(PREFIX + name, JSON.stringify(value));
    }
  } catch {
    // not kept: the page still works, it just forgets on reload
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
