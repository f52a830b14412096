"""Prometheus metrics: one registry per app, and what each part of the server counts with.

``create_app`` makes one ``Metrics`` (kept in ``app.extensions['metrics']``) and hands each part
the little it counts with: a namespace its ``NamespaceCounts``, the Socket.IO server the
``Metrics`` itself (emits, deliveries, queue failures, slow consumers), the ticker its tick
counter and lag histogram, the chat namespace a ``TimedStore``. On the paths every event
takes, each label value is resolved once and kept in a dict (a ``labels()`` call builds a key
and takes a lock), and no label value comes from a client: an event a namespace has no
handler for is counted as ``other``. ``/metrics`` (server/http.py) serves ``exposition()`` to
the addresses ``allows()`` accepts.
"""
import functools
import time

from prometheus_client import CollectorRegistry, Counter, Histogram, ProcessCollector
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.exposition import choose_encoder

from server.addresses import is_in, parse_networks

OTHER = 'other'
# python-socketio's disconnect reasons (``socketio.Server.reason``); any other is ``other``.
DISCONNECT_REASONS = ('client disconnect', 'server disconnect', 'transport close',
                      'transport error', 'ping timeout')
# Every call the namespaces make on a history store (server/chat/store.py).
STORE_OPERATIONS = ('append', 'append_direct', 'stored_direct', 'direct_since',
                    'direct_before', 'recent', 'before', 'since')
# Seconds. A store call takes a millisecond or so, a group commit a few, an unreachable
# database its connection timeout (3 s for PostgreSQL, 10 s for a SQLite file kept locked).
STORE_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
                 5.0, 10.0)
