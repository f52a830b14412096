"""Runs the official socket.io-client (from client/node_modules) under Node against run.py."""
import os
import shutil
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.live
CONTRACT = Path(__file__).with_name('contract.test.mjs')


def test_the_javascript_client_passes_the_contract(live_server, output_dir):
    node = shutil.which('node')
    assert node, 'Node.js is required: the README quick start installs it'
    result = subprocess.run(
        [node, '--test', '--test-reporter=tap', str(CONTRACT)],
        env={**os.environ, 'SERVER_URL': live_server.url}, capture_output=True, text=True,
        timeout=90, stdin=subprocess.DEVNULL,
    )
    (output_dir / 'node-test.log').write_text(result.stdout + result.stderr)
    assert result.returncode == 0, result.stdout + result.stderr
    assert '# fail 0' in result.stdout and '# pass 14' in result.stdout, result.stdout
