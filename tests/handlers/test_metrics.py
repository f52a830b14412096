"""Every metric family, driven through the test client and read from the app's own registry;
and /metrics itself, answered to the addresses METRICS_ALLOW names and to nobody else."""
import re

import engineio.packet
import engineio.socket
import pytest
from prometheus_client.parser import text_string_to_metric_families

from config import ConfigError, TestingConfig
from server import create_app, shutdown
from server.extensions import socketio
from server.namespaces.replies import GARBAGE_LIMIT, MAX_ATTACHMENTS
from tests.handlers.test_chat_namespace import NS, ask, connect, events
from tests.support.waiting import eventually

TICKER = '/test_conn'


@pytest.fixture
def make_app():
    """Build apps with config overrides; each is shut down after the test."""
    made = []

    def make(**overrides):
        made.append(create_app(TestingConfig, overrides))
        return made[-1]
    yield make
    for application in made:
        shutdown(application)


def sample(app, name, **labels):
    """The value of one sample in the app's registry; None if it does not exist."""
    return app.extensions['metrics'].registry.get_sample_value(name, labels)


def scrape(app, address='127.0.0.1', **headers):
    return app.test_client().get('/metrics', environ_base={'REMOTE_ADDR': address},
                                 headers=headers)


def test_connected_clients_are_counted_per_namespace(app):
    ana, bob = connect(app), connect(app)
    socketio.test_client(app, namespace=TICKER)
    assert sample(app, 'relay_connected_clients', namespace=NS) == 2
    assert sample(app, 'relay_connected_clients', namespace=TICKER) == 1
    ana.disconnect(namespace=NS)
    assert sample(app, 'relay_connected_clients', namespace=NS) == 1
    bob.disconnect(namespace=NS)
    assert sample(app, 'relay_connected_clients', namespace=NS) == 0


def test_events_in_are_counted_by_namespace_and_event_refused_ones_included(app):
    ana = connect(app)
    ticker = socketio.test_client(app, namespace=TICKER)
    ask(ana, 'my_event', {'data': 'one'})
    ask(ana, 'my_event', {'data': ''})  # refused, but it came in
    ask(ana, 'join', {'room': 'lobby'})
    ticker.emit('ticker_pause', namespace=TICKER, callback=True)
    assert sample(app, 'relay_events_received_total', namespace=NS, event='my_event') == 2
    assert sample(app, 'relay_events_received_total', namespace=NS, event='join') == 1
    assert sample(app, 'relay_events_received_total', namespace=NS, event='leave') == 0
    assert sample(app, 'relay_events_received_total', namespace=TICKER,
                  event='ticker_pause') == 1


def test_an_event_a_client_invents_is_counted_as_other_and_makes_no_label(app):
    ana = connect(app)
    for name in ('invented_1', 'invented_2', 'set_nick_'):
        assert ask(ana, name, {'data': 'x'})['error']['code'] == 'unknown_event'
    assert sample(app, 'relay_events_received_total', namespace=NS, event='other') == 3
    assert sample(app, 'relay_events_received_total', namespace=NS, event='invented_1') is None
    body = scrape(app).get_data(as_text=True)
    assert 'invented' not in body and 'set_nick_' not in body
    # Nor does a lifecycle name faked as an event count anywhere.
    ana.emit('disconnect', namespace=NS)
    assert sample(app, 'relay_events_received_total', namespace=NS, event='disconnect') is None


def test_an_emit_counts_once_and_its_deliveries_once_per_recipient(app):
    ana, bob, carl = connect(app), connect(app), connect(app)
    emitted = sample(app, 'relay_events_emitted_total', event='my_response')
    delivered = sample(app, 'relay_deliveries_total', event='my_response')
    assert emitted == delivered == 3  # the greetings, one client each
    ask(ana, 'my_broadcast_event', {'data': 'all'})
    assert sample(app, 'relay_events_emitted_total', event='my_response') == emitted + 1
    assert sample(app, 'relay_deliveries_total', event='my_response') == delivered + 3
    for client in (ana, bob):
        ask(client, 'join', {'room': 'lobby'})
    ask(ana, 'typing', {'room': 'lobby', 'typing': True})  # to the room but the typer
    assert sample(app, 'relay_events_emitted_total', event='typing') == 1
    assert sample(app, 'relay_deliveries_total', event='typing') == 1
    assert [e['nick'] for e in events(bob, 'typing')] == [ana.nick]
    assert events(carl, 'typing') == []


