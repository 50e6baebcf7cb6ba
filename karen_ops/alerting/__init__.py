"""Alerts raised from what happens in the pipeline, routed and delivered once, plus run metrics."""
