"""The /test_conn namespace through the test client; ticks are driven by hand."""
from server.extensions import socketio

NS = '/test_conn'


def received(client, name):
    return [e['args'][0] for e in client.get_received(NS) if e['name'] == name]


def test_connect_sends_history_and_starts_the_one_ticker(app):
    ticker = app.extensions['ticker']
    ticker.tick()
    first = socketio.test_client(app, namespace=NS)
    (history,) = received(first, 'ticker_history')
    assert [v['seq'] for v in history['values']] == [1]
    assert history['interval'] == ticker.interval
    assert ticker.running
    socketio.test_client(app, namespace=NS)
    assert ticker.running


def test_history_is_capped_at_sixty_values(app):
    ticker = app.extensions['ticker']
    for _ in range(75):
        ticker.tick()
    client = socketio.test_client(app, namespace=NS)
    (history,) = received(client, 'ticker_history')
    assert [v['seq'] for v in history['values']] == list(range(16, 76))


def test_every_client_gets_the_same_value(app):
    a = socketio.test_client(app, namespace=NS)
    b = socketio.test_client(app, namespace=NS)
    a.get_received(NS), b.get_received(NS)
    value = app.extensions['ticker'].tick()
    assert received(a, 'server_response') == [value]
    assert received(b, 'server_response') == [value]
    assert 1 <= value['data'] <= 100


def test_pause_and_resume_affect_only_that_client(app):
    ticker = app.extensions['ticker']
    paused = socketio.test_client(app, namespace=NS)
    other = socketio.test_client(app, namespace=NS)
    assert paused.emit('ticker_pause', namespace=NS, callback=True) == {'ok': True, 'paused': True}
    paused.get_received(NS), other.get_received(NS)
    ticker.tick()
    assert received(paused, 'server_response') == []
    assert len(received(other, 'server_response')) == 1
    assert paused.emit('ticker_resume', namespace=NS, callback=True) == {'ok': True, 'paused': False}
    value = ticker.tick()
    assert received(paused, 'server_response') == [value]


def test_last_client_leaving_stops_the_ticker(app):
    ticker = app.extensions['ticker']
    a = socketio.test_client(app, namespace=NS)
    b = socketio.test_client(app, namespace=NS)
    a.disconnect(namespace=NS)
    assert ticker.running
    b.disconnect(namespace=NS)
    assert not ticker.running
