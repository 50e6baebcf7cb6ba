"""The pieces of ``benchmarks/run.py``: data set, measured runs, scenarios and the report."""
