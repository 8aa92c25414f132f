"""Credentials an app registration holds, made with python3-cryptography for
the OAuth tests: an RSA key's PEM, the self-signed certificate one uploads to
Entra ID as the app's certificate credential, and a Google service account's
JSON key file.
"""
import datetime
import json
import os

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import NameOID

GOOGLE_KEY_ID = "0123456789abcdef0123456789abcdef01234567"


def key_pem(key):
    """The private key as unencrypted PKCS#8 PEM (bytes)."""
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def write_private(path, data, mode=0o600):
    with open(path, "wb" if isinstance(data, bytes) else "w") as f:
        f.write(data)
    os.chmod(path, mode)
    return path


def app_certificate(key, directory, common_name="subrelay test app"):
    """A self-signed certificate for `key`, valid around now, written to
    DIRECTORY/app-cert.pem; returns (DER bytes, path)."""
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=2))
            .sign(key, hashes.SHA256()))
    path = os.path.join(directory, "app-cert.pem")
    with open(path, "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))
    return cert.public_bytes(serialization.Encoding.DER), path


def google_key_file(key, path, client_email, key_id=GOOGLE_KEY_ID):
    """A service account key in Google's JSON format, written 0600 to `path`;
    returns the PEM inside (str)."""
    pem = key_pem(key).decode()
    write_private(path, json.dumps({
        "type": "service_account", "project_id": "subrelay-test",
        "private_key_id": key_id, "private_key": pem, "client_email": client_email,
        "client_id": "109876543210987654321", "token_uri": "https://oauth2.googleapis.com/token"}))
    return pem