# Seconds a ticker run started after its deadline: nothing on an idle loop, the length of
# whatever held the loop otherwise.
TICKER_LAG_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class Metrics:
    """The metrics of one app, in a registry of its own, and who may read them.

    ``allow`` is the addresses and networks (``ipaddress`` networks, or strings) that
    ``/metrics`` answers; everyone else gets a 404.
    """

    def __init__(self, allow=('127.0.0.1', '::1')):
        self.registry = registry = CollectorRegistry(auto_describe=True)
        self._allowed = parse_networks(allow)
        ProcessCollector(registry=registry)
        # Counted on every event, emit and disconnect: tallies without a lock (see Tallies).
        self.events_in = Tallies(
            'relay_events_received', 'Events clients sent, by namespace and event (an event '
            'the namespace has no handler for is "other"), refused ones included',
            ['namespace', 'event'], registry=registry)
        self.events_out = Tallies(
            'relay_events_emitted', 'Events this worker emitted, by event (one per emit, '
            'however many clients it reaches)', ['event'], registry=registry)
        self.deliveries = Tallies(
            'relay_deliveries', "Event packets handed to this worker's clients, by event, "
            "other workers' emits through the message queue included", ['event'],
            registry=registry)
        self.refusals = Tallies(
            'relay_refusals', 'Events answered with an error, by namespace and error code',
            ['namespace', 'code'], registry=registry)
        self.rate_limited = Tallies(
            'relay_rate_limited', 'Events and connects refused for the rate limit, by namespace',
            ['namespace'], registry=registry)
        self.flood_disconnects = Tallies(
            'relay_flood_disconnects', 'Connections put out for flooding, by namespace',
            ['namespace'], registry=registry)
        self.disconnects = Tallies(
            'relay_disconnects', 'Clients gone from a namespace, by namespace and reason',
            ['namespace', 'reason'], registry=registry)
        self.connections_refused = Counter(
            'relay_connections_refused', 'New connections refused at the handshake, by code '
            '(too_many_connections, too_many_new_connections, server_full)', ['code'],
            registry=registry)
        self.slow_consumer_disconnects = Counter(
            'relay_slow_consumer_disconnects', 'Connections closed for leaving more than '
            'MAX_UNSENT_BYTES or MAX_UNSENT_PACKETS unread', registry=registry)
        self.garbage_disconnects = Counter(
            'relay_garbage_disconnects', 'Connections closed for sending undecodable packets, '
            'or binary attachments over the cap', registry=registry)
        self.ticker_ticks = Counter(
            'relay_ticker_ticks', 'Ticker values this worker drew and published',
            registry=registry)
        self.ticker_lag = Histogram(
            'relay_ticker_lag_seconds', 'How late each run of the ticker task started against '
            'its schedule', buckets=TICKER_LAG_BUCKETS, registry=registry)
        self.store_seconds = Histogram(
            'relay_store_seconds', 'Duration of history store calls, by operation, failed '
            'ones included', ['operation'], buckets=STORE_BUCKETS, registry=registry)
        self.queue_publish_failures = Counter(
            'relay_queue_publish_failures', 'Messages the message queue (Redis) could not '
            'publish, after its one retry; always 0 without MESSAGE_QUEUE', registry=registry)
        self._emitted = _Children(self.events_out)
        self._delivered = _Children(self.deliveries)

    def allows(self, address):
        """Return whether ``address`` (a client's IP address, as text) may read the metrics."""
        return is_in(address, self._allowed)

    def exposition(self, accept=None):
        """Return ``(body, content_type)``: the metrics in the format the Accept header asks
        for, Prometheus text format 0.0.4 unless it asks otherwise."""
        encode, content_type = choose_encoder(accept)
        return encode(self.registry), content_type

    def watch_clients(self, server, namespaces):
        """Report the clients connected to each of ``namespaces`` of a python-socketio server."""
        self.registry.register(ConnectedClients(server, namespaces))

    def namespace_counts(self, namespace, events):
        """Return the counts of one namespace that handles ``events`` (names)."""
        return NamespaceCounts(self, namespace, events)

    def emitted(self, event):
        """Count one emit of ``event`` made by this worker."""
        self._emitted[event].inc()

    def delivered(self, event, recipients):
        """Count the packets an emit of ``event`` hands to this worker's clients."""
        self._delivered[event].inc(recipients)

    def connection_refused(self, code):
        """Count a handshake refused for the connection limits, by its code."""
        self.connections_refused.labels(code).inc()

    def publish_failed(self):
        """Count a message the message queue could not publish."""
        self.queue_publish_failures.inc()

    def slow_consumer_closed(self):
        """Count a connection closed for leaving too much unread."""
        self.slow_consumer_disconnects.inc()

    def timed_store(self, store):
        """Return ``store`` with each of its calls timed into ``relay_store_seconds``."""
        return TimedStore(store, self.store_seconds)


class _Children(dict):
    """A labelled metric's children by the value of its last label, each resolved once.

    Only for values the server itself chooses (event names it emits, error codes): a value
    is added the first time it is counted.
    """

    def __init__(self, metric, *fixed):
        super().__init__()
        self._metric = metric
        self._fixed = fixed

    def __missing__(self, value):
        child = self[value] = self._metric.labels(*self._fixed, value)
        return child


class NamespaceCounts:
    """What one namespace counts: events in, refusals, rate-limit hits, floods, disconnects."""

    def __init__(self, metrics, namespace, events):
        self._events = {event: metrics.events_in.labels(namespace, event) for event in events}
        self._other_event = metrics.events_in.labels(namespace, OTHER)
        self._refusals = _Children(metrics.refusals, namespace)
        self._rate_limited = metrics.rate_limited.labels(namespace)
        self._floods = metrics.flood_disconnects.labels(namespace)
        self._disconnects = {reason: metrics.disconnects.labels(namespace, reason)
                             for reason in DISCONNECT_REASONS}
        self._other_disconnect = metrics.disconnects.labels(namespace, OTHER)

    def event_in(self, event):
        """Count an event a client sent; one the namespace does not handle is ``other``."""
        self._events.get(event, self._other_event).inc()

    def refused(self, code):
        """Count a refusal with error ``code`` (the server's own codes)."""
        self._refusals[code].inc()

    def rate_limited(self):
        """Count an event or connect refused for the rate limit."""
        self._rate_limited.inc()

    def flood_disconnect(self):
        """Count a connection put out for flooding."""
        self._floods.inc()

    def disconnected(self, reason):
        """Count a client gone from the namespace, by python-socketio's reason."""
        self._disconnects.get(reason, self._other_disconnect).inc()


