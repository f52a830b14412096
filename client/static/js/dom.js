// Small DOM helpers. Everything that comes from a person or the server is put into the page as
// text (textContent or text nodes via append), never parsed as HTML.

const NEAR_BOTTOM_PX = 48;

/** Return the first element with the given data-testid inside root. */
export function byTestId(testId, root = document) {
  const element = root.querySelector(`[data-testid="${testId}"]`);
  if (!element) {
    throw new Error(`missing element [data-testid="${testId}"]`);
  }
  return element;
}

/**
 * Create an element. props may hold: className, text (set as textContent), dataset (object),
 * attrs (object of attributes), on (object of event listeners). Children are appended as nodes,
 * strings become text nodes.
 */
export function h(tag, props = {}, ...children) {
  const element = document.createElement(tag);
  const { className, text, dataset, attrs, on } = props;
  if (className) element.className = className;
  if (text !== undefined) element.textContent = String(text);
  if (dataset) Object.assign(element.dataset, dataset);
  for (const [name, value] of Object.entries(attrs ?? {})) {
    if (value !== undefined && value !== null && value !== false) {
      element.setAttribute(name, value === true ? '' : String(value));
    }
  }
  for (const [type, listener] of Object.entries(on ?? {})) {
    element.addEventListener(type, listener);
  }
  element.append(...children.filter((child) => child !== null && child !== undefined));
  return element;
}

/** Two digits with a leading zero. */
function pad2(number) {
  return String(number).padStart(2, '0');
}

/** Format a millisecond timestamp as local HH:MM (or HH:MM:SS). */
export function formatClock(ms, withSeconds = false) {
  const date = new Date(ms);
  const hhmm = `${pad2(date.getHours())}:${pad2(date.getMinutes())}`;
  return withSeconds ? `${hhmm}:${pad2(date.getSeconds())}` : hhmm;
}

/** Whether a scrollable element is scrolled (nearly) to its end. */
export function isNearBottom(element) {
  return element.scrollHeight - element.scrollTop - element.clientHeight < NEAR_BOTTOM_PX;
}

/** Scroll an element to its end. */
export function scrollToBottom(element) {
  element.scrollTop = element.scrollHeight;
}

/** A stable hue (0..359) for a nick, so each person keeps one colour. */
export function nickHue(nick) {
  let hash = 7;
  for (const char of String(nick)) {
    hash = (hash * 31 + char.codePointAt(0)) >>> 0;
  }
  return hash % 360;
}

/** A span showing a nick in its own colour. */
export function nickBadge(nick, props = {}) {
  const badge = h('span', { className: 'nick', text: nick, ...props });
  badge.style.setProperty('--nick-hue', String(nickHue(nick)));
  return badge;
}
