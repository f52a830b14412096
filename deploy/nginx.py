"""The nginx in front of the workers: its configuration, rendered from ``deploy/nginx.conf``."""
import math
import shutil
from pathlib import Path

import jinja2

TEMPLATE = Path(__file__).resolve().parent / 'nginx.conf'
DEFAULT_BINARY = '/usr/sbin/nginx'  # Debian's; not on a normal user's PATH

# Seconds nginx waits on a quiet /socket.io connection beyond PING_INTERVAL + PING_TIMEOUT.
TIMEOUT_MARGIN_S = 30
# Bytes of request body nginx accepts beyond the workers' MAX_PAYLOAD_BYTES.
BODY_MARGIN_BYTES = 1024 * 1024


def find_binary(given=None):
    """Return the nginx executable to run: ``given``, else the one on PATH, else Debian's."""
    candidate = given or shutil.which('nginx') or DEFAULT_BINARY
    return candidate if Path(candidate).is_file() else None


def socketio_timeout(ping_interval, ping_timeout):
    """Seconds to wait on a quiet /socket.io connection: more than Engine.IO ever stays quiet.

    A WebSocket carries a ping every ``ping_interval`` and a long-polling GET is answered
    within it; Engine.IO itself gives a client up after ``ping_interval + ping_timeout``.
    """
    return math.ceil(ping_interval + ping_timeout) + TIMEOUT_MARGIN_S


def max_body_bytes(max_payload_bytes):
    """The largest request body nginx passes on: more than a worker accepts, so that the
    worker refuses an oversized packet the way Engine.IO clients expect."""
    return max_payload_bytes + BODY_MARGIN_BYTES


def host_port(host, port):
    """``host:port`` as nginx writes it, with brackets around an IPv6 address."""
    return f'[{host}]:{port}' if ':' in host else f'{host}:{port}'


def render(*, listen, workers, prefix, timeout_s, body_bytes):
    """Return the configuration: serve on ``listen`` (``host:port``), proxy to ``workers``
    (``host:port`` each), keep pid, logs and temporary files under ``prefix``; ``timeout_s``
    and ``body_bytes`` from ``socketio_timeout`` and ``max_body_bytes``."""
    if not workers:
        raise ValueError('nginx needs at least one worker to proxy to')
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATE.parent), undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True, autoescape=False)
    return environment.get_template(TEMPLATE.name).render(
        listen=listen, workers=list(workers), prefix=str(Path(prefix).resolve()),
        socketio_timeout=int(timeout_s), max_body_bytes=int(body_bytes))


def write_config(prefix, **settings):
    """Render the configuration into ``prefix``, make the folders it names, return its path.

    ``settings`` are ``render``'s, but for ``prefix``.
    """
    prefix = Path(prefix)
    for folder in ('logs', 'temp'):
        (prefix / folder).mkdir(parents=True, exist_ok=True)
    path = prefix / 'nginx.conf'
    path.write_text(render(prefix=prefix, **settings))
    return path


def command(binary, config_path, prefix):
    """The command line that runs nginx in the foreground with this configuration.

    ``-e stderr`` sends the errors met before the configuration is read to our output (the
    compiled-in error log may be a file under /var/log).
    """
    return [binary, '-e', 'stderr', '-c', str(config_path), '-p', f'{Path(prefix).resolve()}/']
