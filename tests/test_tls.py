"""TLS and mutual TLS on the gRPC port, with throwaway CAs made for each test."""

from __future__ import annotations

import os
import re
import urllib.request
from pathlib import Path

import grpc
import numpy as np
import pytest
from cryptography import x509
from hashguard.v1 import hashguard_pb2 as pb

from tests.certs import CertificateAuthority, Issued
from tests.support import ServerProcess, Stubs, add_key, bearer, encode, run_cli

# Starts servers, browsers or other programs: left out by `pytest -m 'not slow'`.
pytestmark = pytest.mark.slow

RANDOM_PDQ = pb.Hash(algorithm=pb.HASH_ALGORITHM_PDQ, value=bytes(range(32)), quality=100)


def tls_channel(target: str, ca: Path, client: Issued | None = None) -> grpc.Channel:
    credentials = grpc.ssl_channel_credentials(
        root_certificates=ca.read_bytes(),
        private_key=client.key.read_bytes() if client else None,
        certificate_chain=client.cert.read_bytes() if client else None,
    )
    return grpc.secure_channel(target, credentials)


def check(channel: grpc.Channel, key: str) -> pb.CheckUploadResponse:
    with channel:
        return Stubs(channel).match.CheckUpload(
            pb.CheckUploadRequest(hashes=[RANDOM_PDQ]), metadata=bearer(key), timeout=10
        )


def refused(channel: grpc.Channel, key: str) -> grpc.StatusCode:
    with pytest.raises(grpc.RpcError) as err:
        check(channel, key)
    return err.value.code()


def health(server: ServerProcess, *flags: str) -> int:
    return run_cli("health", "--target", server.target, *flags, check=False).returncode


@pytest.fixture
def ca(tmp_path: Path) -> CertificateAuthority:
    return CertificateAuthority(tmp_path, "trusted")


def test_tls_serves_encrypted_calls_and_refuses_plaintext(tmp_path, ca) -> None:
    operator = add_key(tmp_path, "operator", "op")
    server_cert = ca.issue("server", server=True)
    tls = ("--tls-cert", str(server_cert.cert), "--tls-key", str(server_cert.key))
    server = ServerProcess(tmp_path, tls).start()
    try:
        reply = check(tls_channel(server.target, ca.cert_path), operator)
        assert reply.decision == pb.DECISION_ALLOW
        assert refused(server.channel(), operator) == grpc.StatusCode.UNAVAILABLE
        # A client that does not trust the server's CA refuses the server in turn.
        stranger = CertificateAuthority(tmp_path, "stranger")
        assert refused(tls_channel(server.target, stranger.cert_path), operator) == (
            grpc.StatusCode.UNAVAILABLE
        )
        assert health(server, "--tls-ca", str(ca.cert_path)) == 0
        assert health(server) == 1  # plaintext health check
        image = tmp_path / "upload.png"
        image.write_bytes(encode(np.indices((64, 64)).sum(axis=0).astype(np.uint8)))
        out = run_cli(
            "check",
            str(image),
            "--target",
            server.target,
            "--key",
            operator,
            "--tls-ca",
            str(ca.cert_path),
        )
        assert "decision: ALLOW" in out.stdout
    finally:
        assert server.stop() == 0
    assert "serves TLS only" in server.log()


def test_mutual_tls_refuses_clients_without_a_certificate_from_the_ca(tmp_path, ca) -> None:
    operator = add_key(tmp_path, "operator", "op")
    server_cert = ca.issue("server", server=True)
    client = ca.issue("forum", server=False)
    impostor = CertificateAuthority(tmp_path, "other").issue("forum", server=False)
    server = ServerProcess(
        tmp_path,
        (
            "--tls-cert",
            str(server_cert.cert),
            "--tls-key",
            str(server_cert.key),
            "--tls-client-ca",
            str(ca.cert_path),
        ),
    ).start()
    try:
        assert check(tls_channel(server.target, ca.cert_path, client), operator).decision == (
            pb.DECISION_ALLOW
        )
        assert refused(tls_channel(server.target, ca.cert_path), operator) == (
            grpc.StatusCode.UNAVAILABLE
        )
        assert refused(tls_channel(server.target, ca.cert_path, impostor), operator) == (
            grpc.StatusCode.UNAVAILABLE
        )
        assert refused(server.channel(), operator) == grpc.StatusCode.UNAVAILABLE
        # The accepted client still needs an API key: mTLS admits, keys authorise.
        channel = tls_channel(server.target, ca.cert_path, client)
        with channel, pytest.raises(grpc.RpcError) as err:
            Stubs(channel).match.CheckUpload(pb.CheckUploadRequest(hashes=[RANDOM_PDQ]))
        assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
        ca_flag = ("--tls-ca", str(ca.cert_path))
        assert health(server, *ca_flag) == 1
        client_flags = ("--tls-cert", str(client.cert), "--tls-key", str(client.key))
        assert health(server, *ca_flag, *client_flags) == 0
        impostor_flags = ("--tls-cert", str(impostor.cert), "--tls-key", str(impostor.key))
        assert health(server, *ca_flag, *impostor_flags) == 1
    finally:
        assert server.stop() == 0


