"""The page on a server with AUTH_REQUIRED, in headless Chromium: opened as /#token=<sign-in
token> it signs in on both namespaces as that user, takes the token out of the address bar (a
fragment: never in a request) and keeps it for a reload; without a token it says a sign-in is
needed instead of trying again and again.
"""
import pytest
from playwright.sync_api import expect

from config import DEVELOPMENT_SECRET
from server.auth import UserTokens
from tests.browser.conftest import TIMEOUT_MS, ChatPage

pytestmark = pytest.mark.browser


@pytest.fixture
def server_env():
    return {'AUTH_REQUIRED': '1'}


@pytest.fixture
def new_page(browser, live_server):
    """Return new_page(): a page in a fresh context, not loaded; none may report a problem."""
    contexts, pages = [], []

    def new_page_():
        context = browser.new_context(viewport={'width': 1280, 'height': 820})
        context.set_default_timeout(TIMEOUT_MS)
        contexts.append(context)
        pages.append(ChatPage(context.new_page(), live_server.url))
        return pages[-1]

    yield new_page_
    for page in pages:
        page.recording = False
    for context in contexts:
        context.close()
    problems = [problem for page in pages for problem in page.problems]
    assert not problems, 'the page reported problems:\n' + '\n'.join(problems)


def test_the_page_signs_in_with_the_token_of_its_address(new_page, live_server, output_dir):
    token = UserTokens(DEVELOPMENT_SECRET, 86400, 32).issue('Ana')
    page = new_page()
    page.allow(r'socket\.io/')  # the reload cuts the connection
    page.page.goto(f'{live_server.url}/#token={token}')
    page.wait_ready('Ana')
    assert page.page.url == live_server.url + '/'
    page.join('lobby')
    expect(page.member_nicks()).to_have_text(['Ana'])

    page.set_nick('Bob')
    expect(page.by('error-line')).to_contain_text('your nick is your user name, "Ana"')
    page.by('nick-cancel').click()

    page.reload(nick='Ana')  # the token is kept with the tab's state
    expect(page.by('active-room')).to_have_text('# lobby')
    page.screenshot(output_dir / 'signed-in.png')
    assert not [url for url in page.requests if token in url]
    assert token not in live_server.output()


def test_without_a_sign_in_token_the_page_says_one_is_needed(new_page, live_server, output_dir):
    page = new_page()
    page.page.goto(live_server.url + '/')
    for status in ('chat-status', 'ticker-status'):
        expect(page.by(status)).to_have_attribute('data-state', 'denied')
        expect(page.by(status)).to_contain_text('sign-in needed')
    expect(page.by('error-line')).to_have_text(
        'Sign-in needed: this server admits signed-in users only; open it with the sign-in '
        'link you were given.')
    page.screenshot(output_dir / 'sign-in-needed.png')
    page.page.wait_for_timeout(1000)  # and it does not try again meanwhile
    assert live_server.output().count(': auth_required') == 2
    expect(page.by('chat-status')).to_have_attribute('data-state', 'denied')
