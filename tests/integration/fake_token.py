#!/usr/bin/python3
"""A fake identity platform (Microsoft Entra ID and Google) for the tests.

Runs as its own process:

    fake_token.py --port P --cert C --key K --state-dir D \\
        --client-id ID --client-secret-file F [options below]

It serves HTTPS on loopback and really checks what it is sent, so that a
client which gets a token from it would get one from the real platform.

Microsoft, POST /<tenant>/oauth2/v2.0/token (Content-Type
application/x-www-form-urlencoded, every field at most once, nothing
unexpected):

  * client_credentials with client_secret (the default, as always) or, once
    --client-cert registers a certificate, with client_assertion_type=
    urn:ietf:params:oauth:client-assertion-type:jwt-bearer and a signed
    client_assertion (PS256 with x5t#S256, or RS256 with x5t); exactly one
    of the two credentials. Scope https://outlook.office365.com/.default.
  * refresh_token (delegated): scope exactly
    "https://outlook.office.com/SMTP.Send offline_access"; a public client
    (no credential) unless --confidential-refresh. Every success rotates the
    refresh token; the valid one is kept in STATE/refresh-state.json.
  * urn:ietf:params:oauth:grant-type:device_code, after a POST to
    /<tenant>/oauth2/v2.0/devicecode (client_id, scope).

Google, POST /token (only with --google-service-account or
--google-client-id): the JWT bearer grant of a service account and the
refresh_token grant (Google does not rotate refresh tokens).

Refusals answer as the real platform does. The AADSTS codes this fake picks
where the platform offers a choice:

  invalid_client 7000218  neither client_secret nor client_assertion
  invalid_request 90014   both client_secret and client_assertion
  invalid_client 7000215  wrong client secret
  invalid_client 50027    client_assertion is not a well-formed JWT, or lacks jti
  invalid_client 700027   assertion signature, alg, typ or thumbprint wrong, no
                          certificate registered, or jti already used (replay)
  invalid_client 700023   assertion aud is not this token URL
  invalid_client 700021   assertion iss or sub is not the client_id
  invalid_client 700024   assertion expired, not yet valid, or lives > 600 s
  invalid_client 700025   public client presented a credential (refresh grant)
  invalid_grant 70008     refresh token rotated out (already redeemed once)
  invalid_grant 50173     refresh token revoked (--revoke-refresh-token, control)
  invalid_grant 9002313   refresh token never issued here
  invalid_grant 54005     device code already redeemed

Test-only controls:
  --fail-first N   the first N token requests answer 503 (AADSTS50196)
  --errors SPEC    comma-separated, consumed one per token request (after
                   --fail-first): an AADSTS code from ERROR_CATALOGUE,
                   "hang" (never answer), "http500", "http429[:SECONDS]"
  STATE/control.json, read and removed at the next request:
                   {"revoke": true, "google_revoke": true, "errors": "SPEC"}

State dir contents:
  ready                  written once the port listens
  token-counters.json    requests / issued / refused / unavailable, plus
                         grants, issued_by_grant, refusals (by reason),
                         device_poll_violations, hung, scripted
  token.log              one line per request: outcome, grant and reason
                         (tokens appear only as a length and short hash)
  tokens.txt             issued access tokens, one a line (the fake
                         upstream accepts only these)
  token-scopes.txt       "TOKEN SCOPE" a line: what each access token was issued
                         for (the fake Graph endpoint accepts only Graph's)
  refresh-state.json     Microsoft refresh token state (current, retired, revoked)
  google-refresh-state.json  the same for Google
"""
import argparse
import base64
import binascii
import datetime
import hashlib
import http.server
import json
import os
import re
import secrets
import signal
import ssl
import sys
import threading
import time
import traceback
import urllib.parse
import uuid
from dataclasses import dataclass

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

SCOPE = "https://outlook.office365.com/.default"
GRAPH_SCOPE = "https://graph.microsoft.com/.default"   # client_credentials for Microsoft Graph
DELEGATED_SCOPE = "https://outlook.office.com/SMTP.Send offline_access"
DELEGATED_SCOPE_GRANTED = "https://outlook.office.com/SMTP.Send"
GOOGLE_SCOPE = "https://mail.google.com/"

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
JWT_BEARER_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
VERIFICATION_URI = "https://microsoft.com/devicelogin"

CLOCK_SKEW = 300              # seconds Entra tolerates on nbf
MAX_ASSERTION_LIFETIME = 600  # Entra refuses client assertions living longer
MAX_GOOGLE_LIFETIME = 3600    # Google's limit for a service account JWT
DEVICE_CODE_LIFETIME = 900
POLL_TOLERANCE = 0.05         # timer jitter forgiven when judging poll intervals

GRANTS = ("client_credentials_secret", "client_credentials_assertion", "refresh_token",
          "device_code", "jwt_bearer", "google_refresh_token")

JSON = "application/json; charset=utf-8"
CERT_DOCS = ("Review the documentation at https://docs.microsoft.com/azure/active-directory/"
             "develop/active-directory-certificate-credentials .")

