"""Throwaway TLS material for the local broker's TLS listener: a CA, a server certificate it signs for
``127.0.0.1``/``localhost``, and a second, unrelated CA (what a client configured with the wrong CA
file holds).

Made with the ``cryptography`` package (already installed as a dependency of moto) rather than the
``openssl`` CLI: no subprocess, no config file for the subject-alternative names, same output on any
machine. Keys are EC P-256; certificates live one day.
"""

from __future__ import annotations

import datetime
import ipaddress
from dataclasses import dataclass
from pathlib import Path

HOSTS = ("localhost", "127.0.0.1")


@dataclass(frozen=True)
class TlsFiles:
    """PEM files: ``cafile`` signed ``certfile``; ``other_cafile`` signed nothing the broker presents."""

    cafile: Path
    certfile: Path
    keyfile: Path
    other_cafile: Path


def make_tls_files(folder: Path) -> TlsFiles:
    """Write ``ca.pem``, ``server.pem``, ``server.key`` and ``other-ca.pem`` into ``folder``."""
    from cryptography.hazmat.primitives import serialization

    folder.mkdir(parents=True, exist_ok=True)
    ca_key, ca = _authority("stream-tagger test CA")
    _, other_ca = _authority("an unrelated CA")
    server_key, server = _server_certificate(ca_key, ca)
    files = TlsFiles(folder / "ca.pem", folder / "server.pem", folder / "server.key", folder / "other-ca.pem")
    files.cafile.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    files.other_cafile.write_bytes(other_ca.public_bytes(serialization.Encoding.PEM))
    files.certfile.write_bytes(server.public_bytes(serialization.Encoding.PEM))
    files.keyfile.write_bytes(server_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    files.keyfile.chmod(0o600)
    return files


def _validity(builder):
    now = datetime.datetime.now(datetime.UTC)
    return builder.not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))


def _authority(name: str):
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    builder = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
               .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                            content_commitment=False, key_encipherment=False,
                                            data_encipherment=False, key_agreement=False,
                                            encipher_only=False, decipher_only=False), critical=True))
    return key, _validity(builder).sign(key, hashes.SHA256())


def _server_certificate(ca_key, ca):
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    names = [x509.DNSName(HOSTS[0]), x509.IPAddress(ipaddress.ip_address(HOSTS[1]))]
    builder = (x509.CertificateBuilder()
               .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, HOSTS[0])]))
               .issuer_name(ca.subject).public_key(key.public_key()).serial_number(x509.random_serial_number())
               .add_extension(x509.SubjectAlternativeName(names), critical=False)
               .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
               .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False))
    return key, _validity(builder).sign(ca_key, hashes.SHA256())
