"""The central side: ingest, verify, store, calculate, export.

Importing this package must stay free of third-party imports: ``mrv-verify``
(:mod:`collector.verify_cli`) runs where only the core and ``cryptography`` exist.
"""