# Scripted failures (--errors): code -> (HTTP status, error, description).
# Descriptions follow Entra's wording; {client_id}, {tenant}, {now} are filled in.
ERROR_CATALOGUE = {
    50196: (503, "temporarily_unavailable", "The server is temporarily unavailable."),
    7000222: (401, "invalid_client",
              "The provided client secret keys for app '{client_id}' are expired. Visit the Azure "
              "portal to create new keys for your app: https://aka.ms/NewClientSecret, or consider "
              "using certificate credentials for added security: https://aka.ms/certCreds."),
    700016: (400, "unauthorized_client",
             "Application with identifier '{client_id}' was not found in the directory '{tenant}'. "
             "This can happen if the application has not been installed by the administrator of "
             "the tenant or consented to by any user in the tenant. You may have sent your "
             "authentication request to the wrong tenant."),
    90002: (400, "invalid_request",
            "Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID and are "
            "signing into the correct cloud. Check with your subscription administrator, this may "
            "happen if there are no active subscriptions for the tenant."),
    500011: (400, "invalid_resource",
             "The resource principal named https://outlook.office365.com was not found in the "
             "tenant named {tenant}. This can happen if the application has not been installed by "
             "the administrator of the tenant or consented to by any user in the tenant. You might "
             "have sent your authentication request to the wrong tenant."),
    65001: (400, "invalid_grant",
            "The user or administrator has not consented to use the application with ID "
            "'{client_id}' named 'subrelay'. Send an interactive authorization request for this "
            "user and resource."),
    70011: (400, "invalid_scope",
            "The provided request must include a 'scope' input parameter. The provided value for "
            "the input parameter 'scope' is not valid."),
    53003: (400, "invalid_grant",
            "Access has been blocked by Conditional Access policies. The access policy does not "
            "allow token issuance."),
    530035: (400, "invalid_grant",
             "Access has been blocked by security defaults. This is due to the request using "
             "legacy auth or being deemed unsafe by security defaults policies."),
    7000215: (401, "invalid_client",
              "Invalid client secret provided. Ensure the secret being sent in the request is the "
              "client secret value, not the client secret ID, for a secret added to app "
              "'{client_id}'."),
    70008: (400, "invalid_grant",
            "The provided authorization code or refresh token has expired due to inactivity. Send "
            "a new interactive authorization request for this user and resource."),
    700082: (400, "invalid_grant",
             "The refresh token has expired due to inactivity. The token was issued on {now} and "
             "was inactive for 90.00:00:00."),
    50173: (400, "invalid_grant",
            "The provided grant has expired due to it being revoked, a fresh auth token is needed. "
            "The user might have changed or reset their password. The grant was issued on '{now}' "
            "and the TokensValidFrom date (before which tokens are not valid) for this user is "
            "'{now}'."),
    70043: (400, "invalid_grant",
            "The refresh token has expired or is invalid due to sign-in frequency checks by "
            "conditional access. The token was issued on {now} and the maximum allowed lifetime "
            "for this request is 3600."),
    700027: (401, "invalid_client", "Client assertion failed signature validation."),
    700024: (401, "invalid_client", "Client assertion is not within its valid time range."),
    7000218: (401, "invalid_client",
              "The request body must contain the following parameter: 'client_assertion' or "
              "'client_secret'."),
}


# ---------------------------------------------------------------- small helpers

def write_atomically(path, data):
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def b64url(raw):
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def b64url_decode(text):
    """Strict: JWTs use unpadded base64url; anything else is malformed."""
    if not re.fullmatch(r"[A-Za-z0-9_-]*", text):
        raise ValueError("not base64url")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except binascii.Error as e:
        raise ValueError(str(e)) from e


def short_hash(secret):
    """What the log may say about a token: enough to correlate, never enough to use."""
    return "sha256:" + hashlib.sha256(secret.encode()).hexdigest()[:12]


def describe(token):
    return "%d chars %s" % (len(token), short_hash(token))


def utc_text(when=None):
    moment = (datetime.datetime.fromtimestamp(when, datetime.timezone.utc) if when is not None
              else datetime.datetime.now(datetime.timezone.utc))
    return moment.strftime("%Y-%m-%d %H:%M:%SZ")


def make_token():
    """A JWT-shaped random token of about 1500 characters."""
    header = b64url(b'{"typ":"JWT","nonce":"' + secrets.token_hex(16).encode() +
                    b'","alg":"RS256","x5t":"test","kid":"test"}')
    payload = b64url(secrets.token_bytes(800))
    signature = b64url(secrets.token_bytes(256))
    return "%s.%s.%s" % (header, payload, signature)


def make_refresh_token():
    """Entra refresh tokens are opaque, long, and start with a version digit."""
    return "1.AQ" + b64url(secrets.token_bytes(540))


def make_google_token():
    return "ya29.c." + b64url(secrets.token_bytes(180))


def is_number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool)


# ---------------------------------------------------------------- replies

@dataclass
class Reply:
    """What to answer and what to record about it."""
    status: int
    body: object
    reason: str = "ok"
    detail: str = ""
    headers: tuple = ()
    content_type: str = JSON
    access_token: str = None
    refresh_token: str = None
    scope: str = None            # what access_token was issued for
    hang: bool = False
    device_code_issued: bool = False


class Refused(Exception):
    """Raised by any check; carries the reply that refuses the request."""

    def __init__(self, reply):
        super().__init__(reply.reason)
        self.reply = reply


def aad_body(error, code, description):
    now = datetime.datetime.now(datetime.timezone.utc)
    trace, correlation = str(uuid.uuid4()), str(uuid.uuid4())
    return {
        "error": error,
        "error_description": "AADSTS%d: %s\r\nTrace ID: %s\r\nCorrelation ID: %s\r\nTimestamp: %s"
                             % (code, description, trace, correlation,
                                now.strftime("%Y-%m-%d %H:%M:%SZ")),
        "error_codes": [code],
        "timestamp": now.strftime("%Y-%m-%d %H:%M:%SZ"),
        "trace_id": trace,
        "correlation_id": correlation,
        "error_uri": "https://login.microsoftonline.com/error?code=%d" % code,
    }


def aad(status, error, code, description, reason, detail=""):
    """A Refused exception answering like Entra ID."""
    return Refused(Reply(status, aad_body(error, code, description), reason, detail))


def google(status, error, description, reason, detail=""):
    """A Refused exception answering like Google's token endpoint."""
    return Refused(Reply(status, {"error": error, "error_description": description}, reason, detail))


def as_google(reply):
    """Google's token endpoint does not speak AADSTS: keep status and error only."""
    if isinstance(reply.body, dict) and "error_codes" in reply.body:
        description = reply.body["error_description"].split("\r\n")[0].split(": ", 1)[-1]
        reply.body = {"error": reply.body["error"], "error_description": description}
    return reply


# ---------------------------------------------------------------- forms

