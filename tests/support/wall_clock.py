"""A wall clock a test can move for a child process, with libfaketime (Debian's faketime).

The process is started with ``WallClock.env()`` in its environment: libfaketime, preloaded,
reads the offset from a file at every call, and leaves the monotonic clock alone, so only the
wall clock (time.time(), datetime.now()) moves when the test calls ``set``.
"""
import glob
import os

LIBRARY_PATTERN = '/usr/lib/*/faketime/libfaketime.so.1'


def libfaketime():
    """Return the path of libfaketime.so.1; fail with what to install if it is missing."""
    found = sorted(glob.glob(LIBRARY_PATTERN))
    assert found, 'libfaketime is required: apt-get install faketime (.ci/run installs it)'
    return found[0]


class WallClock:
    """The wall clock of processes started with ``env()``, kept in the file ``path``."""

    def __init__(self, path):
        self.path = path
        self.set('+0')

    def env(self):
        """The environment variables that put a process on this clock."""
        return {
            'LD_PRELOAD': libfaketime(),
            'FAKETIME_TIMESTAMP_FILE': str(self.path),
            'FAKETIME_NO_CACHE': '1',  # read the file at every call, so a jump is seen at once
            'FAKETIME_DONT_FAKE_MONOTONIC': '1',
        }

    def set(self, offset):
        """Move the clock to ``offset`` from the real time, e.g. '+1d' or '-1h'."""
        # Replaced whole, so that the process never reads a half-written file.
        staged = self.path.with_name(self.path.name + '.new')
        staged.write_text(f'{offset}\n')
        os.replace(staged, self.path)
