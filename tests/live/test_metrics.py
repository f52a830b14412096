"""/metrics of the real run.py: a real client's connection and events are counted there, and
an address METRICS_ALLOW does not name is told there is no such page."""
import time

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from tests.support.addresses import session_from
from tests.support.sio_client import RecordingClient

pytestmark = pytest.mark.live


def scrape(url):
    response = requests.get(f'{url}/metrics', timeout=5)
    assert response.status_code == 200
    assert response.headers['Content-Type'].startswith('text/plain; version=0.0.4')
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(response.text)
            for sample in family.samples}


def value(samples, name, **labels):
    return samples.get((name, tuple(sorted(labels.items()))))


def test_a_live_server_counts_a_real_clients_connection_and_events(live_server):
    url = live_server.url
    with RecordingClient(url, ['/chat', '/test_conn']) as client:
        client.wait_for('my_response')
        assert client.call('my_event', {'data': 'counted'}) == {'ok': True}
        assert client.call('join', {'room': 'lobby'})['ok'] is True
        assert client.call('room_message', {'room': 'lobby', 'text': 'stored'})['ok'] is True
        client.wait_for('server_response', namespace='/test_conn')  # a tick (every 0.2 s)
        live = scrape(url)
    assert value(live, 'relay_connected_clients', namespace='/chat') == 1
    assert value(live, 'relay_connected_clients', namespace='/test_conn') == 1
    assert value(live, 'relay_events_received_total', namespace='/chat', event='my_event') == 1
    assert value(live, 'relay_events_emitted_total', event='chat_message') == 1
    assert value(live, 'relay_deliveries_total', event='my_response') == 2  # greeting, echo
    assert value(live, 'relay_store_seconds_count', operation='append') == 1
    assert value(live, 'relay_ticker_ticks_total') >= 1
    assert value(live, 'relay_ticker_lag_seconds_count') >= 1
    assert value(live, 'process_resident_memory_bytes') > 0

    deadline = time.monotonic() + 5
    while value(after := scrape(url), 'relay_connected_clients', namespace='/chat') != 0:
        assert time.monotonic() < deadline, 'the closed client is still counted'
        time.sleep(0.05)
    # "client disconnect", or "transport close" when the socket closed first.
    gone = {labels: count for (name, labels), count in after.items()
            if name == 'relay_disconnects_total' and ('namespace', '/chat') in labels and count}
    assert sum(gone.values()) == 1, gone

    # The server listens on 127.0.0.1; a client from another loopback address is not in the
    # default METRICS_ALLOW.
    with session_from('127.0.0.2') as elsewhere:
        refused = elsewhere.get(f'{url}/metrics', timeout=5)
        assert refused.status_code == 404 and 'relay_' not in refused.text
        assert elsewhere.get(f'{url}/healthz', timeout=5).status_code == 200
