"""TLS and mutual TLS for the gRPC port (the clients' side is service.client.tls).

Certificates are PEM files named by path, re-read when they change (renewals need no
restart). The server serves either plaintext (no tls_cert) or TLS only, never both on
one port; with tls_client_ca it requires a client
certificate signed by that CA and refuses the handshake otherwise (before any call, so
API keys still decide what an accepted client may do).
"""

from __future__ import annotations

import logging
import os

import grpc
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from service import metrics
from service.config import Settings
from service.pem import read_pem

log = logging.getLogger("hashguard.tls")


def server_credentials(settings: Settings) -> grpc.ServerCredentials | None:
    """TLS (or mutual TLS) credentials from the settings, None for plaintext. The files
    are read now (an unreadable one stops the start) and again whenever they change."""
    if not settings.tls_cert:
        return None
    files = ServerCertificates(settings.tls_cert, settings.tls_key, settings.tls_client_ca)
    return grpc.dynamic_ssl_server_credentials(
        files.initial,
        files.fetch,  # type: ignore[arg-type]  # grpc documents None as "no change"
        require_client_authentication=bool(settings.tls_client_ca),
    )


class ServerCertificates:
    """The server's PEM files, re-read when their size or modification time changes, so
    a renewed certificate (cert-manager, certbot) is served from the next handshake on
    without a restart. gRPC asks `fetch` at every new connection: a stat per file. A
    renewal caught half-written, or a key that does not belong to its certificate, is
    logged and skipped: the previous certificate keeps serving until the files change
    again."""

    def __init__(self, cert: str, key: str, client_ca: str) -> None:
        self.paths = tuple(path for path in (cert, key, client_ca) if path)
        self.cert, self.key, self.client_ca = cert, key, client_ca
        try:  # stamps first: a change made while reading is caught by the next fetch
            self._seen = self._stamps()
        except OSError:
            self._seen = ()  # _read names the missing file and setting
        self.initial = self._read()

    def _stamps(self) -> tuple[tuple[int, int], ...]:
        return tuple((st.st_mtime_ns, st.st_size) for st in map(os.stat, self.paths))

    def _read(self) -> grpc.ServerCertificateConfiguration:
        chain = read_pem(self.cert, "TLS certificate (tls_cert)")
        key = read_pem(self.key, "TLS private key (tls_key)")
        client_ca = (
            read_pem(self.client_ca, "client CA (tls_client_ca)") if self.client_ca else None
        )
        _check_pair(chain, key, self.cert, self.key)
        metrics.export_tls_expiry(
            x509.load_pem_x509_certificate(chain).not_valid_after_utc.timestamp()
        )
        return grpc.ssl_server_certificate_configuration([(key, chain)], client_ca)

    def fetch(self) -> grpc.ServerCertificateConfiguration | None:
        try:
            stamps = self._stamps()
        except OSError:
            return None  # a file is being replaced right now: keep the current one
        if stamps == self._seen:
            return None
        self._seen = stamps
        try:
            config = self._read()
        except (OSError, ValueError) as exc:
            log.warning(
                "TLS files changed but were not loaded, still serving the previous certificate: %s",
                exc,
            )
            return None
        log.info("TLS certificate reloaded from %s", self.cert)
        return config


def _check_pair(chain: bytes, key: bytes, cert_path: str, key_path: str) -> None:
    """Refuse a key that does not belong to the chain's first certificate: gRPC would take
    it and then fail every handshake."""
    try:
        certificate = x509.load_pem_x509_certificate(chain)
        private_key = serialization.load_pem_private_key(key, password=None)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"cannot parse the TLS files {cert_path!r}, {key_path!r}: {exc}") from None
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    der = serialization.Encoding.DER
    if certificate.public_key().public_bytes(der, spki) != private_key.public_key().public_bytes(
        der, spki
    ):
        raise ValueError(
            f"the TLS key {key_path!r} does not belong to the certificate {cert_path!r}"
        )
