"""TLS channels for the clients of the gRPC service: the CLI and the web tier."""

from __future__ import annotations

from dataclasses import dataclass

import grpc

from service.pem import read_pem


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
