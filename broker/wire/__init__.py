"""The wire layer: the byte-level formats that sealing, opening and the key directory share.

* :mod:`broker.wire.canonical` - canonical JSON (RFC 8785 JCS), digests, base64url.
* :mod:`broker.wire.merkle` - Merkle tree hashes and inclusion proofs (RFC 9162).
* :mod:`broker.wire.frame` - the versioned binary frame that travels as a Kafka record value.
* :mod:`broker.wire.suites` - the HPKE suites a frame may name, and the key types that select them.

This package imports nothing else of ``broker`` but :mod:`broker.errors`: :mod:`broker.keys` and
:mod:`broker.envelope` both stand on it (docs/architecture.md section 2).
"""
