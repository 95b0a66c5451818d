"""Benchmarks; a package so gunicorn can load ``bench.ceiling_app:app``."""
