"""The page as a person meets it, in headless Chromium against the real server (run.py): drafts,
the ticker chart, presence, who may close a room, a phone's width, toasts, the ticker's state,
shouts across a reload, and keyboard and screen-reader use (checked with axe-core).

Screenshots at 1280x800 and 390x844 are kept under test-output/<test name>/.
"""
import json
import re
import time
from pathlib import Path

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.browser

WIDE = {'width': 1280, 'height': 800}
PHONE = {'width': 390, 'height': 844}
AXE = Path(__file__).resolve().parents[2] / 'client' / 'node_modules' / 'axe-core' / 'axe.min.js'


def click_close_room(page):
    """Close the active room: the button asks for a second click."""
    button = page.by('close-room')
    button.click()
    expect(button).to_have_attribute('data-state', 'confirm')
    button.click()


def member(page, nick):
    return page.by('member-list').locator(f'[data-testid="member"][data-nick="{nick}"]')


def open_dm(page, nick):
    page.by('dm-input').fill(nick)
    page.by('dm-input').press('Enter')
    expect(page.by('active-room')).to_have_text(f'@ {nick}')


def axe_violations(page):
    """The serious and critical accessibility violations axe-core finds in the page as it is.

    axe comes from client/node_modules (pinned in client/package.json), evaluated into the page
    by the test: the page itself never loads it.
    """
    # Colours are judged as they end up, not halfway through a fade-in.
    page.wait_for_function('''() => document.getAnimations()
        .every((a) => a.effect?.getTiming().iterations === Infinity)''')
    if not page.evaluate('() => Boolean(window.axe)'):
        page.evaluate(AXE.read_text())
    results = page.evaluate('''() => axe.run(document, {
        runOnly: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice'],
    }).then((r) => r.violations.map((v) => ({
        id: v.id, impact: v.impact, help: v.help,
        nodes: v.nodes.map((n) => n.target.join(' ')).slice(0, 5),
    })))''')
    return [v for v in results if v['impact'] in ('serious', 'critical')]


def boxes_overlap(a, b):
    return not (a['x'] + a['width'] <= b['x'] or b['x'] + b['width'] <= a['x']
                or a['y'] + a['height'] <= b['y'] or b['y'] + b['height'] <= a['y'])


# ---- Drafts ------------------------------------------------------------------------------


def test_each_conversation_keeps_its_own_draft_and_a_refused_dm_goes_back_to_its_own(
        open_page, output_dir):
    ana, bob = open_page(), open_page()
    ana.allow(r'socket\.io/')  # her reconnection attempts fail while she is offline
    bob_nick = bob.nick()
    for person in (ana, bob):
        person.join('lobby')
    expect(ana.member_nicks()).to_have_count(2)

    # Typed in a direct conversation, switched to the room: the room's box is empty, and Enter
    # there posts nothing to the room.
    member(ana, bob_nick).get_by_test_id('member-open').click()
    ana.by('message-input').fill('for Bob only')
    ana.room_item('lobby').get_by_test_id('room-select').click()
    expect(ana.by('message-input')).to_have_value('')
    ana.by('message-input').press('Enter')
    ana.by('message-input').fill('lobby draft')
    ana.dm_item(bob_nick).get_by_test_id('dm-select').click()
    expect(ana.by('message-input')).to_have_value('for Bob only')
    ana.room_item('lobby').get_by_test_id('room-select').click()
    expect(ana.by('message-input')).to_have_value('lobby draft')
    expect(bob.messages()).to_have_count(0)

    # A direct message that waits for the connection, and is refused once it is back, goes
    # back to its own conversation's draft, not into the box shown meanwhile.
    ana.page.context.set_offline(True)
    expect(ana.by('chat-status')).not_to_have_attribute('data-state', 'connected')
    open_dm(ana, 'nobody-here')
    ana.send('hello, nobody')
    expect(ana.active_log().get_by_test_id('pending-message')).to_have_count(1)
    ana.room_item('lobby').get_by_test_id('room-select').click()
    expect(ana.by('message-input')).to_have_value('lobby draft')
    ana.page.context.set_offline(False)
    expect(ana.by('error-line')).to_contain_text('Message to nobody-here not sent', timeout=15_000)
    expect(ana.by('message-input')).to_have_value('lobby draft')
    ana.screenshot(output_dir / 'ana-lobby-1280.png')
    ana.dm_item('nobody-here').get_by_test_id('dm-select').click()
    expect(ana.by('message-input')).to_have_value('hello, nobody')

    # The drafts outlive a reload of the tab.
    ana.room_item('lobby').get_by_test_id('room-select').click()
    ana.reload(ana.nick())
    expect(ana.by('active-room')).to_have_text('# lobby')
    expect(ana.by('message-input')).to_have_value('lobby draft')
    member(ana, bob_nick).get_by_test_id('member-open').click()
    expect(ana.by('message-input')).to_have_value('for Bob only')
    expect(bob.messages()).to_have_count(0)


# ---- The ticker chart --------------------------------------------------------------------


