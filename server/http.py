"""The few HTTP routes: the client page, its vendored libraries and a health check."""
from pathlib import Path

from flask import Blueprint, abort, jsonify, send_from_directory

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
    """Report that the process serves requests."""
    return jsonify(status='ok')