class NotCounted:
    """Stands in for ``NamespaceCounts`` in a namespace nobody gave any (built outside
    ``create_app``): counts nothing."""

    def event_in(self, event):
        """Count nothing."""

    def refused(self, code):
        """Count nothing."""

    def rate_limited(self):
        """Count nothing."""

    def flood_disconnect(self):
        """Count nothing."""

    def disconnected(self, reason):
        """Count nothing."""


NOT_COUNTED = NotCounted()


class Tallies:
    """A labelled counter counted without a lock, for the paths every event takes.

    prometheus_client's ``Counter`` takes a lock for each increment, which under gevent is a
    gevent lock: a few percent of the server's time when every event and emit counts. The
    server counts from one thread (its event loop), where an increment is never interrupted,
    so a plain number does; the registry reads the tallies when the metrics are collected.
    """

    def __init__(self, name, documentation, labelnames, registry):
        self._name = name
        self._documentation = documentation
        self._labelnames = list(labelnames)
        self._tallies = {}  # label values -> Tally
        registry.register(self)

    def labels(self, *values):
        """Return the tally of these label values, made the first time it is asked for."""
        tally = self._tallies.get(values)
        if tally is None:
            tally = self._tallies[values] = Tally()
        return tally

    def describe(self):
        """Name the one metric family this collects."""
        return [self._family()]

    def collect(self):
        """Report every tally."""
        family = self._family()
        for values, tally in list(self._tallies.items()):
            family.add_metric(list(values), tally.value)
        yield family

    def _family(self):
        return CounterMetricFamily(self._name, self._documentation, labels=self._labelnames)


class Tally:
    """One counted number (``inc`` as a prometheus_client counter child has it)."""

    __slots__ = ('value',)

    def __init__(self):
        self.value = 0

    def inc(self, amount=1):
        """Add ``amount``."""
        self.value += amount


class ConnectedClients:
    """The clients connected to each namespace of a python-socketio server, read from its
    manager (this worker's clients alone) when the metrics are collected."""

    NAME = 'relay_connected_clients'
    HELP = "Clients connected to this worker, by namespace"

    def __init__(self, server, namespaces):
        self._server = server
        self._namespaces = tuple(namespaces)

    def describe(self):
        """Name the one metric this collects (so registering does not collect)."""
        return [GaugeMetricFamily(self.NAME, self.HELP, labels=['namespace'])]

    def collect(self):
        """Count each namespace's clients now."""
        family = GaugeMetricFamily(self.NAME, self.HELP, labels=['namespace'])
        manager = self._server.manager
        for namespace in self._namespaces:
            clients = sum(1 for _ in manager.get_participants(namespace, None))
            family.add_metric([namespace], clients)
        yield family


class TimedStore:
    """A history store whose calls (``STORE_OPERATIONS``) are timed into a histogram by
    operation; everything else (``close``, ``reachable``) goes to the store as it is."""

    def __init__(self, store, histogram):
        self._store = store
        for operation in STORE_OPERATIONS:
            setattr(self, operation, _timed(getattr(store, operation),
                                            histogram.labels(operation).observe))

    def __getattr__(self, name):
        return getattr(self._store, name)


def _timed(call, observe):
    @functools.wraps(call)
    def timed(*args, **kwargs):
        started = time.perf_counter()
        try:
            return call(*args, **kwargs)
        finally:
            observe(time.perf_counter() - started)
    return timed
