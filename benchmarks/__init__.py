"""``make bench``: tsgate against the ACE simulator, each in its own process.

Run ``python -m benchmarks --help``. Every scenario has a request count and a time
limit, talks over loopback only, and is compared with a baseline measured in the same
run; the table goes to stdout and to ``docs/benchmarks.md``.
"""
