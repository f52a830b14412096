// The toast: a line at the bottom of the page that says what went wrong, or, in the "info"
// tone, what happened that the person should know about. Information fades by itself; an error
// stays until it is dismissed (its close button, or Escape) or a newer error replaces it:
// information that comes meanwhile is not shown over it.

const INFO_HIDE_AFTER_MS = 4000;

/**
 * Wire the toast and return notify(message, tone = 'error'): shows the message (replacing any
 * previous one, except that information never replaces an error). tone is 'error' or 'info'
 * and sets the toast's data-tone.
 */
export function createNotifier(toast) {
  const text = toast.querySelector('[data-testid="error-line"]');
  const closeButton = toast.querySelector('.toast-close');
  let hideTimer = null;

  const hide = () => {
    clearTimeout(hideTimer);
    toast.dataset.state = 'hidden';
    text.textContent = '';
  };

  const notify = (message, tone = 'error') => {
    const errorShown = toast.dataset.state === 'shown' && toast.dataset.tone === 'error';
    if (tone === 'info' && errorShown) return;
    clearTimeout(hideTimer);
    text.textContent = String(message);
    toast.dataset.tone = tone === 'info' ? 'info' : 'error';
    toast.dataset.state = 'shown';
    if (tone === 'info') hideTimer = setTimeout(hide, INFO_HIDE_AFTER_MS);
  };

  closeButton.addEventListener('click', hide);
  document.addEventListener('keydown', (event) => {
    if (event.key === 'Escape' && toast.dataset.state === 'shown') hide();
  });

  return notify;
}

/** "What failed: why", keeping the server's own message word for word. */
export function failure(what, error) {
  const why = error?.message ?? error?.error?.message ?? 'something went wrong';
  return `${what}: ${why}`;
}
