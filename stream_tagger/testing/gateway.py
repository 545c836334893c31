"""The TLS / SASL listener of the local broker: what a production Kafka listener asks of a client.

Tansu 0.6.0 cannot serve either itself (read from its v0.6.0 source and checked by running it):

- TLS: ``--cert`` and ``--key`` sit in one clap argument group, so giving both is refused ("cannot be
  used with"), and the broker builds a ``TlsAcceptor`` it never uses (``let _acceptor = ...``);
- SASL: ``--authentication`` turns authentication on, but its memory and S3 storage engines store no
  SCRAM credentials (``user_scram_credential`` returns ``None``; ``tansu user create`` is a no-op on
  them), so every login ends ``e=unknown-user``; the PostgreSQL engine that stores them is not built
  into the shipped binary ("FeatureNotEnabled").

So ``LocalBroker`` runs Tansu on a private loopback port and this gateway on the public one. It
terminates TLS (Python's ``ssl``, i.e. OpenSSL, with a certificate the tests make), performs the SASL
exchange the way a Kafka broker does (``ApiVersions`` is answered before authentication,
``SaslHandshake`` v1 + ``SaslAuthenticate`` carry the tokens, SCRAM-SHA-256/512 verified with the
``scramp`` library, PLAIN compared with the configured password, any other request before
authentication closes the connection), and then relays bytes to Tansu untouched. The advertised
listener is the gateway's address, so every connection a client makes goes through it.
"""

from __future__ import annotations

import asyncio
import ssl
import struct
import threading
from collections.abc import Mapping

from kafka.protocol.sasl import (
    SaslAuthenticateRequest,
    SaslAuthenticateResponse,
    SaslHandshakeRequest,
    SaslHandshakeResponse,
)

from stream_tagger.testing.certs import TlsFiles

HOST = "127.0.0.1"
API_VERSIONS, SASL_HANDSHAKE, SASL_AUTHENTICATE = 18, 17, 36
UNSUPPORTED_SASL_MECHANISM, SASL_AUTHENTICATION_FAILED = 33, 58
MECHANISMS = ("SCRAM-SHA-256", "SCRAM-SHA-512", "PLAIN")
#: A request frame larger than this before authentication is not a Kafka client speaking.
MAX_PREAUTH_FRAME = 1 << 20


