"""Bureau keys, key files and the signed bureau directory (see the submodules).

* :mod:`broker.keys.bureau` - a bureau's key pairs, the :class:`KeyLookup` interface.
* :mod:`broker.keys.key_ids` - key ids and raw public key bytes.
* :mod:`broker.keys.files` - private keys on disk (PKCS#8 PEM, 0600, optional passphrase).
* :mod:`broker.keys.directory` - the anchor-signed directory and its key lookup (P6).
* :mod:`broker.keys.directory_edit` - add a bureau, rotate keys, revoke a key, set the rules.
* :mod:`broker.keys.rules` - the network rule set (review, supervision) and the body roles.
* :mod:`broker.keys.directory_topic` - publish to / fetch from the ``nbx.directory`` topic.
"""

from broker.keys.bureau import BureauKeys, BureauPublicKeys, KeyLookup, StaticDirectory
from broker.keys.directory import Directory, DirectoryBody, sign_directory
from broker.keys.key_ids import key_id, raw_public
from broker.keys.rules import NetworkRules

__all__ = [
    "BureauKeys",
    "BureauPublicKeys",
    "Directory",
    "DirectoryBody",
    "KeyLookup",
    "NetworkRules",
    "StaticDirectory",
    "key_id",
    "raw_public",
    "sign_directory",
]
