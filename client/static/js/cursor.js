// The contiguous cursor of one room: which of its messages this page holds, by id alone (no DOM).
// Room message ids go up by exactly one per room, so a missing one shows: the cursor is the
// highest id N such that the page holds every message of the room from where it started (after
// `base`) up to N. Catching up, reconnecting and reloading resume from it, never from the newest
// id seen: a message newer than the cursor may have come live while older ones were still to
// fetch, and starting after it would skip them for good.

/**
 * A room's cursor, not started: it is started at the first join (see begin). Returns
 * { value(), begin(base), note(id), hasGap(), noneBetween(since, id) }.
 */
export function createCursor() {
  let cursor = null; // null until begun: before, every id is held "ahead"
  const ahead = new Set(); // ids held above cursor + 1: there is a gap below each of them

  /** Move the cursor over the ids held right after it. */
  function advance() {
    if (cursor === null) return;
    while (ahead.has(cursor + 1)) {
      cursor += 1;
      ahead.delete(cursor);
    }
    for (const id of ahead) if (id <= cursor) ahead.delete(id);
  }

  return {
    /** The cursor: every message after the start up to it is held; null before begin. */
    value: () => cursor,

    /**
     * Start after `base` (the page is responsible for base + 1 on; older ones are "Load older",
     * not a gap), unless started already. Ids noted before, over it, count.
     */
    begin(base) {
      if (cursor !== null) return;
      cursor = base;
      advance();
    },

    /**
     * Note that the message `id` is held now. Returns false when it was held already (it is a
     * duplicate, even if its line has gone from the log since), true when it is new.
     */
    note(id) {
      if ((cursor !== null && id <= cursor) || ahead.has(id)) return false;
      ahead.add(id);
      advance();
      return true;
    },

    /** Whether a message is held past a missing one (cursor + 1 is missing). */
    hasGap: () => cursor !== null && ahead.size > 0,

    /**
     * The server holds no message after `since` that is older than `id` (the first of a page
     * it sent after since_id `since`): none of those is missing, the cursor may pass them.
     * Only the server can say so: it keeps a hole that is not there from being asked for
     * again and again.
     */
    noneBetween(since, id) {
      if (cursor === null || cursor < since || id - 1 <= cursor) return;
      cursor = id - 1;
      advance();
    },
  };
}