class Form:
    """A parsed application/x-www-form-urlencoded body that remembers how
    often each field came, because the platform refuses repeated fields."""

    def __init__(self, pairs):
        self.names = [k for k, _ in pairs]
        self.values = dict(pairs)

    def count(self, name):
        return self.names.count(name)

    def has(self, name):
        return name in self.values

    def get(self, name):
        return self.values.get(name)

    def check(self, required, optional, missing, unexpected):
        """Each required field exactly once, optional ones at most once, no
        others. missing(name) and unexpected(names) build the Refused."""
        for name in required:
            if self.count(name) != 1:
                raise missing(name)
        for name in optional:
            if self.count(name) > 1:
                raise missing(name)
        extra = sorted(set(self.names) - set(required) - set(optional))
        if extra:
            raise unexpected(extra)


def aad_missing(name):
    return aad(400, "invalid_request", 900144,
               "The request body must contain the following parameter: '%s'." % name,
               "field_count", "field %s missing or repeated" % name)


def aad_unexpected(names):
    return aad(400, "invalid_request", 90014, "Unexpected parameters in the request.",
               "extra_fields", "extra fields %s" % names)


def google_missing(name):
    return google(400, "invalid_request", "Missing required parameter: %s" % name,
                  "field_count", "field %s missing or repeated" % name)


def google_unexpected(names):
    return google(400, "invalid_request", "Unexpected parameters: %s" % ", ".join(names),
                  "extra_fields", "extra fields %s" % names)


def parse_pairs(raw):
    return urllib.parse.parse_qsl(raw.decode("ascii"), keep_blank_values=True, strict_parsing=True)


# ---------------------------------------------------------------- JWTs

@dataclass
class Jwt:
    header: dict
    claims: dict
    signing_input: bytes
    signature: bytes


def parse_jwt(text):
    """Splits and decodes a compact JWS; ValueError if it is not one."""
    parts = text.split(".")
    if len(parts) != 3:
        raise ValueError("%d parts" % len(parts))
    header = json.loads(b64url_decode(parts[0]))
    claims = json.loads(b64url_decode(parts[1]))
    if not isinstance(header, dict) or not isinstance(claims, dict):
        raise ValueError("header or claims not a JSON object")
    return Jwt(header, claims, (parts[0] + "." + parts[1]).encode("ascii"), b64url_decode(parts[2]))


def verify_signature(public_key, jwt):
    """True when the signature is valid for the header's alg (PS256 or RS256 only)."""
    if jwt.header.get("alg") == "PS256":
        pad = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32)
    else:
        pad = padding.PKCS1v15()
    try:
        public_key.verify(jwt.signature, jwt.signing_input, pad, hashes.SHA256())
        return True
    except (InvalidSignature, ValueError):
        return False


class Certificate:
    """The app's registered certificate credential (Entra's keyCredentials)."""

    def __init__(self, path):
        with open(path, "rb") as f:
            cert = x509.load_pem_x509_certificate(f.read())
        if not isinstance(cert.public_key(), rsa.RSAPublicKey):
            raise SystemExit("--client-cert must hold an RSA certificate (Entra signs with RSA)")
        der = cert.public_bytes(serialization.Encoding.DER)
        self.public_key = cert.public_key()
        self.x5t = b64url(hashlib.sha1(der).digest())
        self.x5t_s256 = b64url(hashlib.sha256(der).digest())


class AssertionChecker:
    """Verifies a client_assertion as Entra ID does; raises Refused."""

    def __init__(self, certificate, client_id, audience):
        self.certificate = certificate
        self.client_id = client_id
        self.audience = audience
        self.seen_jti = set()

    def verify(self, text, now):
        jwt = self._parse(text)
        self._check_header(jwt)
        if not verify_signature(self.certificate.public_key, jwt):
            raise self._bad_key("Client assertion failed signature validation.",
                                "assertion_signature")
        self._check_claims(jwt.claims, now)
        self.seen_jti.add(jwt.claims["jti"])

    def _parse(self, text):
        if self.certificate is None:
            raise aad(401, "invalid_client", 700027,
                      "The certificate with identifier used to sign the client assertion is not "
                      "registered on application. [Reason - No certificate is registered for "
                      "app '%s'.]" % self.client_id, "assertion_no_certificate")
        try:
            return parse_jwt(text)
        except (ValueError, UnicodeDecodeError) as e:
            raise aad(401, "invalid_client", 50027, "JWT token is invalid or malformed.",
                      "assertion_malformed", str(e)) from e

    def _bad_key(self, description, reason, detail=""):
        return aad(401, "invalid_client", 700027, description, reason, detail)

    def _check_header(self, jwt):
        alg, typ = jwt.header.get("alg"), jwt.header.get("typ")
        if alg not in ("PS256", "RS256"):
            raise self._bad_key("Client assertion contains an invalid signature. [Reason - The "
                                "signing algorithm '%s' is not supported.]" % alg,
                                "assertion_alg", "alg %r" % alg)
        if typ != "JWT":
            raise self._bad_key("Client assertion contains an invalid signature. [Reason - The "
                                "token type '%s' is not JWT.]" % typ, "assertion_typ", "typ %r" % typ)
        name, expected = (("x5t#S256", self.certificate.x5t_s256) if alg == "PS256"
                          else ("x5t", self.certificate.x5t))
        if jwt.header.get(name) != expected:
            raise self._bad_key(
                "The certificate with identifier used to sign the client assertion is not "
                "registered on application. [Reason - The key was not found., Thumbprint of key "
                "used by client: '%s', Please visit the Azure Portal, Graph Explorer or directly "
                "use MS Graph to see configured keys for app Id '%s'.]"
                % (jwt.header.get(name), self.client_id), "assertion_thumbprint",
                "%s does not match the registered certificate" % name)

    def _check_claims(self, claims, now):
        if claims.get("aud") != self.audience:
            raise aad(401, "invalid_client", 700023,
                      "Client assertion audience claim does not match Realm issuer. " + CERT_DOCS,
                      "assertion_audience", "aud %r" % claims.get("aud"))
        if claims.get("iss") != self.client_id or claims.get("sub") != self.client_id:
            raise aad(401, "invalid_client", 700021,
                      "Client assertion application identifier doesn't match 'client_id' "
                      "parameter. " + CERT_DOCS, "assertion_issuer",
                      "iss %r sub %r" % (claims.get("iss"), claims.get("sub")))
        self._check_times(claims, now)
        jti = claims.get("jti")
        if not isinstance(jti, str) or not jti:
            raise aad(401, "invalid_client", 50027, "JWT token is invalid or malformed.",
                      "assertion_jti_missing")
        if jti in self.seen_jti:
            raise self._bad_key("Client assertion is invalid. [Reason - The jti claim was already "
                                "used by an earlier assertion; replayed assertions are refused.]",
                                "assertion_jti_reused")

    def _check_times(self, claims, now):
        exp, nbf, iat = claims.get("exp"), claims.get("nbf"), claims.get("iat")
        start = iat if is_number(iat) else nbf

        def refuse(reason, why):
            return aad(401, "invalid_client", 700024,
                       "Client assertion is not within its valid time range. Current time: %s, "
                       "assertion valid from %s, expiry time of assertion %s. %s"
                       % (utc_text(now), utc_text(nbf) if is_number(nbf) else "(none)",
                          utc_text(exp) if is_number(exp) else "(none)", CERT_DOCS), reason, why)
        if not is_number(exp) or exp <= now:
            raise refuse("assertion_expired", "exp %r, now %d" % (exp, now))
        if nbf is not None and (not is_number(nbf) or nbf > now + CLOCK_SKEW):
            raise refuse("assertion_not_yet_valid", "nbf %r, now %d" % (nbf, now))
        if not is_number(start) or exp - start > MAX_ASSERTION_LIFETIME:
            raise refuse("assertion_lifetime", "exp - iat/nbf = %r" %
                         (exp - start if is_number(start) else None))


