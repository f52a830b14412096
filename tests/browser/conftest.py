"""Fixtures for the browser tests: one headless Chromium per module, a fresh context per page.

Every page opened through ``open_page`` records what it requests and every console error or
uncaught exception; after the test, any of those problems fails it.

The server is the shared ``live_server`` (run.py with a 0.2 s ticker); a test that needs other
settings parametrizes ``server_env`` with the extra environment variables.
"""
import re

import pytest
from playwright.sync_api import expect, sync_playwright

from tests.support.live_server import LiveServer

CHROMIUM = '/usr/bin/chromium'
CHROMIUM_ARGS = [
    '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync',
]
TIMEOUT_MS = 5_000
NICK = re.compile(r'^guest-[0-9a-f]{6}$')

expect.set_options(timeout=TIMEOUT_MS)


class ChatPage:
    """One browser page on the client, with the few actions the tests need."""

    def __init__(self, page, base_url):
        self.page = page
        self.base_url = base_url
        self.requests = []
        self.websockets = []
        self.problems = []
        self.allowed = []
        self.recording = True
        page.on('request', self._on_request)
        page.on('websocket', lambda socket: self.websockets.append(socket.url))
        page.on('console', self._on_console)
        page.on('pageerror', lambda error: self._problem(f'page error: {error}'))
        page.on('requestfailed', self._on_request_failed)
        page.on('response', self._on_response)

    # -- recording -------------------------------------------------------------------------

    def allow(self, pattern):
        """Accept console messages and request failures matching ``pattern`` (a regex)."""
        self.allowed.append(re.compile(pattern))

    def _problem(self, text):
        if self.recording and not any(pattern.search(text) for pattern in self.allowed):
            self.problems.append(text)

    def _on_request(self, request):
        self.requests.append(request.url)

    def _on_console(self, message):
        if message.type == 'error':
            self._problem(f'console error: {message.text} ({message.location})')

    def _on_request_failed(self, request):
        self._problem(f'request failed: {request.url} {request.failure}')

    def _on_response(self, response):
        if response.status >= 400:
            self._problem(f'HTTP {response.status}: {response.url}')

    # -- the page --------------------------------------------------------------------------

    def by(self, test_id):
        return self.page.get_by_test_id(test_id)

    def open(self):
        """Load the page and wait until both sockets are connected and the nick is shown."""
        self.page.goto(self.base_url + '/')
        return self.wait_ready()

    def reload(self, nick=NICK):
        """Reload the page and wait until it is connected again, showing ``nick``."""
        self.page.reload()
        return self.wait_ready(nick)

    def wait_ready(self, nick=NICK):
        expect(self.by('chat-status')).to_have_attribute('data-state', 'connected')
        expect(self.by('ticker-status')).to_have_attribute('data-state', 'connected')
        expect(self.by('my-nick')).to_have_text(nick)
        return self

    def nick(self):
        return self.by('my-nick').text_content()

    def set_nick(self, nick):
        """Change the nick through the nick form (it stays open if the server refuses)."""
        self.by('nick-edit').click()
        self.by('nick-input').fill(nick)
        self.by('nick-input').press('Enter')

    def join(self, room):
        """Join a room through the form and wait until it is the active room."""
        self.by('room-input').fill(room)
        self.by('room-input').press('Enter')
        expect(self.room_item(room)).to_be_visible()
        expect(self.by('active-room')).to_have_text(f'# {room}')

    def room_item(self, room):
        return self.by('room-list').locator('[data-testid="room-item"]').filter(
            has=self.page.locator('.room-name').get_by_text(room, exact=True))

    def send(self, text):
        """Type a message and press Enter, as a person would."""
        self.by('message-input').fill(text)
        self.by('message-input').press('Enter')

    def dm_item(self, nick):
        """The tab of the direct conversation with ``nick``."""
        return self.by('dm-list').locator(f'[data-testid="dm-item"][data-nick="{nick}"]')

    def active_log(self):
        """The log of the conversation shown."""
        return self.page.locator('.room-log:not([hidden])')

    def messages(self):
        """The chat messages of the active room."""
        return self.active_log().get_by_test_id('chat-message')

    def message_texts(self):
        return self.messages().get_by_test_id('message-text')

    def message_ids(self):
        """The ids of the messages shown in the active conversation, in page order."""
        return [int(value) for value in self.messages().evaluate_all(
            'lines => lines.map(line => line.dataset.id)')]

    def message(self, text):
        """The one chat message of the active room whose text is exactly ``text``."""
        return self.messages().filter(
            has=self.page.get_by_test_id('message-text').get_by_text(text, exact=True))

    def member_nicks(self):
        return self.by('member-list').get_by_test_id('member-nick')

    def seq(self):
        """The ticker's seq as shown, once it shows one."""
        expect(self.by('ticker-seq')).to_have_text(re.compile(r'^\d+$'))
        return int(self.by('ticker-seq').text_content())

    def wait_for_seq_above(self, seq, timeout=TIMEOUT_MS):
        """Wait until the ticker shows a seq greater than ``seq``."""
        self.page.wait_for_function(
            'n => Number(document.querySelector(\'[data-testid="ticker-seq"]\').textContent) > n',
            arg=seq, timeout=timeout)

    def screenshot(self, path):
        self.page.screenshot(path=str(path), full_page=True)


@pytest.fixture(scope='module')
def browser():
    """Headless Chromium, shared by the tests of a module."""
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def server_env():
    """Environment variables for ``live_server`` beyond its defaults; parametrize to change."""
    return {}


@pytest.fixture
def live_server(output_dir, server_env):
    """``run.py`` on a free port with a fast ticker, a short reconnect grace and ``server_env``;
    stopped after the test."""
    settings = {'PUSH_INTERVAL': '0.2', 'RECONNECT_GRACE': '0.5', **server_env}
    with LiveServer(output_dir / 'server.log', **settings) as server:
        yield server


@pytest.fixture
def open_page(browser, live_server):
    """Return open(setup=None): a new context and page on the live server, loaded and connected.

    ``setup(page)`` runs before the page loads (to add routes). ``beside=other`` opens the page
    as another tab of ``other``'s context (shared localStorage, its own sessionStorage). Afterwards
    every page must have logged no console error, thrown nothing and requested nothing from
    another host.
    """
    contexts = []
    pages = []

    def open_(setup=None, viewport=None, beside=None):
        if beside is None:
            context = browser.new_context(viewport=viewport or {'width': 1280, 'height': 820})
            context.set_default_timeout(TIMEOUT_MS)
            contexts.append(context)
        else:
            context = beside.page.context
        chat_page = ChatPage(context.new_page(), live_server.url)
        pages.append(chat_page)
        if setup:
            setup(chat_page.page)
        return chat_page.open()

    yield open_

    for chat_page in pages:
        chat_page.recording = False  # closing aborts the open long-poll requests
    for context in contexts:
        context.close()
    problems = [problem for chat_page in pages for problem in chat_page.problems]
    assert not problems, 'the page reported problems:\n' + '\n'.join(problems)
    foreign = [url for chat_page in pages for url in chat_page.requests
               if not is_same_origin(url, live_server.url)]
    assert not foreign, f'requests to another host: {foreign}'


def is_same_origin(url, base_url):
    """Whether ``url`` is on the live server (http or ws) or a local data:/blob: URL."""
    ws_base = 'ws' + base_url.removeprefix('http')
    return (url.startswith((base_url + '/', ws_base + '/'))
            or url.startswith(('data:', 'blob:')))