@pytest.mark.parametrize('server_env', [{'PUSH_INTERVAL': '0.2'}], ids=['tick-200ms'])
def test_the_chart_breaks_the_line_where_values_are_missing_and_shows_a_window_of_time(
        open_page, output_dir):
    page = open_page()
    chart = page.by('ticker-chart')
    page.wait_for_seq_above(page.seq() + 4)
    # Sixty values' worth of time (12 s), however few values there are yet.
    expect(chart).to_have_attribute('data-window', '12.000')
    expect(chart).to_have_attribute('data-gaps', '0')

    page.by('ticker-toggle').click()
    expect(page.by('ticker-toggle')).to_have_text('Resume')
    paused_at = page.seq()
    time.sleep(1.5)  # the server goes on ticking; this page misses those values
    page.by('ticker-toggle').click()
    page.wait_for_seq_above(paused_at + 10)
    expect(chart).to_have_attribute('data-gaps', '1')
    expect(chart).to_have_attribute('data-window', '12.000')
    page.screenshot(output_dir / 'chart-gap-1280.png')


# ---- Presence ----------------------------------------------------------------------------


def test_a_direct_conversation_shows_whether_its_person_is_online(open_page, output_dir):
    ana, bob = open_page(), open_page()
    bob_nick = bob.nick()

    open_dm(ana, 'nobody-here')
    nobody = member(ana, 'nobody-here')
    expect(nobody).to_have_attribute('data-presence', 'offline')
    expect(nobody.get_by_test_id('member-presence')).to_have_text('offline')
    expect(ana.dm_item('nobody-here')).to_have_attribute('data-presence', 'offline')
    ana.screenshot(output_dir / 'ana-offline-1280.png')

    open_dm(ana, bob_nick)
    expect(member(ana, bob_nick)).to_have_attribute('data-presence', 'online')
    expect(member(ana, bob_nick).get_by_test_id('member-presence')).to_have_count(0)

    # Bob goes (past the reconnect grace): coming back to his conversation says so.
    bob.page.close()
    ana.dm_item('nobody-here').get_by_test_id('dm-select').click()
    time.sleep(1.5)  # RECONNECT_GRACE is 0.5 s
    ana.dm_item(bob_nick).get_by_test_id('dm-select').click()
    expect(member(ana, bob_nick)).to_have_attribute('data-presence', 'offline')


# ---- Close room --------------------------------------------------------------------------


def test_close_room_is_offered_only_to_the_owner_and_moves_when_the_owner_leaves(open_page,
                                                                                 output_dir):
    ana, bob = open_page(), open_page()
    ana.join('attic')
    bob.join('attic')
    expect(bob.member_nicks()).to_have_count(2)
    expect(ana.by('close-room')).to_be_visible()
    expect(bob.by('close-room')).to_be_hidden()
    bob.screenshot(output_dir / 'bob-not-owner-1280.png')

    ana.room_item('attic').get_by_test_id('room-leave').click()
    expect(bob.member_nicks()).to_have_count(1)
    expect(bob.by('close-room')).to_be_visible()
    click_close_room(bob)
    expect(bob.room_item('attic')).to_have_count(0)


# ---- A phone's width ---------------------------------------------------------------------


# Fifteen lines typed in a second, each with its typing flag on and off: faster than anyone
# types, and over the default rate limit, which is not what this test is about.
@pytest.mark.parametrize('server_env', [{'RATE_LIMIT_PER_SECOND': '500',
                                         'RATE_LIMIT_BURST': '500'}], ids=['fast-typist'])
def test_on_a_phone_the_send_box_is_right_under_the_messages(open_page, output_dir):
    ana = open_page(viewport=PHONE)
    bob = open_page()
    ana.join('lobby')
    bob.join('lobby')
    for n in range(1, 16):
        bob.send(f'line {n}')
    expect(ana.message('line 15')).to_have_count(1)

    ana.by('message-input').click()
    ana.by('message-input').press_sequentially('typing on a phone', delay=5)
    log_box = ana.active_log().bounding_box()
    compose_box = ana.by('message-form').bounding_box()
    members_box = ana.by('member-list').bounding_box()
    log_bottom = log_box['y'] + log_box['height']
    assert 0 <= compose_box['y'] - log_bottom <= 48, (log_box, compose_box)
    assert members_box['y'] >= compose_box['y'] + compose_box['height'], members_box
    expect(ana.message('line 15')).to_be_in_viewport()
    expect(ana.by('message-input')).to_be_in_viewport()
    ana.page.screenshot(path=str(output_dir / 'ana-typing-390.png'))
    ana.screenshot(output_dir / 'ana-page-390.png')


# ---- Toasts ------------------------------------------------------------------------------


