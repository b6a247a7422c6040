"""``python -m bench.stress``: hostile-load figures from a real Daphne server on loopback.

``cli``: the command line and one fresh server per scenario; ``server``: that server and its
memory sampler; ``files``: the hostile files; ``jobs``: strangers and accepted jobs followed to
their end; ``tiff``, ``bombs``, ``burst``, ``throughput``, ``soak``: the scenarios; ``report``:
the checks against the targets and the summary. The building blocks are ``bench.loopback``'s.
"""

from bench.loopback.runs import logger

log = logger("stress")
