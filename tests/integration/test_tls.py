"""Serving HTTPS and WSS directly (serve --ssl-certfile/--ssl-keyfile): HSTS, and sockets over TLS."""

from __future__ import annotations

import datetime
import ssl
from collections.abc import Callable
from pathlib import Path

import httpx
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.conftest import LiveServer
from tests.integration.wsclient import WsClient


def _self_signed(folder: Path) -> tuple[str, str]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    certfile, keyfile = folder / "cert.pem", folder / "key.pem"
    certfile.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    keyfile.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return str(certfile), str(keyfile)


async def test_https_sends_hsts_and_sockets_work_over_tls(
    start_server: Callable[..., LiveServer], tmp_path: Path
) -> None:
    server = start_server(tls=_self_signed(tmp_path))
    with httpx.Client(base_url=server.url, verify=False) as client:
        page = client.get("/")
        assert page.status_code == 200
        assert page.headers["strict-transport-security"].startswith("max-age=")
        guest = client.post("/api/auth/guest", json={"display_name": "Tina TLS"}).json()
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    socket = await WsClient.connect(server.ws_url, guest["token"], ssl=context)
    await socket.send({"type": "ping"})
    assert (await socket.expect("pong"))["type"] == "pong"
    await socket.close()
