"""``python -m bench.loadtest``: many users, real photos, a websocket per job, real servers.

``cli``: the command line and one run per topology; ``topologies``: the servers of each
(embedded; scale-out with PostgreSQL, Redis and db_workers); ``load``: the users, their
sockets, polls and downloads, and the worker killer; ``records``: what the client saw of each
job and how it is counted; ``figures``: percentiles, socket latency and the run's summary;
``report``: the text report. The building blocks are ``bench.loopback``'s.
"""

from bench.loopback.runs import logger

log = logger("loadtest")
