"""TLS and mutual TLS for the gRPC port, and TLS channels for the CLI.

Certificates are PEM files named by path. The server serves either plaintext (no
tls_cert) or TLS only, never both on one port; with tls_client_ca it requires a client
certificate signed by that CA and refuses the handshake otherwise (before any call, so
API keys still decide what an accepted client may do).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import grpc

from service.config import Settings


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
    """TLS (or mutual TLS) credentials from the settings, None for plaintext."""
    if not settings.tls_cert:
        return None
    chain = read_pem(settings.tls_cert, "TLS certificate (tls_cert)")
    key = read_pem(settings.tls_key, "TLS private key (tls_key)")
    client_ca = (
        read_pem(settings.tls_client_ca, "client CA (tls_client_ca)")
        if settings.tls_client_ca
        else None
    )
    return grpc.ssl_server_credentials(
        [(key, chain)], root_certificates=client_ca, require_client_auth=client_ca is not None
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
