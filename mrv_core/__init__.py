"""The contract between gateways, collectors and verifiers.

Pure functions only: no sockets, no files, no clocks. Everything a third-party
verifier needs (record format, canonical encoding, hashing, signatures, chain
and seal checks, register decoding, the calculations) lives here and depends on
nothing but the standard library and ``cryptography``.

Two modules are for the agent and the collector only and import pydantic and
PyYAML: :mod:`mrv_core.profile_schema` and :mod:`mrv_core.config_errors`.
"""

FORMAT_VERSION = 1