def test_refusals_are_counted_by_namespace_and_code(app, monkeypatch):
    ana = connect(app)
    ask(ana, 'my_event', {'data': ''})
    ask(ana, 'my_event', 'not an object')
    ask(ana, 'history', {'room': 'lobby'})
    ana.emit('my_event', {'data': ''}, namespace=NS)  # no ack: refused as an error event
    monkeypatch.setattr(app.extensions['chat'].store, 'append', lambda *args: 1 / 0)
    ask(ana, 'join', {'room': 'lobby'})
    ask(ana, 'room_message', {'room': 'lobby', 'text': 'fails'})
    assert sample(app, 'relay_refusals_total', namespace=NS, code='empty_message') == 2
    assert sample(app, 'relay_refusals_total', namespace=NS, code='bad_request') == 1
    assert sample(app, 'relay_refusals_total', namespace=NS, code='not_in_room') == 1
    assert sample(app, 'relay_refusals_total', namespace=NS, code='internal_error') == 1
    assert sample(app, 'relay_events_emitted_total', event='error') == 1


def test_rate_limit_hits_flood_disconnects_and_their_reason_are_counted(make_app):
    app = make_app(RATE_LIMIT_PER_SECOND=0.1, RATE_LIMIT_BURST=2, FLOOD_STRIKES=3)
    flooder = connect(app)
    ask(flooder, 'my_event', {'data': 'x'})  # the connect and this spent both tokens
    for _ in range(3):
        assert ask(flooder, 'my_event', {'data': 'x'})['error']['code'] == 'rate_limited'
    assert sample(app, 'relay_rate_limited_total', namespace=NS) == 3
    assert sample(app, 'relay_refusals_total', namespace=NS, code='rate_limited') == 3
    assert sample(app, 'relay_flood_disconnects_total', namespace=NS) == 0
    flooder.emit('my_event', {'data': 'x'}, namespace=NS)
    assert not flooder.is_connected(NS)
    assert sample(app, 'relay_flood_disconnects_total', namespace=NS) == 1
    assert sample(app, 'relay_disconnects_total', namespace=NS,
                  reason='server disconnect') == 1
    assert sample(app, 'relay_flood_disconnects_total', namespace=TICKER) == 0


def test_a_connect_over_the_rate_limit_counts_as_a_hit(make_app):
    app = make_app(RATE_LIMIT_PER_SECOND=0.1, RATE_LIMIT_BURST=1, FLOOD_STRIKES=100)
    client = socketio.test_client(app, namespace=NS)
    client.connect(namespace=TICKER)  # the same connection: its allowance is spent
    assert not client.is_connected(TICKER)
    assert sample(app, 'relay_rate_limited_total', namespace=TICKER) == 1


def test_disconnects_are_counted_by_namespace_and_reason(app):
    ana = connect(app)
    ticker = socketio.test_client(app, namespace=TICKER)
    ana.disconnect(namespace=NS)
    ticker.disconnect(namespace=TICKER)
    for namespace in (NS, TICKER):
        assert sample(app, 'relay_disconnects_total', namespace=namespace,
                      reason='client disconnect') == 1
        assert sample(app, 'relay_disconnects_total', namespace=namespace,
                      reason='ping timeout') == 0


def test_ticks_are_counted_and_each_runs_lag_is_observed(make_app):
    app = make_app(PUSH_INTERVAL=0.02)
    client = socketio.test_client(app, namespace=TICKER)  # starts the ticker task
    eventually(lambda: sample(app, 'relay_ticker_ticks_total') >= 3)
    assert sample(app, 'relay_ticker_lag_seconds_count') >= 3
    lag = sample(app, 'relay_ticker_lag_seconds_sum')
    assert 0 <= lag < sample(app, 'relay_ticker_lag_seconds_count') * 1.0
    assert len([e for e in client.get_received(TICKER) if e['name'] == 'server_response']) >= 3


def test_a_tick_driven_by_hand_counts_too(app):
    app.extensions['ticker'].tick()
    app.extensions['ticker'].tick()
    assert sample(app, 'relay_ticker_ticks_total') == 2


def test_store_calls_are_timed_by_operation(app):
    ana = connect(app)
    ask(ana, 'join', {'room': 'lobby'})  # recent
    ask(ana, 'room_message', {'room': 'lobby', 'text': 'hi'})  # append
    ask(ana, 'history', {'room': 'lobby', 'since_id': 0})  # since
    ask(ana, 'direct_history')  # direct_since
    for operation in ('recent', 'append', 'since', 'direct_since'):
        assert sample(app, 'relay_store_seconds_count', operation=operation) == 1, operation
        assert sample(app, 'relay_store_seconds_sum', operation=operation) > 0
    assert sample(app, 'relay_store_seconds_count', operation='before') == 0
    assert sample(app, 'relay_store_seconds_bucket', operation='append', le='10.0') == 1


