"""What a newcomer reads first: one product name, a quick start of two commands that each stand
alone, where the history lives and what ``make clean`` does with it."""
import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / 'README.md').read_text()


def section(title):
    match = re.search(rf'^## {title}\n(.*?)(?=^## )', README, re.M | re.S)
    assert match, f'no "## {title}" section'
    return match.group(1)


def test_the_readme_and_the_page_use_one_name():
    page = (ROOT / 'client' / 'index.html').read_text()
    assert re.search(r'<title>Relay\b', page) and '>Relay</h1>' in page
    title, intro = README.splitlines()[0], README.split('\n## ', 1)[0]
    assert title.startswith('# Relay') and 'chat and push server' in title
    assert 'Relay is' in intro
    assert 'Chat and push server' not in README


def test_the_quick_start_has_two_commands_that_stand_alone_in_order():
    quick = section('Quick start')
    commands = re.findall(r'```sh\n(.*?)```', quick, re.S)
    assert len(commands) == 1
    lines = [line.split('#')[0].strip() for line in commands[0].strip().splitlines()]
    assert lines == ['make run', 'make test']
    assert 'either command works on its\nown' in quick and 'in this order' in quick


def test_the_readme_says_where_history_lives_and_how_to_reset_it():
    history = section('History')
    assert '`instance/chat.db`' in history and 'rm -rf instance' in history
    assert '`make clean`' in history


def test_make_clean_says_it_keeps_the_history():
    recipe = subprocess.run(['make', '-n', 'clean'], cwd=ROOT, capture_output=True, text=True,
                            timeout=20, check=True).stdout
    assert 'instance' not in recipe.split('echo', 1)[0]  # nothing removes it
    assert 'keeps the chat history in instance/chat.db' in recipe
