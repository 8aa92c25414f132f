"""A throw-away PKI for the integration tests, made with the openssl CLI.

make_pki(directory) creates a test CA and three leaf certificates (for the
fake upstream, the fake token endpoint and subrelay's own listeners), each
valid for DNS:localhost and IP:127.0.0.1.
"""
import os
import shutil
import subprocess
from dataclasses import dataclass

LEAF_NAMES = ("upstream", "token", "relay", "graph")

_LEAF_EXT = """\
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = DNS:localhost, IP:127.0.0.1
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid, issuer
"""


@dataclass
class Leaf:
    cert: str
    key: str


@dataclass
class Pki:
    directory: str
    ca_cert: str
    ca_key: str
    leaves: dict

    def leaf(self, name):
        return self.leaves[name]


def openssl_binary():
    path = shutil.which("openssl")
    if path is None:
        raise RuntimeError("the openssl command line tool is required")
    return path


def _run(args, cwd):
    result = subprocess.run([openssl_binary()] + args, cwd=cwd,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if result.returncode != 0:
        raise RuntimeError("openssl %s failed: %s" % (
            " ".join(args[:2]), result.stderr.decode(errors="replace")))


def issue_leaf(directory, ca_cert, ca_key, name):
    """A new key and a certificate from the CA for localhost and 127.0.0.1,
    as DIRECTORY/NAME.key and NAME.pem (replaced if they exist)."""
    key = os.path.join(directory, name + ".key")
    csr = os.path.join(directory, name + ".csr")
    cert = os.path.join(directory, name + ".pem")
    _run(["req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
          "-nodes", "-keyout", key, "-out", csr,
          "-subj", "/O=subrelay tests/CN=localhost"], directory)
    _run(["x509", "-req", "-in", csr, "-CA", ca_cert, "-CAkey", ca_key,
          "-CAcreateserial", "-days", "2", "-extfile", os.path.join(directory, "leaf.ext"),
          "-out", cert], directory)
    return Leaf(cert=cert, key=key)


def make_pki(directory):
    os.makedirs(directory, exist_ok=True)
    ca_cert = os.path.join(directory, "ca.pem")
    ca_key = os.path.join(directory, "ca.key")
    _run(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
          "-nodes", "-keyout", ca_key, "-out", ca_cert, "-days", "3",
          "-subj", "/O=subrelay tests/CN=subrelay test CA",
          "-addext", "basicConstraints=critical,CA:TRUE",
          "-addext", "keyUsage=critical,keyCertSign,cRLSign",
          "-addext", "subjectKeyIdentifier=hash"], directory)
    ext_file = os.path.join(directory, "leaf.ext")
    with open(ext_file, "w") as f:
        f.write(_LEAF_EXT)
    leaves = {}
    for name in LEAF_NAMES:
        leaves[name] = issue_leaf(directory, ca_cert, ca_key, name)
    return Pki(directory=directory, ca_cert=ca_cert, ca_key=ca_key, leaves=leaves)


if __name__ == "__main__":
    import sys
    import tempfile
    target = sys.argv[1] if len(sys.argv) > 1 else tempfile.mkdtemp(prefix="subrelay-pki-")
    p = make_pki(target)
    print(p)