def test_information_fades_errors_stay_and_neither_covers_the_chat(open_page, output_dir):
    page = open_page(viewport=WIDE)
    toast = page.page.locator('.toast')
    chat = page.page.locator('.panel.chat')

    page.join('attic')
    click_close_room(page)
    expect(page.by('error-line')).to_have_text('You closed #attic.')
    expect(toast).to_have_attribute('data-tone', 'info')
    assert not boxes_overlap(toast.bounding_box(), chat.bounding_box())
    expect(toast).to_have_attribute('data-state', 'hidden', timeout=8_000)

    # A long error: the toast stays in the side column's width, clear of the chat.
    open_dm(page, 'nobody-here')
    page.send('is anyone there?')
    expect(page.by('error-line')).to_have_text(
        'Message to nobody-here not sent: nobody is connected as "nobody-here"')
    expect(toast).to_have_attribute('data-tone', 'error')
    assert not boxes_overlap(toast.bounding_box(), chat.bounding_box())
    page.screenshot(output_dir / 'error-1280.png')
    # Information that comes meanwhile does not take the error's place.
    page.join('attic-2')
    click_close_room(page)
    time.sleep(1)  # its acknowledgement, and the information it would show, come in ms
    expect(page.by('error-line')).to_have_text(
        'Message to nobody-here not sent: nobody is connected as "nobody-here"')
    time.sleep(10)  # longer than any message used to stay
    expect(toast).to_have_attribute('data-state', 'shown')
    page.page.get_by_role('button', name='Dismiss the message').click()
    expect(toast).to_have_attribute('data-state', 'hidden')


# ---- The ticker's state and shouts --------------------------------------------------------


@pytest.mark.parametrize('server_env', [{'PUSH_INTERVAL': '2'}], ids=['tick-2s'])
def test_live_is_said_once_a_value_has_arrived(open_page):
    page = open_page()
    state = page.by('ticker-state')
    expect(state).to_have_text('Waiting for the next value (one every 2 s)…')
    expect(page.by('ticker-value')).to_have_text('–')
    expect(state).to_have_text('Live: a new value every 2 s.', timeout=6_000)
    expect(page.by('ticker-value')).not_to_have_text('–')


def test_shouts_survive_a_reload(open_page, output_dir):
    ana, bob = open_page(), open_page()
    ana.by('broadcast-input').fill('hello, everyone')
    ana.by('broadcast-input').press('Enter')
    for person in (ana, bob):
        expect(person.by('broadcast-item')).to_have_count(1)
    bob.reload(bob.nick())
    item = bob.by('broadcast-item')
    expect(item).to_have_count(1)
    expect(item).to_contain_text('hello, everyone')
    expect(item).to_contain_text(ana.nick())
    bob.screenshot(output_dir / 'bob-reloaded-1280.png')


# ---- Keyboard and screen readers ----------------------------------------------------------


CONTROLS = ['nick-edit', 'room-input', 'join-button', 'dm-input', 'dm-open', 'room-select',
            'room-leave', 'dm-select', 'dm-close', 'close-room', 'message-input', 'member-open',
            'ticker-toggle', 'broadcast-input', 'broadcast-button']


def tab_through(page, presses=60):
    """Press Tab until focus comes round again; return what took focus, in order, with
    whether its focus could be seen (an outline or a ring)."""
    reached = []
    for _ in range(presses):
        page.page.keyboard.press('Tab')
        focused = page.page.evaluate('''() => {
            const el = document.activeElement;
            if (!el || el === document.body) return null;
            const css = getComputedStyle(el);
            const visible = (css.outlineStyle !== 'none' && parseFloat(css.outlineWidth) > 0)
                || css.boxShadow !== 'none';
            return { testid: el.dataset.testid ?? el.id ?? el.tagName, visible };
        }''')
        if focused is None:
            continue
        if reached and focused == reached[0] and len(reached) > 5:
            break
        reached.append(focused)
    return reached


@pytest.mark.parametrize('viewport', [WIDE, PHONE], ids=['1280x800', '390x844'])
def test_every_control_is_reachable_labelled_and_has_no_serious_axe_violation(
        open_page, output_dir, viewport):
    ana = open_page(viewport=viewport)
    bob = open_page()
    bob.set_nick('Wren')  # a yellow-green nick: the hardest colour to read on a light page
    expect(bob.by('my-nick')).to_have_text('Wren')
    ana.join('lobby')
    bob.join('lobby')
    bob.send('hello')
    expect(ana.message('hello')).to_have_count(1)
    member(ana, 'Wren').get_by_test_id('member-open').click()
    ana.room_item('lobby').get_by_test_id('room-select').click()

    log = ana.active_log()
    expect(log).to_have_attribute('role', 'log')
    expect(log).to_have_attribute('aria-live', 'polite')

    violations = axe_violations(ana.page)
    name = f'{viewport["width"]}x{viewport["height"]}'
    (output_dir / f'axe-{name}.json').write_text(json.dumps(violations, indent=2))
    assert violations == [], json.dumps(violations, indent=2)

    ana.page.locator('body').focus()
    reached = tab_through(ana)
    testids = [item['testid'] for item in reached]
    assert set(CONTROLS) <= set(testids), sorted(set(CONTROLS) - set(testids))
    unseen = [item['testid'] for item in reached if not item['visible']]
    assert unseen == [], f'focus not visible on {unseen}'
    ana.screenshot(output_dir / f'ana-{name}.png')

    # With a toast shown (an error), the page is as accessible.
    ana.by('join-button').click()
    expect(ana.by('error-line')).to_have_text(re.compile('Type the name'))
    assert axe_violations(ana.page) == []