# ---------------------------------------------------------------- refresh tokens

class RefreshStore:
    """The refresh token a provider currently honours, kept in the state dir
    so that a restarted fake remembers it. With rotate, every redemption
    replaces it and the old one is retired (only its hash is kept)."""

    def __init__(self, path, initial, rotate):
        self.path = path
        self.rotate = rotate
        state = None
        try:
            with open(path) as f:
                state = json.load(f)
        except FileNotFoundError:
            pass
        if state is None:
            state = {"current": initial, "retired": [], "revoked": False}
        self.state = state
        self.save()

    def save(self):
        write_atomically(self.path, json.dumps(self.state, sort_keys=True).encode())

    def status(self, token):
        """'ok', 'revoked', 'retired' or 'unknown'."""
        if token and token == self.state["current"]:
            return "revoked" if self.state["revoked"] else "ok"
        if short_hash(token) in self.state["retired"]:
            return "retired"
        return "unknown"

    def redeem(self):
        """The refresh token to hand out after a successful redemption."""
        if not self.rotate:
            return self.state["current"]
        return self.install(make_refresh_token())

    def install(self, token):
        """token becomes the only valid one (a fresh sign-in or a rotation)."""
        if self.state["current"]:
            self.state["retired"].append(short_hash(self.state["current"]))
        self.state.update(current=token, revoked=False)
        self.save()
        return token

    def revoke(self):
        self.state["revoked"] = True
        self.save()


# ---------------------------------------------------------------- device flow

@dataclass
class DeviceSession:
    """One device authorization: how far its polling got and how fast it polls."""
    interval: float
    expires_at: float
    polls: int = 0
    pending_answered: int = 0
    slowed_down: bool = False
    last_poll: float = None
    finished: str = None          # "redeemed", "expired" or "declined"


class DeviceFlow:
    """RFC 8628 polling as the tests script it: --device-pending answers of
    authorization_pending, then one slow_down if asked, then the outcome.
    The gap between two polls of one device code is measured (the first
    poll is not); a gap shorter than the interval is a violation, and once
    slow_down was sent it is answered with slow_down again, each slow_down
    adding the increment to the interval."""

    def __init__(self, args):
        self.interval = args.device_interval
        self.pending = args.device_pending
        self.slow_down = args.device_slow_down
        self.increment = args.slow_down_increment
        self.outcome = args.device_outcome
        self.sessions = {}

    def start(self):
        device_code = "DAQABIQEAAAD" + b64url(secrets.token_bytes(96))
        self.sessions[device_code] = DeviceSession(self.interval,
                                                   time.monotonic() + DEVICE_CODE_LIFETIME)
        user_code = "".join(secrets.choice("BCDFGHJKLMNPQRSTVWXZ23456789") for _ in range(9))
        return {
            "user_code": user_code,
            "device_code": device_code,
            "verification_uri": VERIFICATION_URI,
            "expires_in": DEVICE_CODE_LIFETIME,
            "interval": self.interval,
            "message": "To sign in, use a web browser to open the page %s and enter the code %s "
                       "to authenticate." % (VERIFICATION_URI, user_code),
        }

    def poll(self, device_code, now):
        """Returns (answer, too_fast): answer is 'success' or an RFC 8628 error name."""
        session = self.sessions.get(device_code)
        if session is None:
            return "unknown", False
        too_fast = (session.last_poll is not None
                    and now - session.last_poll < session.interval - POLL_TOLERANCE)
        session.last_poll = now
        session.polls += 1
        return self._answer(session, now, too_fast), too_fast

    def _answer(self, session, now, too_fast):
        if session.finished:
            return session.finished
        if now > session.expires_at:
            session.finished = "expired"
            return "expired"
        if too_fast and session.slowed_down:
            session.interval += self.increment
            return "slow_down"
        if session.pending_answered < self.pending:
            session.pending_answered += 1
            return "authorization_pending"
        if self.slow_down and not session.slowed_down:
            session.slowed_down = True
            session.interval += self.increment
            return "slow_down"
        session.finished = {"success": "redeemed"}.get(self.outcome, self.outcome)
        return "success" if self.outcome == "success" else self.outcome


# ---------------------------------------------------------------- Google

class GoogleAccount:
    """A service account as Google knows it: the public half of a JSON key."""

    def __init__(self, path, subjects):
        with open(path) as f:
            key = json.load(f)
        private = serialization.load_pem_private_key(key["private_key"].encode(), password=None)
        self.public_key = private.public_key()
        self.key_id = key.get("private_key_id")
        self.client_email = key["client_email"]
        self.subjects = set(subjects)


