"""The few HTTP routes: the client page, its vendored libraries, a health check and metrics."""
from pathlib import Path

from flask import Blueprint, Response, abort, current_app, jsonify, request, send_from_directory

from server.edge import address_of

CLIENT_DIR = Path(__file__).resolve().parent.parent / 'client'
NODE_MODULES = CLIENT_DIR / 'node_modules'

# The browser libraries, installed by npm from client/package.json, under stable public names.
VENDOR_FILES = {
    'socket.io.esm.min.js': 'socket.io-client/dist/socket.io.esm.min.js',
    'socket.io.esm.min.js.map': 'socket.io-client/dist/socket.io.esm.min.js.map',
    'uPlot.esm.js': 'uplot/dist/uPlot.esm.js',
    'uPlot.min.css': 'uplot/dist/uPlot.min.css',
}

bp = Blueprint('http', __name__)


@bp.get('/')
def index():
    """Serve the browser client."""
    return send_from_directory(CLIENT_DIR, 'index.html', max_age=0)


@bp.get('/vendor/<name>')
def vendor(name):
    """Serve one of the npm-installed browser libraries."""
    relative = VENDOR_FILES.get(name)
    if relative is None:
        abort(404)
    return send_from_directory(NODE_MODULES, relative)


@bp.get('/healthz')
def healthz():
    """Report whether this process serves and reaches its history database and, with a message
    queue, its Redis: 200 when all do, 503 (which load balancers take as "not now") if not."""
    chat = current_app.extensions['chat']
    checks = {'store': chat.store.reachable()}
    if current_app.config['MESSAGE_QUEUE']:
        checks['queue'] = chat.presence.reachable()
    healthy = all(checks.values())
    body = {name: 'ok' if fine else 'unavailable' for name, fine in checks.items()}
    return jsonify(status='ok' if healthy else 'unavailable', **body), 200 if healthy else 503


@bp.get('/metrics')
def metrics():
    """Serve this process's Prometheus metrics to the client addresses ``METRICS_ALLOW`` names
    (as the edge names them, through ``TRUSTED_PROXIES``); anyone else is told there is no such
    page (404)."""
    recorded = current_app.extensions['metrics']
    if not recorded.allows(address_of(request.environ)):
        abort(404)
    body, content_type = recorded.exposition(request.headers.get('Accept'))
    return Response(body, content_type=content_type, headers={'Cache-Control': 'no-store'})
