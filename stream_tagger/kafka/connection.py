"""Can this process talk to the brokers as configured? One probe before any client is built.

kafka-python retries a refused TLS handshake, a failed SASL login or a listener speaking another
protocol the same way it retries a broker that is down: quietly, until ``Unable to bootstrap`` after
30 s. A worker built on that alone crash-loops with no hint of which setting is wrong. The probe tells
the two apart:

- ``ConfigError`` (the worker exits 2 with the message): the CA does not sign the broker's
  certificate, the SASL login or mechanism is refused, or the listener speaks TLS to a plaintext
  client (or the reverse), or requires SASL from a client that has none. Each message names the
  ``STREAM_TAGGER_*`` setting to fix.
- ``BrokerUnreachable`` (the worker retries with backoff, ``/readyz`` says not ready): nobody answers.

The probe speaks the protocol with kafka-python's own request classes and SASL mechanisms, over a
TLS context built the way kafka-python builds it.
"""

from __future__ import annotations

import socket
import ssl
import struct
from typing import Any

from kafka.net.sasl import get_sasl_mechanism
from kafka.protocol.metadata import ApiVersionsRequest, MetadataRequest
from kafka.protocol.sasl import (
    SaslAuthenticateRequest,
    SaslAuthenticateResponse,
    SaslHandshakeRequest,
    SaslHandshakeResponse,
)

from stream_tagger.errors import ConfigError
from stream_tagger.settings import Settings

UNSUPPORTED_SASL_MECHANISM = 33
TLS_RECORD_TYPES = range(0x14, 0x18)  # a TLS alert/handshake record where a Kafka frame should start


class BrokerUnreachable(Exception):
    """Raised when no bootstrap server answers at all (down, frozen, wrong address): retry later."""


class _Closed(Exception):
    """The peer closed the connection or answered with something that is not a Kafka frame."""


def check_brokers(settings: Settings, timeout_s: float) -> None:
    """Probe the bootstrap servers in order; return at the first that accepts this client.

    Raises ``ConfigError`` on the first misconfiguration found, ``BrokerUnreachable`` if none answers.
    """
    failures = []
    for server in settings.brokers.split(","):
        host, _, port = server.strip().rpartition(":")
        try:
            _probe(settings, host, int(port), timeout_s)
            return
        except (OSError, _Closed) as exc:
            failures.append(f"{server.strip()}: {exc or type(exc).__name__}")
    raise BrokerUnreachable("; ".join(failures))


def _probe(settings: Settings, host: str, port: int, timeout_s: float) -> None:
    tls = settings.security_protocol in ("SSL", "SASL_SSL")
    try:
        with _connect(settings, host, port, timeout_s, tls) as sock:
            _round_trip(sock, ApiVersionsRequest(version=0), 1)
            if settings.security_protocol.startswith("SASL_"):
                _authenticate(sock, settings, host)
            else:
                _require_no_login(sock, settings, host, port)
    except ssl.SSLCertVerificationError as exc:
        raise ConfigError(
            f"TLS: the certificate of {host}:{port} is not trusted ({exc.verify_message}); set "
            f"STREAM_TAGGER_SSL_CAFILE to the CA that signed it (now: {settings.ssl_cafile or 'system CAs'})"
        ) from exc
    except (ssl.SSLError, _Closed, ConnectionResetError, TimeoutError) as exc:
        # a handshake that times out is what a plaintext listener does with a TLS ClientHello
        _explain_transport_mismatch(settings, host, port, timeout_s, tls)
        raise _Closed(str(exc) or type(exc).__name__) from exc


def _connect(settings: Settings, host: str, port: int, timeout_s: float, tls: bool) -> socket.socket:
    sock = socket.create_connection((host, port), timeout=timeout_s)
    if not tls:
        return sock
    try:
        return _tls_context(settings).wrap_socket(sock, server_hostname=host)
    except BaseException:
        sock.close()
        raise


