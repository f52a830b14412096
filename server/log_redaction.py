"""Keep Engine.IO session ids out of the log.

An Engine.IO sid is a credential: whoever holds it can poll and post as that connection. The
engineio and socketio loggers put sids into their messages ("Invalid session <sid>",
"'Session is disconnected' <sid>"), so this filter, set on both loggers, replaces each with
``<sid>``. A request for a session that is gone (a long-poll that raced its own close, every
polling client's first request after a restart, or a guess) is a client's affair, not a fault of
the server: it is logged at DEBUG, not at ERROR, and so cannot fill the log at the default level.
"""
import logging
import re

SID = re.compile(r'(?<![A-Za-z0-9_-])[A-Za-z0-9_-]{20}(?![A-Za-z0-9_-])')
REDACTED = '<sid>'
SESSION_GONE = ('Invalid session', "'Session is disconnected'", 'Session is disconnected')


class SidRedaction(logging.Filter):
    """Rewrites a record's message with every sid redacted; moves "session gone" to DEBUG."""

    def filter(self, record):
        message = SID.sub(REDACTED, record.getMessage())
        record.msg, record.args = message, ()
        if message.startswith(SESSION_GONE) and record.levelno > logging.DEBUG:
            record.levelno, record.levelname = logging.DEBUG, 'DEBUG'
            return logging.getLogger(record.name).isEnabledFor(logging.DEBUG)
        return True


REDACTION = SidRedaction()


def keep_sids_out_of_logs(*loggers):
    """Set the redaction on each of ``loggers``, once however many apps are built."""
    for logger in loggers:
        if REDACTION not in logger.filters:
            logger.addFilter(REDACTION)
