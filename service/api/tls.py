"""TLS and mutual TLS for the gRPC port, and TLS channels for the CLI.

Certificates are PEM files named by path, re-read when they change (renewals need no
restart). The server serves either plaintext (no tls_cert) or TLS only, never both on
one port; with tls_client_ca it requires a client
certificate signed by that CA and refuses the handshake otherwise (before any call, so
API keys still decide what an accepted client may do).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import grpc
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from service import metrics
from service.config import Settings

log = logging.getLogger("hashguard.tls")


def read_pem(path: str, what: str) -> bytes:
    """The file's bytes, or an OSError that names the setting it came from."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise OSError(f"cannot read the {what} {path!r}: {exc.strerror}") from None
    if b"-----BEGIN" not in data:
        raise OSError(f"the {what} {path!r} is not a PEM file")
    return data


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


@dataclass(frozen=True, slots=True)
class ClientTls:
    """How the CLI connects. `on` asks for TLS trusting the system's roots, `ca` trusts
    that CA instead; `cert` + `key` identify the client under mutual TLS; `server_name`
    overrides the name checked against the server certificate (dialling an IP, a tunnel)."""

    on: bool = False
    ca: str = ""
    cert: str = ""
    key: str = ""
    server_name: str = ""
    flags: str = "--tls"  # how errors name the settings: the web tier's are --web-tls-*

    @property
    def enabled(self) -> bool:
        return self.on or bool(self.ca or self.cert or self.server_name)


def open_channel(
    target: str, tls: ClientTls | None = None, options: list[tuple[str, object]] | None = None
) -> grpc.Channel:
    """A plaintext channel, or a TLS one when `tls` asks for it."""
    options = list(options or [])
    if tls is None or not tls.enabled:
        return grpc.insecure_channel(target, options=options)
    flag = tls.flags
    if bool(tls.cert) != bool(tls.key):
        raise ValueError(
            f"a client certificate needs its key: give both {flag}-cert and {flag}-key"
        )
    credentials = grpc.ssl_channel_credentials(
        root_certificates=read_pem(tls.ca, f"CA file ({flag}-ca)") if tls.ca else None,
        private_key=read_pem(tls.key, f"client key ({flag}-key)") if tls.key else None,
        certificate_chain=read_pem(tls.cert, f"client certificate ({flag}-cert)")
        if tls.cert
        else None,
    )
    if tls.server_name:
        options.append(("grpc.ssl_target_name_override", tls.server_name))
    return grpc.secure_channel(target, credentials, options=options)
