"""A Node script from tests/js/ in its own process, speaking JSON lines on stdout."""
import json
import queue
import shutil
import subprocess
import threading
import time


class NodeScript:
    """Runs ``node script args...``; its JSON lines are read as they come. Closing its stdin
    tells it to end."""

    def __init__(self, script, *args):
        node = shutil.which('node')
        assert node, 'Node.js is required: the README quick start installs it'
        self.process = subprocess.Popen([node, str(script), *map(str, args)],
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.lines = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.process.stdout:
            self.lines.put(json.loads(line))
        self.process.stdout.close()

    def next_line(self, deadline):
        """Return the next line, or None if none comes before ``deadline`` (monotonic)."""
        try:
            return self.lines.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            return None

    def tell(self, line):
        """Write a line to the script's stdin."""
        self.process.stdin.write(f'{line}\n')
        self.process.stdin.flush()

    def close(self):
        """Close its stdin and wait for it to end (killed after 5 s)."""
        self.process.stdin.close()
        try:
            self.process.wait(5)
        finally:
            self.process.kill()