def test_a_connection_sending_garbage_is_closed_and_counted(app):
    ana, bob = connect(app), connect(app)
    take_message = socketio.server.eio.handlers['message']  # what Engine.IO hands packets to
    for _ in range(GARBAGE_LIMIT - 1):
        take_message(ana.eio_sid, '42/chat,{')
    assert sample(app, 'relay_garbage_disconnects_total') == 0
    take_message(ana.eio_sid, '42/chat,{')
    assert sample(app, 'relay_garbage_disconnects_total') == 1
    take_message(bob.eio_sid, f'5{MAX_ATTACHMENTS + 1}-/chat,["x"]')  # over the binary cap
    assert sample(app, 'relay_garbage_disconnects_total') == 2


def test_a_connection_leaving_too_much_unread_is_closed_and_counted(make_app):
    app = make_app(MAX_UNSENT_PACKETS=10)
    eio = socketio.server.eio
    connection = engineio.socket.Socket(eio, 'slow-reader')
    eio.sockets['slow-reader'] = connection
    for _ in range(10):
        connection.send(engineio.packet.Packet(engineio.packet.MESSAGE, 'unread'))
    assert sample(app, 'relay_slow_consumer_disconnects_total') == 0
    connection.send(engineio.packet.Packet(engineio.packet.MESSAGE, 'one too many'))
    assert connection.closed and 'slow-reader' not in eio.sockets
    assert sample(app, 'relay_slow_consumer_disconnects_total') == 1


def test_queue_publish_failures_are_zero_without_a_queue(app):
    assert sample(app, 'relay_queue_publish_failures_total') == 0


@pytest.mark.parametrize('address', ['127.0.0.1', '::1', '::ffff:127.0.0.1'])
def test_metrics_answer_loopback_in_prometheus_text_format(app, address):
    connect(app)
    response = scrape(app, address)
    assert response.status_code == 200
    assert response.headers['Content-Type'] == 'text/plain; version=0.0.4; charset=utf-8'
    assert response.headers['Cache-Control'] == 'no-store'
    families = {family.name: family for family in
                text_string_to_metric_families(response.get_data(as_text=True))}
    (chat,) = [s for s in families['relay_connected_clients'].samples
               if s.labels == {'namespace': NS}]
    assert chat.value == 1
    assert families['relay_events_emitted'].type == 'counter'
    assert families['relay_store_seconds'].type == 'histogram'
    assert 'process_resident_memory_bytes' in families


@pytest.mark.parametrize('address', ['10.1.2.3', '192.168.0.9', '2001:db8::1', '', 'unix'])
def test_metrics_are_not_found_from_anywhere_else(app, address):
    response = scrape(app, address)
    assert response.status_code == 404
    assert b'relay_' not in response.data


def test_metrics_allow_names_addresses_and_networks(make_app):
    app = make_app(METRICS_ALLOW=['10.0.0.0/8', '2001:db8::7'])
    assert scrape(app, '10.200.0.1').status_code == 200
    assert scrape(app, '2001:db8::7').status_code == 200
    assert scrape(app, '2001:db8::8').status_code == 404
    assert scrape(app, '127.0.0.1').status_code == 404  # loopback only while it is listed


def test_a_scraper_asking_for_openmetrics_gets_it(app):
    response = scrape(app, Accept='application/openmetrics-text; version=1.0.0')
    assert response.headers['Content-Type'].startswith('application/openmetrics-text')
    assert response.get_data(as_text=True).endswith('# EOF\n')


def test_behind_a_trusted_proxy_the_client_it_names_is_the_one_allowed_or_not(make_app):
    app = make_app(TRUSTED_PROXIES=['127.0.0.1'], METRICS_ALLOW=['127.0.0.1', '192.0.2.0/24'])
    assert scrape(app, '127.0.0.1').status_code == 200  # the proxy's machine itself
    assert scrape(app, '127.0.0.1', **{'X-Forwarded-For': '203.0.113.9'}).status_code == 404
    assert scrape(app, '127.0.0.1', **{'X-Forwarded-For': '192.0.2.4'}).status_code == 200
    # From anyone not trusted, the header is nobody's word.
    assert scrape(app, '203.0.113.9', **{'X-Forwarded-For': '127.0.0.1'}).status_code == 404


@pytest.mark.parametrize('value', ['localhost', '10.0.0.0/33', '300.1.1.1', '*'])
def test_a_metrics_allow_that_is_no_address_or_network_is_refused_at_start(value):
    with pytest.raises(ConfigError, match=f'^METRICS_ALLOW: .*{re.escape(repr(value))}'):
        create_app(TestingConfig, {'METRICS_ALLOW': ['127.0.0.1', value]})


def test_every_app_counts_in_a_registry_of_its_own(make_app):
    first, second = make_app(), make_app()
    ask(connect(second), 'my_event', {'data': 'x'})
    assert sample(second, 'relay_events_received_total', namespace=NS, event='my_event') == 1
    assert sample(first, 'relay_events_received_total', namespace=NS, event='my_event') == 0
