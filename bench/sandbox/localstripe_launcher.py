"""Start localstripe purely in memory, without access logging.

Run with the throwaway venv's python: ``python localstripe_launcher.py PORT``.
localstripe pickles its whole store to /tmp/localstripe.pickle on every write (its
time grows with the data) and logs every request; both are switched off so that it
is measured as the in-memory server the issue compares against. This favours
localstripe.
"""

import sys

from aiohttp import web
from localstripe import resources, server

resources.store.dump_to_disk = lambda: None  # in memory only

web.run_app(server.app, host="127.0.0.1", port=int(sys.argv[1]), access_log=None, print=None)