def google_jwt_checks(account, audience, text, now):
    """Verifies a service account's JWT as Google does; raises Refused."""
    try:
        jwt = parse_jwt(text)
    except (ValueError, UnicodeDecodeError) as e:
        raise google(400, "invalid_grant", "Invalid JWT Signature.", "jwt_malformed", str(e)) from e
    kid = jwt.header.get("kid")
    if (jwt.header.get("alg") != "RS256" or (kid is not None and kid != account.key_id)
            or not verify_signature(account.public_key, jwt)):
        raise google(400, "invalid_grant", "Invalid JWT Signature.", "jwt_signature",
                     "alg %r kid %r" % (jwt.header.get("alg"), kid))
    claims = jwt.claims
    if claims.get("iss") != account.client_email:
        raise google(400, "invalid_grant", "Invalid grant: account not found", "jwt_issuer",
                     "iss %r" % claims.get("iss"))
    if claims.get("aud") != audience:
        raise google(400, "invalid_grant", "Invalid JWT: Failed audience check. The expected "
                     "value was %s" % audience, "jwt_audience", "aud %r" % claims.get("aud"))
    iat, exp = claims.get("iat"), claims.get("exp")
    if (not is_number(iat) or not is_number(exp) or iat > now + CLOCK_SKEW or exp <= now
            or exp <= iat or exp - iat > MAX_GOOGLE_LIFETIME):
        raise google(400, "invalid_grant", "Invalid JWT: Token must be a short-lived token (60 "
                     "minutes) and in a reasonable timeframe. Check your iat and exp values in "
                     "the JWT claim.", "jwt_time", "iat %r exp %r now %d" % (iat, exp, now))
    if claims.get("scope") != GOOGLE_SCOPE:
        raise google(400, "invalid_scope", "Invalid OAuth scope or ID token audience provided.",
                     "jwt_scope", "scope %r" % claims.get("scope"))
    if claims.get("sub") not in account.subjects:
        raise google(401, "unauthorized_client",
                     "Client is unauthorized to retrieve access tokens using this method, or "
                     "client not authorized for any of the scopes requested.", "jwt_subject",
                     "sub %r" % claims.get("sub"))


# ---------------------------------------------------------------- scripted errors

def parse_error_spec(spec):
    """'50196,hang,http429:3' -> ['50196', 'hang', 'http429:3']; ValueError if unknown."""
    entries = [e.strip() for e in spec.split(",") if e.strip()] if spec else []
    for entry in entries:
        if entry in ("hang", "http500", "http429"):
            continue
        if re.fullmatch(r"http429:\d+", entry):
            continue
        if entry.isdigit() and int(entry) in ERROR_CATALOGUE:
            continue
        raise ValueError("unknown scripted error %r (known: hang, http500, http429[:N], %s)"
                         % (entry, ", ".join(str(c) for c in sorted(ERROR_CATALOGUE))))
    return entries


def scripted_reply(entry, client_id, tenant):
    """The reply a scripted error entry stands for."""
    if entry == "hang":
        return Reply(0, None, "scripted_hang", hang=True)
    if entry == "http500":
        return Reply(500, b"<html><body><h1>500 Internal Server Error</h1></body></html>",
                     "scripted_http500", content_type="text/html; charset=utf-8")
    if entry.startswith("http429"):
        seconds = entry.split(":", 1)[1] if ":" in entry else "1"
        body = aad_body("temporarily_unavailable", 50196, "Too many requests; retry later.")
        return Reply(429, body, "scripted_http429", headers=(("Retry-After", seconds),))
    code = int(entry)
    status, error, template = ERROR_CATALOGUE[code]
    text = template.format(client_id=client_id, tenant=tenant, now=utc_text())
    return Reply(status, aad_body(error, code, text), "scripted_%d" % code)


# ---------------------------------------------------------------- the platform

def new_counters():
    return {"requests": 0, "issued": 0, "refused": 0, "unavailable": 0,
            "hung": 0, "scripted": 0, "device_codes_issued": 0, "device_poll_violations": 0,
            "grants": {g: 0 for g in GRANTS}, "issued_by_grant": {g: 0 for g in GRANTS},
            "refusals": {}}