def test_tls_settings_are_checked_before_serving(tmp_path, ca) -> None:
    server_cert = ca.issue("server", server=True)
    half = run_cli(
        "serve", "--data-dir", str(tmp_path), "--tls-cert", str(server_cert.cert), check=False
    )
    assert half.returncode != 0 and "tls_cert and tls_key go together" in half.stderr
    missing = run_cli(
        "serve",
        "--data-dir",
        str(tmp_path),
        "--port",
        "0",
        "--metrics-port",
        "0",
        "--tls-cert",
        str(tmp_path / "nope.pem"),
        "--tls-key",
        str(server_cert.key),
        check=False,
    )
    assert missing.returncode != 0
    assert "cannot read the TLS certificate (tls_cert)" in missing.stderr
    stranger_key = ca.issue("other", server=True).key
    mismatched = run_cli(
        *("serve", "--data-dir", str(tmp_path), "--port", "0", "--metrics-port", "0"),
        *("--tls-cert", str(server_cert.cert), "--tls-key", str(stranger_key)),
        check=False,
    )
    assert mismatched.returncode != 0 and "does not belong to the certificate" in (
        mismatched.stderr
    )
    assert "Traceback" not in mismatched.stderr


def install(issued: Issued, cert: Path, key: Path) -> None:
    """Put a certificate and key in place as a renewal tool does: write beside, rename."""
    for source, target in ((issued.key, key), (issued.cert, cert)):
        staging = target.with_suffix(".new")
        staging.write_bytes(source.read_bytes())
        os.replace(staging, target)


def served_expiry(server: ServerProcess) -> float:
    text = urllib.request.urlopen(f"http://127.0.0.1:{server.metrics_port}/metrics").read()
    found = re.search(rb"^hashguard_tls_certificate_expiry_timestamp_seconds (\S+)$", text, re.M)
    assert found, "the expiry gauge is missing"
    return float(found.group(1))


def expiry(issued: Issued) -> float:
    certificate = x509.load_pem_x509_certificate(issued.cert.read_bytes())
    return certificate.not_valid_after_utc.timestamp()


def test_a_renewed_certificate_is_served_without_a_restart(tmp_path, ca) -> None:
    operator = add_key(tmp_path, "operator", "op")
    cert, key = tmp_path / "live-cert.pem", tmp_path / "live-key.pem"
    first = ca.issue("server", server=True)
    install(first, cert, key)
    server = ServerProcess(tmp_path, ("--tls-cert", str(cert), "--tls-key", str(key))).start()
    try:
        assert check(tls_channel(server.target, ca.cert_path), operator).decision == (
            pb.DECISION_ALLOW
        )
        assert served_expiry(server) == expiry(first)

        renewed_ca = CertificateAuthority(tmp_path, "renewed")
        renewed = renewed_ca.issue("server", server=True)
        install(renewed, cert, key)
        # The next connection gets the renewed certificate: a client that trusts only
        # the new CA is served, one that trusts only the old CA refuses the server.
        assert check(tls_channel(server.target, renewed_ca.cert_path), operator).decision == (
            pb.DECISION_ALLOW
        )
        assert refused(tls_channel(server.target, ca.cert_path), operator) == (
            grpc.StatusCode.UNAVAILABLE
        )
        assert served_expiry(server) == expiry(renewed)

        # A key that does not belong to the certificate is skipped: the renewed pair
        # keeps serving.
        key.write_bytes(renewed_ca.issue("other", server=True).key.read_bytes())
        assert check(tls_channel(server.target, renewed_ca.cert_path), operator).decision == (
            pb.DECISION_ALLOW
        )
    finally:
        assert server.stop() == 0
    log = server.log()
    assert "TLS certificate reloaded" in log
    assert "does not belong to the certificate" in log and "still serving the previous" in log
