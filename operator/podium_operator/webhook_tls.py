"""A self-signed certificate for the admission webhook, when no cert-manager certificate is mounted.

kopf can make one too, but through ``certbuilder``/``oscrypto``, which cannot load OpenSSL 3.0.10 and
later; ``cryptography`` can. The certificate is its own CA: kopf puts it in the webhook's caBundle.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from podium_operator.settings import WebhookConfig

VALIDITY = datetime.timedelta(days=365)


@dataclass(frozen=True)
class TlsFiles:
    """What kopf.WebhookServer serves TLS with; no ``cafile`` means the certificate is its own CA."""

    certfile: str
    keyfile: str
    cafile: str | None = None


def tls_files(webhook: WebhookConfig) -> TlsFiles:
    """The mounted certificate, or a self-signed one made now if none is mounted."""
    if not webhook.cert_dir:
        assert webhook.host is not None
        return write_self_signed([webhook.host, "localhost"], Path(tempfile.mkdtemp(prefix="podium-webhook-")))
    ca = os.path.join(webhook.cert_dir, "ca.crt")
    return TlsFiles(os.path.join(webhook.cert_dir, "tls.crt"), os.path.join(webhook.cert_dir, "tls.key"),
                    ca if os.path.exists(ca) else None)


def write_self_signed(hostnames: list[str], directory: Path) -> TlsFiles:
    """Write ``tls.crt``/``tls.key`` for ``hostnames`` (DNS names or IPs)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostnames[0][:64])])
    now = datetime.datetime.now(datetime.UTC)
    names: list[x509.GeneralName] = []
    for host in dict.fromkeys(hostnames):
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + VALIDITY)
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(key, hashes.SHA256())
    )
    directory.mkdir(parents=True, exist_ok=True)
    certfile, keyfile = directory / "tls.crt", directory / "tls.key"
    keyfile.touch(mode=0o600)
    keyfile.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()))
    certfile.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    return TlsFiles(str(certfile), str(keyfile))
