"""PromQL over tsgate's series: the Prometheus data model of ACE points and an evaluator.

Pure: the evaluator reads data only through the ``Source`` protocol (``engine.py``);
the HTTP surface and the source backed by the reader live in ``tsgate.api.prometheus``.
"""