class Platform:
    """Everything the fake knows and decides; the HTTP handler only moves bytes.
    Callers hold self.lock around handle() and account()."""

    def __init__(self, args):
        self.dir = args.state_dir
        self.tenant = args.tenant
        self.client_id = args.client_id
        self.client_secret = None
        if args.client_secret_file:
            with open(args.client_secret_file) as f:
                self.client_secret = f.read().strip("\r\n")
        self.expires_in = args.expires_in
        self.fail_first = args.fail_first
        self.errors = list(args.errors)
        self.confidential_refresh = args.confidential_refresh
        base = "https://%s:%d" % (args.host, args.port)
        self.token_path = "/%s/oauth2/v2.0/token" % self.tenant
        self.devicecode_path = "/%s/oauth2/v2.0/devicecode" % self.tenant
        self.google_audience = base + "/token"
        certificate = Certificate(args.client_cert) if args.client_cert else None
        self.assertions = AssertionChecker(certificate, self.client_id, base + self.token_path)
        self.refresh = RefreshStore(os.path.join(self.dir, "refresh-state.json"),
                                    read_text(args.refresh_token_file), rotate=True)
        if args.revoke_refresh_token:
            self.refresh.revoke()
        self.devices = DeviceFlow(args)
        self.google_account = (GoogleAccount(args.google_service_account, args.google_subject)
                               if args.google_service_account else None)
        self.google_client_id = args.google_client_id
        self.google_client_secret = read_text(args.google_client_secret_file)
        self.google_refresh = RefreshStore(os.path.join(self.dir, "google-refresh-state.json"),
                                           read_text(args.google_refresh_token_file), rotate=False)
        self.lock = threading.Lock()
        self.counters = new_counters()
        self.save()

    # -- bookkeeping

    def save(self):
        write_atomically(os.path.join(self.dir, "token-counters.json"),
                         json.dumps(self.counters, sort_keys=True).encode())

    def log(self, line):
        with open(os.path.join(self.dir, "token.log"), "a") as f:
            f.write(line + "\n")

    def record_token(self, token, scope):
        with open(os.path.join(self.dir, "tokens.txt"), "a") as f:
            f.write(token + "\n")
            f.flush()
            os.fsync(f.fileno())
        with open(os.path.join(self.dir, "token-scopes.txt"), "a") as f:
            f.write("%s %s\n" % (token, scope or "-"))
            f.flush()
            os.fsync(f.fileno())

    def account(self, reply, grant):
        """Counts, logs and records one answered (or held) request."""
        c = self.counters
        c["requests"] += 1
        if grant:
            c["grants"][grant] += 1
        if reply.reason.startswith("scripted_") or reply.reason == "fail_first":
            c["scripted"] += 1
        label = "grant=%s " % grant if grant else ""
        if reply.hang:
            c["hung"] += 1
            self.log("HUNG %s(scripted hang; no answer)" % label)
        elif reply.status == 200:
            self._account_success(reply, grant, label)
        else:
            c["unavailable" if reply.status >= 500 else "refused"] += 1
            c["refusals"][reply.reason] = c["refusals"].get(reply.reason, 0) + 1
            self.log("REFUSED %d %sreason=%s %s" % (reply.status, label, reply.reason, reply.detail))
        self.save()

    def _account_success(self, reply, grant, label):
        c = self.counters
        if reply.device_code_issued:
            c["device_codes_issued"] += 1
            self.log("DEVICECODE issued (interval %ss)" % reply.body["interval"])
            return
        c["issued"] += 1
        if grant:
            c["issued_by_grant"][grant] += 1
        self.record_token(reply.access_token, reply.scope)
        line = "ISSUED %saccess_token %s" % (label, describe(reply.access_token))
        if reply.refresh_token:
            line += " refresh_token %s" % describe(reply.refresh_token)
        self.log(line)

    # -- entry point

    def handle(self, path, content_type, raw):
        """Returns (Reply, grant or None) for one POST."""
        route = grant = None
        try:
            self.apply_control()
            route = self.route(path)
            grant = self.classify(route, raw)
            if route in ("token", "google"):
                self.consume_scripted()
            form = self.parse_form(content_type, raw)
            return self.dispatch(route, form), grant
        except Refused as refused:
            return (as_google(refused.reply) if route == "google" else refused.reply), grant

    def route(self, path):
        path = urllib.parse.urlsplit(path).path
        if path == self.token_path:
            return "token"
        if path == self.devicecode_path:
            return "devicecode"
        if path == "/token" and (self.google_account or self.google_client_id):
            return "google"
        raise Refused(Reply(404, {"error": "not_found"}, "path", "path %r" % path))

    def classify(self, route, raw):
        """Which grant a request is for (best effort, before any check)."""
        try:
            form = Form(parse_pairs(raw))
        except (ValueError, UnicodeDecodeError):
            return None
        grant_type = form.get("grant_type")
        if route == "google":
            return {JWT_BEARER_GRANT: "jwt_bearer",
                    "refresh_token": "google_refresh_token"}.get(grant_type)
        if route != "token":
            return None
        if grant_type == "client_credentials":
            return ("client_credentials_assertion" if form.has("client_assertion")
                    else "client_credentials_secret")
        return {"refresh_token": "refresh_token", DEVICE_GRANT: "device_code"}.get(grant_type)

    def apply_control(self):
        """STATE/control.json lets a running test revoke tokens or script errors."""
        path = os.path.join(self.dir, "control.json")
        try:
            with open(path) as f:
                control = json.load(f)
        except FileNotFoundError:
            return
        os.unlink(path)
        self.log("CONTROL %s" % sorted(control))
        unknown = set(control) - {"revoke", "google_revoke", "errors"}
        if unknown:
            raise Refused(Reply(500, {"error": "fake_control_error"}, "control",
                                "unknown control keys %s" % sorted(unknown)))
        if control.get("revoke"):
            self.refresh.revoke()
        if control.get("google_revoke"):
            self.google_refresh.revoke()
        if control.get("errors"):
            spec = control["errors"]
            self.errors += parse_error_spec(spec if isinstance(spec, str) else ",".join(spec))

    def consume_scripted(self):
        if self.fail_first > 0:
            self.fail_first -= 1
            raise aad(503, "temporarily_unavailable", 50196,
                      "The server is temporarily unavailable.", "fail_first")
        if self.errors:
            raise Refused(scripted_reply(self.errors.pop(0), self.client_id, self.tenant))

    def parse_form(self, content_type, raw):
        ctype = (content_type or "").split(";")[0].strip().lower()
        if ctype != "application/x-www-form-urlencoded":
            raise aad(400, "invalid_request", 900144,
                      "The request body must contain the following parameter: 'grant_type'.",
                      "content_type", "content type %r" % content_type)
        try:
            return Form(parse_pairs(raw))
        except (ValueError, UnicodeDecodeError) as e:
            raise aad(400, "invalid_request", 900144,
                      "The request body must contain the following parameter: 'grant_type'.",
                      "form", "body is not a url-encoded form") from e

    def dispatch(self, route, form):
        if route == "devicecode":
            return self.device_authorization(form)
        if route == "google":
            return self.google_token(form)
        if form.count("grant_type") != 1:
            raise aad_missing("grant_type")
        grant_type = form.get("grant_type")
        handler = {"client_credentials": self.client_credentials,
                   "refresh_token": self.refresh_grant,
                   DEVICE_GRANT: self.device_grant}.get(grant_type)
        if handler is None:
            raise aad(400, "unsupported_grant_type", 70003,
                      "The app requested an unsupported grant type '%s'." % grant_type,
                      "grant_type", "grant_type %r" % grant_type)
        return handler(form)

    # -- Microsoft grants

    def check_client_id(self, form):
        if form.get("client_id") != self.client_id:
            raise aad(400, "unauthorized_client", 700016,
                      "Application with identifier '%s' was not found in the directory '%s'."
                      % (form.get("client_id"), self.tenant), "client_id", "unknown client_id")

    def check_credential(self, form):
        """Exactly one of client_secret and client_assertion, and a valid one."""
        has_secret = form.has("client_secret")
        has_assertion = form.has("client_assertion") or form.has("client_assertion_type")
        if has_secret and has_assertion:
            raise aad(400, "invalid_request", 90014,
                      "Only one client credential may be presented: the request has both "
                      "'client_secret' and 'client_assertion'.", "both_credentials")
        if not has_secret and not has_assertion:
            raise aad(401, "invalid_client", 7000218,
                      "The request body must contain the following parameter: 'client_assertion' "
                      "or 'client_secret'.", "no_credential")
        if has_secret:
            self.check_secret(form.get("client_secret"))
        else:
            self.check_assertion(form)

    def check_secret(self, secret):
        if self.client_secret is None or secret != self.client_secret:
            raise aad(401, "invalid_client", 7000215,
                      "Invalid client secret provided. Ensure the secret being sent in the "
                      "request is the client secret value, not the client secret ID, for a "
                      "secret added to app '%s'." % self.client_id,
                      "wrong_secret", "wrong client_secret (%d chars)" % len(secret))

    def check_assertion(self, form):
        for name in ("client_assertion_type", "client_assertion"):
            if not form.has(name):
                raise aad_missing(name)
        if form.get("client_assertion_type") != ASSERTION_TYPE:
            raise aad(400, "invalid_request", 90014,
                      "The value of 'client_assertion_type' must be %s." % ASSERTION_TYPE,
                      "assertion_type", "client_assertion_type %r" % form.get("client_assertion_type"))
        self.assertions.verify(form.get("client_assertion"), time.time())

    def client_credentials(self, form):
        form.check(("grant_type", "client_id", "scope"),
                   ("client_secret", "client_assertion_type", "client_assertion"),
                   aad_missing, aad_unexpected)
        self.check_client_id(form)
        self.check_credential(form)
        if form.get("scope") not in (SCOPE, GRAPH_SCOPE):
            raise aad(400, "invalid_scope", 1002012,
                      "The provided value for scope %s is not valid. Client credential flows "
                      "must have a scope value with /.default suffixed to the resource "
                      "identifier (application ID URI)." % form.get("scope"),
                      "scope", "scope %r" % form.get("scope"))
        token = make_token()
        return Reply(200, {"token_type": "Bearer", "expires_in": self.expires_in,
                           "ext_expires_in": self.expires_in, "access_token": token},
                     access_token=token, scope=form.get("scope"))

    def delegated_reply(self, refresh_token):
        token = make_token()
        return Reply(200, {"token_type": "Bearer", "scope": DELEGATED_SCOPE_GRANTED,
                           "expires_in": self.expires_in, "ext_expires_in": self.expires_in,
                           "access_token": token, "refresh_token": refresh_token},
                     access_token=token, refresh_token=refresh_token)

    def check_delegated_scope(self, form):
        if form.get("scope") != DELEGATED_SCOPE:
            raise aad(400, "invalid_scope", 70011,
                      "The provided request must include a 'scope' input parameter. The provided "
                      "value for the input parameter 'scope' is not valid. The scope %s is not "
                      "valid." % form.get("scope"), "scope", "scope %r" % form.get("scope"))

    def refresh_grant(self, form):
        credential_fields = ("client_secret", "client_assertion_type", "client_assertion")
        form.check(("grant_type", "client_id", "refresh_token", "scope"), credential_fields,
                   aad_missing, aad_unexpected)
        self.check_client_id(form)
        if self.confidential_refresh:
            self.check_credential(form)
        elif any(form.has(name) for name in credential_fields):
            raise aad(401, "invalid_client", 700025,
                      "Client is public so neither 'client_assertion' nor 'client_secret' should "
                      "be presented.", "public_client_credential")
        self.check_delegated_scope(form)
        self.check_refresh_token(form.get("refresh_token"))
        return self.delegated_reply(self.refresh.redeem())

    def check_refresh_token(self, token):
        status = self.refresh.status(token)
        detail = "refresh_token %s" % describe(token)
        if status == "revoked":
            text = ERROR_CATALOGUE[50173][2].format(now=utc_text())
            raise aad(400, "invalid_grant", 50173, text, "refresh_revoked", detail)
        if status == "retired":
            raise aad(400, "invalid_grant", 70008, ERROR_CATALOGUE[70008][2],
                      "refresh_rotated_out", detail)
        if status != "ok":
            raise aad(400, "invalid_grant", 9002313, "Invalid request. Request is malformed or "
                      "invalid.", "refresh_unknown", detail)

    # -- Microsoft device code flow

    def device_authorization(self, form):
        form.check(("client_id", "scope"), (), aad_missing, aad_unexpected)
        self.check_client_id(form)
        self.check_delegated_scope(form)
        return Reply(200, self.devices.start(), device_code_issued=True)

    def device_grant(self, form):
        form.check(("grant_type", "client_id", "device_code"), (), aad_missing, aad_unexpected)
        self.check_client_id(form)
        answer, too_fast = self.devices.poll(form.get("device_code"), time.monotonic())
        if too_fast:
            self.counters["device_poll_violations"] += 1
        if answer == "success":
            return self.delegated_reply(self.refresh.install(make_refresh_token()))
        raise self.device_refusal(answer, too_fast)

    def device_refusal(self, answer, too_fast):
        detail = "poll faster than the interval" if too_fast else ""
        table = {
            "authorization_pending": ("authorization_pending", 70016, "OAuth 2.0 device flow "
                                      "error. Authorization is pending. Continue polling."),
            "slow_down": ("slow_down", 70016, "OAuth 2.0 device flow error. Polling too fast: "
                          "increase the polling interval by %g seconds." % self.devices.increment),
            "expired": ("expired_token", 70019, "Verification code expired."),
            "declined": ("authorization_declined", 65004,
                         "User declined to consent to access the app."),
            "redeemed": ("invalid_grant", 54005, "OAuth2 Authorization code was already "
                         "redeemed, please retry with a new valid code or use an existing "
                         "refresh token."),
            "unknown": ("bad_verification_code", 70000,
                        "The provided value for the 'device_code' is not valid."),
        }
        error, code, text = table[answer]
        return aad(400, error, code, text, "device_" + answer, detail)

    # -- Google

    def google_token(self, form):
        if form.count("grant_type") != 1:
            raise google_missing("grant_type")
        grant_type = form.get("grant_type")
        if grant_type == JWT_BEARER_GRANT and self.google_account:
            return self.google_jwt_bearer(form)
        if grant_type == "refresh_token" and self.google_client_id:
            return self.google_refresh_grant(form)
        raise google(400, "unsupported_grant_type", "Invalid grant_type: %s" % grant_type,
                     "grant_type", "grant_type %r" % grant_type)

    def google_reply(self, with_scope):
        token = make_google_token()
        body = {"access_token": token, "expires_in": self.expires_in, "token_type": "Bearer"}
        if with_scope:
            body["scope"] = GOOGLE_SCOPE
        return Reply(200, body, access_token=token)

    def google_jwt_bearer(self, form):
        form.check(("grant_type", "assertion"), (), google_missing, google_unexpected)
        google_jwt_checks(self.google_account, self.google_audience, form.get("assertion"),
                          time.time())
        return self.google_reply(with_scope=False)

    def google_refresh_grant(self, form):
        form.check(("grant_type", "client_id", "client_secret", "refresh_token"), (),
                   google_missing, google_unexpected)
        if form.get("client_id") != self.google_client_id:
            raise google(401, "invalid_client", "The OAuth client was not found.", "client_id")
        if form.get("client_secret") != self.google_client_secret:
            raise google(401, "invalid_client", "Unauthorized", "wrong_secret",
                         "wrong client_secret (%d chars)" % len(form.get("client_secret")))
        status = self.google_refresh.status(form.get("refresh_token"))
        if status == "revoked":
            raise google(400, "invalid_grant", "Token has been expired or revoked.",
                         "refresh_revoked")
        if status != "ok":
            raise google(400, "invalid_grant", "Bad Request", "refresh_unknown")
        return self.google_reply(with_scope=True)


