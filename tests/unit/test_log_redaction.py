"""Engine.IO sids never reach the log, and a request for a gone session is not an error."""
import logging

import pytest

from server.log_redaction import keep_sids_out_of_logs

SID = 'sMee5zBaSQhSzK2SAAAA'


@pytest.fixture
def engineio_log(caplog):
    logger = logging.getLogger('tests.engineio-like')
    keep_sids_out_of_logs(logger)
    yield logger, caplog
    logger.filters.clear()


def test_a_sid_in_a_message_or_its_arguments_is_redacted(engineio_log):
    logger, caplog = engineio_log
    with caplog.at_level(logging.INFO, logger.name):
        logger.info('%s: Client is gone, closing socket', SID)
        logger.error(f'Unexpected HTTP request for session {SID}')
    assert [r.getMessage() for r in caplog.records] == [
        '<sid>: Client is gone, closing socket', 'Unexpected HTTP request for session <sid>']
    assert SID not in caplog.text


@pytest.mark.parametrize('message', [f'Invalid session {SID}',
                                     f"'Session is disconnected' {SID} (further occurrences)"])
def test_a_request_for_a_gone_session_is_debug_not_error(engineio_log, message):
    logger, caplog = engineio_log
    with caplog.at_level(logging.INFO, logger.name):
        logger.error(message)
    assert caplog.records == []
    with caplog.at_level(logging.DEBUG, logger.name):
        logger.error(message)
    assert [(r.levelname, SID in r.getMessage()) for r in caplog.records] == [('DEBUG', False)]


def test_other_errors_keep_their_level_and_words_of_other_lengths_stay(engineio_log):
    logger, caplog = engineio_log
    with caplog.at_level(logging.INFO, logger.name):
        logger.error('post request handler error for a_nineteen_char_wor and '
                     'a_twenty_one_chars_wrd')
    assert [(r.levelname, r.getMessage()) for r in caplog.records] == [
        ('ERROR', 'post request handler error for a_nineteen_char_wor and a_twenty_one_chars_wrd')]


def test_setting_it_twice_sets_it_once():
    logger = logging.getLogger('tests.engineio-twice')
    keep_sids_out_of_logs(logger, logger)
    keep_sids_out_of_logs(logger)
    assert len(logger.filters) == 1
    logger.filters.clear()
