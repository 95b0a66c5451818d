"""Bringing comments in and out: WordPress (WXR), Disqus and Isso imports, our own JSONL export
and import, backup and restore (``comments-service import|export|backup|restore``).

Each reader (wordpress.py, disqus.py, isso.py, jsonl.py) turns its format into
:class:`~service.importers.source.SourceComment` items, streaming; run.py takes them through
a live submission's validation and normalisation, gives each an id of its own time and stores
them through the store's import room (service/store/imports.py), a batch per round trip.
"""