def _tls_context(settings: Settings) -> ssl.SSLContext:
    """The context kafka-python builds from the same settings (kafka/net/transport.py)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        if settings.ssl_cafile:
            context.load_verify_locations(str(settings.ssl_cafile))
        else:
            context.load_default_certs()
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"TLS: STREAM_TAGGER_SSL_CAFILE={settings.ssl_cafile} cannot be read as PEM: {exc}") from exc
    if settings.ssl_certfile:
        password = settings.ssl_key_password.get_secret_value() if settings.ssl_key_password else None
        try:
            context.load_cert_chain(str(settings.ssl_certfile), settings.ssl_keyfile and str(settings.ssl_keyfile),
                                    password)
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(
                "TLS: the client certificate cannot be loaded; check STREAM_TAGGER_SSL_CERTFILE, "
                f"STREAM_TAGGER_SSL_KEYFILE and STREAM_TAGGER_SSL_KEY_PASSWORD: {exc}") from exc
    return context


def _explain_transport_mismatch(settings: Settings, host: str, port: int, timeout_s: float, tls: bool) -> None:
    """The configured transport failed: if the other one works, the setting is wrong (ConfigError)."""
    try:
        with socket.create_connection((host, port), timeout=timeout_s) as raw:
            if tls:
                _round_trip(raw, ApiVersionsRequest(version=0), 1)
            else:
                insecure = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
                insecure.check_hostname, insecure.verify_mode = False, ssl.CERT_NONE
                insecure.wrap_socket(raw, server_hostname=host).close()
    except (OSError, ssl.SSLError, _Closed):
        return  # neither works: the broker is not answering, not misconfigured
    if tls:
        raise ConfigError(
            f"{host}:{port} answers plaintext Kafka, not TLS: set STREAM_TAGGER_SECURITY_PROTOCOL to "
            f"PLAINTEXT or SASL_PLAINTEXT, or use the broker's TLS listener (now: {settings.security_protocol})")
    raise ConfigError(
        f"{host}:{port} is a TLS listener and this client speaks plaintext: set "
        f"STREAM_TAGGER_SECURITY_PROTOCOL=SSL (or SASL_SSL) and STREAM_TAGGER_SSL_CAFILE "
        f"(now: {settings.security_protocol})")


def _require_no_login(sock: socket.socket, settings: Settings, host: str, port: int) -> None:
    """A listener that wants SASL answers ApiVersions, then closes on anything else."""
    try:
        _round_trip(sock, MetadataRequest(version=1, topics=[]), 2)
    except (_Closed, ConnectionResetError) as exc:
        raise ConfigError(
            f"{host}:{port} answered ApiVersions but closed the connection on Metadata: it requires SASL "
            f"authentication. Set STREAM_TAGGER_SECURITY_PROTOCOL=SASL_SSL (or SASL_PLAINTEXT), "
            f"STREAM_TAGGER_SASL_MECHANISM, STREAM_TAGGER_SASL_USERNAME and STREAM_TAGGER_SASL_PASSWORD "
            f"(now: {settings.security_protocol})") from exc


def _authenticate(sock: socket.socket, settings: Settings, host: str) -> None:
    name = settings.sasl_mechanism
    if not name:
        raise ConfigError(f"STREAM_TAGGER_SECURITY_PROTOCOL={settings.security_protocol} needs STREAM_TAGGER_SASL_MECHANISM")
    handshake = _round_trip(sock, SaslHandshakeRequest(version=1, mechanism=name), 3, SaslHandshakeResponse)
    if handshake.error_code == UNSUPPORTED_SASL_MECHANISM or name not in handshake.mechanisms:
        raise ConfigError(f"the broker does not offer SASL mechanism {name} (it offers {list(handshake.mechanisms)}): "
                          "set STREAM_TAGGER_SASL_MECHANISM to one of those")
    mechanism = get_sasl_mechanism(name)(host=host, **_sasl_config(settings))
    correlation_id = 4
    while not mechanism.is_done():
        reply = _round_trip(sock, SaslAuthenticateRequest(version=1, auth_bytes=mechanism.auth_bytes()),
                            correlation_id, SaslAuthenticateResponse)
        correlation_id += 1
        if reply.error_code:
            raise ConfigError(
                f"SASL {name} login of user {settings.sasl_username!r} refused by the broker "
                f"({reply.error_message}): check STREAM_TAGGER_SASL_USERNAME and STREAM_TAGGER_SASL_PASSWORD")
        mechanism.receive(reply.auth_bytes)
    if not mechanism.is_authenticated():
        raise ConfigError(f"SASL {name}: the broker's final message did not verify: check STREAM_TAGGER_SASL_PASSWORD")


def _sasl_config(settings: Settings) -> dict[str, Any]:
    password = settings.sasl_password.get_secret_value() if settings.sasl_password else ""
    return {"sasl_mechanism": settings.sasl_mechanism, "sasl_plain_username": settings.sasl_username or "",
            "sasl_plain_password": password, "security_protocol": settings.security_protocol}


def _round_trip(sock: socket.socket, request, correlation_id: int, response_class=None):
    request.with_header(correlation_id=correlation_id, client_id="stream-tagger-probe")
    sock.sendall(request.encode(header=True, framed=True))
    head = _read(sock, 4)
    if head[0] in TLS_RECORD_TYPES and head[1] == 3:
        raise _Closed("the peer answered with a TLS record")
    (size,) = struct.unpack(">i", head)
    if not 0 < size < 64 << 20:
        raise _Closed(f"not a Kafka response (frame size {size})")
    body = _read(sock, size)
    if response_class is None:
        return body
    return response_class.decode(body, version=request.API_VERSION, header=True)


def _read(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise _Closed("the peer closed the connection")
        data += chunk
    return data