def read_text(path):
    """A one-line secret or token file; None when no path was given."""
    if not path:
        return None
    with open(path) as f:
        return f.read().strip("\r\n")


# ---------------------------------------------------------------- HTTP

class Handler(http.server.BaseHTTPRequestHandler):
    server_version = "FakeEntraID/1.0"
    sys_version = ""
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass  # token.log carries what matters; keep stderr quiet

    def _send(self, reply):
        data = reply.body if isinstance(reply.body, bytes) else json.dumps(reply.body).encode()
        self.send_response(reply.status)
        self.send_header("Content-Type", reply.content_type)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-store, no-cache")
        for name, value in reply.headers:
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def _read_body(self):
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _not_post(self):
        st = self.server.state
        self._read_body()
        reply = Reply(405, aad_body("invalid_request", 900561,
                                    "The endpoint only accepts POST requests. Received a %s "
                                    "request." % self.command),
                      "method", "%s %s" % (self.command, urllib.parse.urlsplit(self.path).path))
        with st.lock:
            st.account(reply, None)
        self._send(reply)

    do_GET = do_PUT = do_DELETE = do_PATCH = _not_post

    def do_POST(self):
        st = self.server.state
        raw = self._read_body()
        with st.lock:
            try:
                reply, grant = st.handle(self.path, self.headers.get("Content-Type"), raw)
            except Exception:  # noqa: BLE001 - a bug in the fake must fail loudly, not hang
                traceback.print_exc()
                reply, grant = Reply(500, {"error": "fake_bug"}, "fake_bug"), None
            st.account(reply, grant)
        if reply.hang:
            self.server.stopping.wait()   # hold the connection until the fake stops
            self.close_connection = True
            return
        self._send(reply)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--cert", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--state-dir", required=True)
    parser.add_argument("--tenant", default="contoso.onmicrosoft.com")
    parser.add_argument("--client-id", required=True)
    parser.add_argument("--client-secret-file", help="the app's client secret (omit: no secret)")
    parser.add_argument("--expires-in", type=int, default=3599)
    parser.add_argument("--fail-first", type=int, default=0,
                        help="answer the first N token requests 503 temporarily_unavailable")
    parser.add_argument("--errors", default="", help="scripted failures, see the module doc")
    parser.add_argument("--client-cert", help="PEM certificate registered for the app")
    parser.add_argument("--refresh-token-file", help="the initially valid refresh token")
    parser.add_argument("--confidential-refresh", action="store_true",
                        help="refresh grants need client_secret or client_assertion")
    parser.add_argument("--revoke-refresh-token", action="store_true",
                        help="the current refresh token is revoked (AADSTS50173)")
    parser.add_argument("--device-interval", type=int, default=1)
    parser.add_argument("--device-pending", type=int, default=0,
                        help="answer authorization_pending to the first N polls")
    parser.add_argument("--device-slow-down", action="store_true",
                        help="answer slow_down once after the pending polls")
    parser.add_argument("--slow-down-increment", type=float, default=5,
                        help="seconds slow_down adds to the interval (RFC 8628: 5)")
    parser.add_argument("--device-outcome", choices=("success", "expired", "declined"),
                        default="success")
    parser.add_argument("--google-service-account", help="Google JSON key of the service account")
    parser.add_argument("--google-subject", action="append", default=[],
                        help="a user the service account may act for (repeatable)")
    parser.add_argument("--google-client-id")
    parser.add_argument("--google-client-secret-file")
    parser.add_argument("--google-refresh-token-file")
    args = parser.parse_args(argv)
    try:
        args.errors = parse_error_spec(args.errors)
    except ValueError as e:
        parser.error(str(e))
    return args


def main():
    args = parse_args()
    os.makedirs(args.state_dir, exist_ok=True)

    httpd = http.server.ThreadingHTTPServer((args.host, args.port), Handler)
    httpd.daemon_threads = True
    httpd.state = Platform(args)
    httpd.stopping = threading.Event()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(args.cert, args.key)
    httpd.socket = context.wrap_socket(httpd.socket, server_side=True)

    def stop(*_):
        httpd.stopping.set()
        threading.Thread(target=httpd.shutdown, daemon=True).start()
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    write_atomically(os.path.join(args.state_dir, "ready"), b"%d\n" % os.getpid())
    httpd.serve_forever()
    httpd.server_close()
    sys.exit(0)


if __name__ == "__main__":
    main()
