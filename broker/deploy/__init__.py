"""What ``nbx deploy`` generates for a network from its signed directory: client certificates
(``certs.py``), Kafka ACLs and topic resources (``acls.py``, ``topics.py``).

Layer 7, beside :mod:`broker.node` and :mod:`broker.report`: it reads the directory
(:mod:`broker.keys`) and the topic names and configurations (:mod:`broker.transport`), never the
node.
"""
