"""Why a TLS connection to the broker failed, in one line an operator can act on.

aiokafka reports every failed connection as ``KafkaConnectionError: Unable to bootstrap``; the
certificate error behind it goes to its debug log only. When a node configured for TLS cannot
connect, :func:`diagnose` opens one TLS connection of its own to the first bootstrap server with
the node's own :class:`ssl.SSLContext`, waits up to :data:`ALERT_WAIT_S` for an alert (with
TLS 1.3 a broker refuses a client certificate only after the client's handshake ended), then
sends a Kafka ``ApiVersions`` request, and names what went wrong: the broker's certificate is
not signed by the configured CA, has expired, is not valid for the name connected to, or the
broker refused this node's client certificate (missing, or issued by a CA it does not trust).
"""

from __future__ import annotations

import socket
import ssl
import struct
from typing import Final

#: OpenSSL's X509_V_ERR codes met when the broker's certificate chain is checked
_EXPIRED: Final = 10
_NOT_YET_VALID: Final = 9
_NAME_MISMATCH: Final = frozenset({62, 64})  # host name, IP address
#: TLS alerts a broker sends when it refuses the client's certificate (OpenSSL reason names)
_NO_CLIENT_CERT: Final = frozenset(
    {"TLSV13_ALERT_CERTIFICATE_REQUIRED", "SSLV3_ALERT_HANDSHAKE_FAILURE"}
)
_FOREIGN_CLIENT_CERT: Final = frozenset(
    {"TLSV1_ALERT_UNKNOWN_CA", "SSLV3_ALERT_BAD_CERTIFICATE", "SSLV3_ALERT_CERTIFICATE_UNKNOWN"}
)
_EXPIRED_CLIENT_CERT: Final = frozenset({"SSLV3_ALERT_CERTIFICATE_EXPIRED"})
_NOT_TLS: Final = frozenset(
    {"WRONG_VERSION_NUMBER", "RECORD_LAYER_FAILURE", "PACKET_LENGTH_TOO_LONG"}
)


#: how long :func:`diagnose` waits after the handshake for a refusal of the client certificate
ALERT_WAIT_S: Final = 1.0


def first_server(bootstrap: str) -> tuple[str, int]:
    """The host and port of the first server of ``host:port[,host:port...]``."""
    first = bootstrap.split(",")[0].strip()
    host, _, port = first.rpartition(":")
    return host.strip("[]"), int(port)


def _api_versions_request() -> bytes:
    client_id = b"nbx-tls-probe"
    body = struct.pack(">hhih", 18, 0, 1, len(client_id)) + client_id
    return struct.pack(">i", len(body)) + body


def reason(exc: BaseException, host: str, *, client_cert: bool) -> str | None:
    """The one-line reason for ``exc``, raised by a TLS connection to ``host``; None if it is
    not a TLS failure (the broker is down, a timeout)."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        code = exc.verify_code
        if code == _EXPIRED:
            return "its certificate has expired; the broker's operator must renew it"
        if code == _NOT_YET_VALID:
            return "its certificate is not valid yet; check the clocks of broker and node"
        if code in _NAME_MISMATCH:
            return (
                f"its certificate is not valid for the name {host!r}; connect by a name the "
                "certificate lists (kafka.bootstrap)"
            )
        return (
            f"its certificate is not signed by the CA in kafka.ssl_cafile ({exc.verify_message}); "
            "set ssl_cafile to the network's CA certificate"
        )
    if isinstance(exc, ssl.SSLError):
        name = exc.reason or ""
        if name in _NO_CLIENT_CERT and not client_cert:
            return (
                "it requires a client certificate; set kafka.ssl_certfile and kafka.ssl_keyfile "
                "(nbx deploy certs)"
            )
        if name in _EXPIRED_CLIENT_CERT:
            return "it refused this node's client certificate (kafka.ssl_certfile): it has expired"
        if name in _FOREIGN_CLIENT_CERT | _NO_CLIENT_CERT:
            return (
                "it refused this node's client certificate (kafka.ssl_certfile): not issued by a "
                "CA the broker trusts"
            )
        if name in _NOT_TLS:
            return "it did not answer in TLS; check kafka.security_protocol for this listener"
        return f"{name or type(exc).__name__}"
    return None


def diagnose(
    context: ssl.SSLContext, bootstrap: str, *, client_cert: bool, timeout_s: float = 5.0
) -> str | None:
    """Connect to the first server of ``bootstrap`` with ``context`` and return a one-line error
    (``TLS with the Kafka broker at H:P failed: ...``) if the TLS connection fails; None if it
    works or fails for a reason that is not TLS (:func:`reason`)."""
    host, port = first_server(bootstrap)
    try:
        with (
            socket.create_connection((host, port), timeout=timeout_s) as raw,
            context.wrap_socket(raw, server_hostname=host) as tls,
        ):
            # a broker refusing the client's certificate sends its alert right after the
            # handshake: wait for it before writing, so that the write cannot race the close
            tls.settimeout(min(ALERT_WAIT_S, timeout_s))
            try:
                if not tls.recv(4):
                    return None
            except TimeoutError:
                tls.settimeout(timeout_s)
                tls.sendall(_api_versions_request())
                tls.recv(4)
    except (ssl.SSLError, OSError) as exc:
        why = reason(exc, host, client_cert=client_cert)
        return None if why is None else f"TLS with the Kafka broker at {host}:{port} failed: {why}"
    return None
