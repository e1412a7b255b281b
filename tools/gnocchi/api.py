"""Serve Gnocchi's REST API (``gnocchi.rest.wsgi``) with waitress.

Gnocchi's own ``gnocchi-api`` only execs uwsgi; the API itself is a plain
WSGI application. Run with the Python of Gnocchi's venv::

    python tools/gnocchi/api.py --config-file gnocchi.conf --port 8041

Gnocchi reads its configuration from ``sys.argv`` when the WSGI module is
imported, so the arguments are handed over before the import.
"""

from __future__ import annotations

import argparse
import sys


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--config-file', required=True)
    parser.add_argument('--host', default='127.0.0.1')
    parser.add_argument('--port', type=int, required=True)
    parser.add_argument('--threads', type=int, default=8)
    args = parser.parse_args()
    sys.argv = [sys.argv[0], '--config-file', args.config_file]
    import waitress
    from gnocchi.rest import wsgi

    waitress.serve(wsgi.application, host=args.host, port=args.port,
                   threads=args.threads, ident='gnocchi')


if __name__ == '__main__':
    main()
