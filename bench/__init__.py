"""The benchmark behind ``make bench``: quality on ../shared/eval and speed/memory, ours vs rembg.

Run it as ``python -m bench.run`` (see ``bench/run.py`` for the options).
"""