class SecureGateway:
    """Listens on ``HOST:port`` (TLS if ``tls``, SASL if ``users``) and relays to ``HOST:upstream_port``."""

    def __init__(self, port: int, upstream_port: int, tls: TlsFiles | None, users: Mapping[str, str] | None) -> None:
        self.port = port
        self.upstream_port = upstream_port
        self.users = dict(users) if users is not None else None
        self._ssl = _server_context(tls) if tls is not None else None
        self._loop = asyncio.new_event_loop()
        self._loop.set_exception_handler(lambda loop, context: None)  # failed TLS handshakes are expected
        self._thread: threading.Thread | None = None
        self._server: asyncio.base_events.Server | None = None

    def start(self) -> SecureGateway:
        self._server = self._loop.run_until_complete(
            asyncio.start_server(self._serve, HOST, self.port, ssl=self._ssl, reuse_address=True))
        self._thread = threading.Thread(target=self._loop.run_forever, name="broker-gateway", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread is None:
            return
        asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._thread = None
        self._loop.close()

    async def _shutdown(self) -> None:
        self._server.close()
        for task in asyncio.all_tasks():
            if task is not asyncio.current_task():
                task.cancel()

    async def _serve(self, client: asyncio.StreamReader, to_client: asyncio.StreamWriter) -> None:
        try:
            upstream, to_upstream = await asyncio.open_connection(HOST, self.upstream_port)
        except OSError:  # the broker is down: the client sees a closed connection and retries
            to_client.close()
            return
        try:
            if self.users is None or await _SaslSession(self.users).run(client, to_client, upstream, to_upstream):
                await asyncio.gather(_relay(client, to_upstream), _relay(upstream, to_client))
        except (OSError, asyncio.IncompleteReadError, ssl.SSLError, ValueError):
            pass
        finally:
            to_client.close()
            to_upstream.close()


class _SaslSession:
    """One connection's authentication; ``run`` returns True once the client is authenticated."""

    def __init__(self, users: Mapping[str, str]) -> None:
        self.users = users
        self.exchange: _Exchange | None = None

    async def run(self, client, to_client, upstream, to_upstream) -> bool:
        while True:
            frame = await _read_frame(client)
            api_key, version = struct.unpack(">hh", frame[:4])
            if api_key == API_VERSIONS:  # allowed before authentication; Tansu answers it
                await _write_frame(to_upstream, frame)
                await _write_frame(to_client, await _read_frame(upstream))
            elif api_key == SASL_HANDSHAKE:
                if not await self._handshake(frame, version, to_client):
                    return False
            elif api_key == SASL_AUTHENTICATE and self.exchange is not None:
                outcome = await self._authenticate(frame, version, to_client)
                if outcome is not None:
                    return outcome
            else:  # Kafka, too, closes a connection that skips authentication
                return False

    async def _handshake(self, frame: bytes, version: int, to_client) -> bool:
        request = SaslHandshakeRequest.decode(frame, version=version, header=True)
        known = request.mechanism in MECHANISMS
        response = SaslHandshakeResponse(version=version, error_code=0 if known else UNSUPPORTED_SASL_MECHANISM,
                                         mechanisms=list(MECHANISMS))
        await _respond(to_client, response, request)
        if known:
            self.exchange = _Exchange(request.mechanism, self.users)
        return known

    async def _authenticate(self, frame: bytes, version: int, to_client) -> bool | None:
        request = SaslAuthenticateRequest.decode(frame, version=version, header=True)
        reply, done, error = self.exchange.step(bytes(request.auth_bytes))
        response = SaslAuthenticateResponse(
            version=version, error_code=SASL_AUTHENTICATION_FAILED if error else 0, error_message=error,
            auth_bytes=reply, session_lifetime_ms=0)
        await _respond(to_client, response, request)
        if error:
            return False
        return True if done else None


class _Exchange:
    """The server side of one SASL mechanism: ``step(client token) -> (reply, done, error message)``."""

    def __init__(self, mechanism: str, users: Mapping[str, str]) -> None:
        self.mechanism = mechanism
        self.users = users
        self._scram = _scram_server(mechanism, users) if mechanism.startswith("SCRAM-") else None
        self._steps = 0

    def step(self, token: bytes) -> tuple[bytes, bool, str | None]:
        failed = f"Authentication failed during authentication due to invalid credentials with SASL mechanism {self.mechanism}"
        self._steps += 1
        try:
            if self._scram is None:
                _authzid, user, password = token.decode().split("\0")
                return (b"", True, None) if self.users.get(user) == password else (b"", False, failed)
            if self._steps == 1:
                self._scram.set_client_first(token.decode())
                return self._scram.get_server_first().encode(), False, None
            self._scram.set_client_final(token.decode())
            return self._scram.get_server_final().encode(), True, None
        except Exception:  # noqa: BLE001 (unknown user, wrong proof, malformed token: one answer, as in Kafka)
            return b"", False, failed


def _scram_server(mechanism: str, users: Mapping[str, str]):
    from scramp import ScramMechanism

    scram = ScramMechanism(mechanism)
    credentials = {user: scram.make_auth_info(password, iteration_count=4096) for user, password in users.items()}
    return scram.make_server(lambda user: credentials[user])


def _server_context(tls: TlsFiles) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(str(tls.certfile), str(tls.keyfile))
    return context


async def _respond(writer: asyncio.StreamWriter, response, request) -> None:
    response.with_header(correlation_id=request.header.correlation_id)
    writer.write(response.encode(header=True, framed=True))
    await writer.drain()


async def _read_frame(reader: asyncio.StreamReader) -> bytes:
    (size,) = struct.unpack(">i", await reader.readexactly(4))
    if not 4 <= size <= MAX_PREAUTH_FRAME:
        raise ValueError(f"not a Kafka request frame (size {size})")
    return await reader.readexactly(size)


async def _write_frame(writer: asyncio.StreamWriter, frame: bytes) -> None:
    writer.write(struct.pack(">i", len(frame)) + frame)
    await writer.drain()


async def _relay(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(1 << 16):
            writer.write(data)
            await writer.drain()
    finally:
        writer.close()
