"""What ``bench.stress``, ``bench.loadtest`` and ``bench.api`` share to measure real servers
on loopback.

``client``: a cookie-keeping HTTP client that sends the CSRF token; ``servers``: starting and
stopping Daphne (and any server process) from a checkout; ``memory``: the RSS of process trees
from ``/proc``; ``runs``: the start of a run, its facts and the writing of its results.

Standard library only, and nothing of the server's code: the harnesses speak HTTP to it.
"""
