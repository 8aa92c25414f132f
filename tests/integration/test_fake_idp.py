"""The fake identity platform on its own, without subrelay: each test plays a
correct (or a deliberately wrong) client and checks that the fake answers
as Entra ID or Google would. If these fail, a relay test that passes
against the fake proves little about the real platform."""
import base64
import hashlib
import http.client
import json
import os
import socket
import ssl
import time
import urllib.parse
import uuid

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

import app_keys
import harness
from harness import CLIENT_ID, CLIENT_SECRET

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
JWT_BEARER_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
APP_SCOPE = "https://outlook.office365.com/.default"
DELEGATED_SCOPE = "https://outlook.office.com/SMTP.Send offline_access"
GOOGLE_SCOPE = "https://mail.google.com/"
GOOGLE_ACCOUNT = "relay@subrelay-test.iam.gserviceaccount.com"
GOOGLE_USER = "scanner@example.com"
GOOGLE_CLIENT_ID = "123456789012-abcdefghijklmnop.apps.googleusercontent.com"
GOOGLE_CLIENT_SECRET = "GOCSPX-google-client-secret-value"
INITIAL_REFRESH = "1.AQ-initial-refresh-token-for-the-tests"


# ---------------------------------------------------------------- credentials a client would hold

def b64url(raw):
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


_KEYS = {}


def rsa_key(name):
    """RSA keys are slow to make: one per name for the whole run."""
    if name not in _KEYS:
        _KEYS[name] = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return _KEYS[name]


def sign_jwt(key, header, claims, salt_length=32):
    signing_input = (b64url(json.dumps(header).encode()) + "." +
                     b64url(json.dumps(claims).encode())).encode()
    if header.get("alg") == "PS256":
        signature = key.sign(signing_input, padding.PSS(mgf=padding.MGF1(hashes.SHA256()),
                                                        salt_length=salt_length), hashes.SHA256())
    else:
        signature = key.sign(signing_input, padding.PKCS1v15(), hashes.SHA256())
    return signing_input.decode() + "." + b64url(signature)


def client_assertion(key, cert_der, audience, alg="PS256", header=None, claims=None,
                     salt_length=32):
    """A client assertion as MSAL builds it; header/claims override single fields."""
    now = int(time.time())
    h = {"alg": alg, "typ": "JWT"}
    if alg == "PS256":
        h["x5t#S256"] = b64url(hashlib.sha256(cert_der).digest())
    else:
        h["x5t"] = b64url(hashlib.sha1(cert_der).digest())
    h.update(header or {})
    c = {"aud": audience, "iss": CLIENT_ID, "sub": CLIENT_ID, "jti": str(uuid.uuid4()),
         "nbf": now, "iat": now, "exp": now + 300}
    c.update(claims or {})
    return sign_jwt(key, h, c, salt_length)


def flip_signature_byte(jwt):
    head, payload, signature = jwt.split(".")
    raw = bytearray(base64.urlsafe_b64decode(signature + "=" * (-len(signature) % 4)))
    raw[len(raw) // 2] ^= 0x01
    return "%s.%s.%s" % (head, payload, b64url(bytes(raw)))


def google_assertion(key, audience, claims=None, header=None):
    now = int(time.time())
    h = {"alg": "RS256", "typ": "JWT", "kid": app_keys.GOOGLE_KEY_ID}
    h.update(header or {})
    c = {"iss": GOOGLE_ACCOUNT, "scope": GOOGLE_SCOPE, "aud": audience, "sub": GOOGLE_USER,
         "iat": now, "exp": now + 3600}
    c.update(claims or {})
    return sign_jwt(key, h, c)


# ---------------------------------------------------------------- HTTP

class Answer:
    def __init__(self, status, headers, data):
        self.status = status
        self.headers = headers
        self.data = data
        try:
            self.json = json.loads(data)
        except ValueError:
            self.json = None

    @property
    def error(self):
        return self.json.get("error") if self.json else None

    @property
    def code(self):
        """The AADSTS code, from error_codes and the description's prefix (they must agree)."""
        codes = self.json.get("error_codes") or [None]
        prefix = self.json.get("error_description", "").split(":", 1)[0]
        assert prefix == "AADSTS%s" % codes[0], "error_codes %r vs description %r" % (codes, prefix)
        return codes[0]

    def __repr__(self):
        return "<%d %s>" % (self.status, self.data[:300])


class IdpCase(harness.IntegrationCase):
    def post(self, url, fields, timeout=10.0):
        """POSTs a form the way an OAuth client does, trusting only the test CA."""
        parts = urllib.parse.urlsplit(url)
        context = ssl.create_default_context(cafile=self.pki.ca_cert)
        conn = http.client.HTTPSConnection(parts.hostname, parts.port, context=context,
                                           timeout=timeout)
        try:
            conn.request("POST", parts.path, body=urllib.parse.urlencode(fields),
                         headers={"Content-Type": "application/x-www-form-urlencoded"})
            response = conn.getresponse()
            return Answer(response.status, response.headers, response.read())
        finally:
            conn.close()

    def assert_aad(self, answer, status, error, code):
        self.assertEqual((answer.status, answer.error, answer.code), (status, error, code),
                         answer)

    def assert_issued(self, answer):
        self.assertEqual(answer.status, 200, answer)
        self.assertIn(answer.json["access_token"], self.token.tokens(),
                      "an issued access token must be in tokens.txt for the fake upstream")
        return answer.json


# ---------------------------------------------------------------- certificate credential

class CertificateCredentialTest(IdpCase):
    def setUp(self):
        super().setUp()
        self.key = rsa_key("app")
        self.cert_der, cert_path = app_keys.app_certificate(self.key, self.workdir)
        self.start_token(client_cert=cert_path)

    def request(self, assertion, extra=()):
        return self.post(self.token.url, [("grant_type", "client_credentials"),
                                          ("client_id", CLIENT_ID),
                                          ("client_assertion_type", ASSERTION_TYPE),
                                          ("client_assertion", assertion),
                                          ("scope", APP_SCOPE)] + list(extra))

    def assertion(self, **kwargs):
        return client_assertion(self.key, self.cert_der, self.token.url, **kwargs)

    def assert_refused(self, answer, code, reason):
        self.assert_aad(answer, 401, "invalid_client", code)
        self.assertEqual(self.token.refusals().get(reason), 1, self.token.refusals())
        self.assertEqual(self.token.tokens(), [], "nothing may be issued for a bad assertion")

    def test_ps256_assertion_gets_token(self):
        body = self.assert_issued(self.request(self.assertion()))
        self.assertEqual(body["token_type"], "Bearer")
        full = self.token.counters(full=True)
        self.assertEqual(full["grants"]["client_credentials_assertion"], 1)
        self.assertEqual(full["issued_by_grant"]["client_credentials_assertion"], 1)
        self.assertEqual(full["grants"]["client_credentials_secret"], 0)

    def test_rs256_assertion_gets_token(self):
        self.assert_issued(self.request(self.assertion(alg="RS256")))

    def test_flipped_signature_byte_refused(self):
        self.assert_refused(self.request(flip_signature_byte(self.assertion())),
                            700027, "assertion_signature")

    def test_pss_salt_length_must_be_32(self):
        self.assert_refused(self.request(self.assertion(salt_length=padding.PSS.MAX_LENGTH)),
                            700027, "assertion_signature")

    def test_wrong_x5t_s256_refused(self):
        wrong = b64url(hashlib.sha256(b"another certificate").digest())
        self.assert_refused(self.request(self.assertion(header={"x5t#S256": wrong})),
                            700027, "assertion_thumbprint")

    def test_ps256_needs_x5t_s256_not_sha1_x5t(self):
        header = {"x5t#S256": None, "x5t": b64url(hashlib.sha1(self.cert_der).digest())}
        self.assert_refused(self.request(self.assertion(header=header)),
                            700027, "assertion_thumbprint")

    def test_unsupported_alg_refused(self):
        self.assert_refused(self.request(self.assertion(alg="RS256", header={"alg": "RS512"})),
                            700027, "assertion_alg")

    def test_wrong_audience_refused(self):
        aud = "https://login.microsoftonline.com/%s/oauth2/v2.0/token" % harness.TENANT
        self.assert_refused(self.request(self.assertion(claims={"aud": aud})),
                            700023, "assertion_audience")

    def test_wrong_issuer_refused(self):
        self.assert_refused(self.request(self.assertion(claims={"iss": "someone-else"})),
                            700021, "assertion_issuer")

    def test_expired_assertion_refused(self):
        now = int(time.time())
        claims = {"nbf": now - 400, "iat": now - 400, "exp": now - 100}
        self.assert_refused(self.request(self.assertion(claims=claims)),
                            700024, "assertion_expired")

    def test_long_lived_assertion_refused(self):
        now = int(time.time())
        self.assert_refused(self.request(self.assertion(claims={"exp": now + 3600})),
                            700024, "assertion_lifetime")

    def test_not_yet_valid_assertion_refused(self):
        now = int(time.time())
        claims = {"nbf": now + 1000, "iat": now + 1000, "exp": now + 1200}
        self.assert_refused(self.request(self.assertion(claims=claims)),
                            700024, "assertion_not_yet_valid")

    def test_reused_jti_refused(self):
        jti = str(uuid.uuid4())
        self.assert_issued(self.request(self.assertion(claims={"jti": jti})))
        again = self.request(self.assertion(claims={"jti": jti}))   # freshly signed, same jti
        self.assert_aad(again, 401, "invalid_client", 700027)
        self.assertEqual(self.token.refusals(), {"assertion_jti_reused": 1})
        self.assertEqual(len(self.token.tokens()), 1)

    def test_malformed_assertion_refused(self):
        self.assert_refused(self.request("not-a-jwt"), 50027, "assertion_malformed")

    def test_secret_still_works_and_credentials_are_exclusive(self):
        secret = [("grant_type", "client_credentials"), ("client_id", CLIENT_ID),
                  ("client_secret", CLIENT_SECRET), ("scope", APP_SCOPE)]
        self.assert_issued(self.post(self.token.url, secret))
        both = self.request(self.assertion(), extra=[("client_secret", CLIENT_SECRET)])
        self.assert_aad(both, 400, "invalid_request", 90014)
        neither = self.post(self.token.url, [f for f in secret if f[0] != "client_secret"])
        self.assert_aad(neither, 401, "invalid_client", 7000218)
        full = self.token.counters(full=True)
        self.assertEqual(full["refusals"], {"both_credentials": 1, "no_credential": 1})
        self.assertEqual(full["issued_by_grant"]["client_credentials_secret"], 1)
        self.assertEqual(self.token.counters(),
                         {"requests": 3, "issued": 1, "refused": 2, "unavailable": 0},
                         "counters() keeps its four totals")


class NoCertificateTest(IdpCase):
    def test_assertion_without_registered_certificate_refused(self):
        key = rsa_key("app")
        cert_der, _ = app_keys.app_certificate(key, self.workdir)
        self.start_token()
        answer = self.post(self.token.url, [
            ("grant_type", "client_credentials"), ("client_id", CLIENT_ID),
            ("client_assertion_type", ASSERTION_TYPE),
            ("client_assertion", client_assertion(key, cert_der, self.token.url)),
            ("scope", APP_SCOPE)])
        self.assert_aad(answer, 401, "invalid_client", 700027)
        self.assertEqual(self.token.refusals(), {"assertion_no_certificate": 1})


# ---------------------------------------------------------------- refresh tokens

class RefreshTokenTest(IdpCase):
    def refresh(self, refresh_token, scope=DELEGATED_SCOPE, extra=()):
        return self.post(self.token.url, [("grant_type", "refresh_token"), ("client_id", CLIENT_ID),
                                          ("refresh_token", refresh_token), ("scope", scope)]
                         + list(extra))

    def test_rotation_refuses_the_old_token(self):
        self.start_token(refresh_token=INITIAL_REFRESH)
        self.assertEqual(self.token.current_refresh_token(), INITIAL_REFRESH)
        body = self.assert_issued(self.refresh(INITIAL_REFRESH))
        self.assertEqual(body["scope"], "https://outlook.office.com/SMTP.Send")
        self.assertNotEqual(body["refresh_token"], INITIAL_REFRESH)
        self.assertEqual(self.token.current_refresh_token(), body["refresh_token"])
        self.assert_aad(self.refresh(INITIAL_REFRESH), 400, "invalid_grant", 70008)
        self.assertEqual(self.token.refusals(), {"refresh_rotated_out": 1})

    def test_many_sequential_refreshes(self):
        self.start_token(refresh_token=INITIAL_REFRESH)
        seen = {INITIAL_REFRESH}
        current = INITIAL_REFRESH
        for _ in range(25):
            body = self.assert_issued(self.refresh(current))
            current = body["refresh_token"]
            self.assertNotIn(current, seen, "every refresh must hand out a new refresh token")
            seen.add(current)
        full = self.token.counters(full=True)
        self.assertEqual(full["grants"]["refresh_token"], 25)
        self.assertEqual(full["issued_by_grant"]["refresh_token"], 25)
        self.assertEqual(len(self.token.tokens()), 25)

    def test_revoke_through_control_file(self):
        self.start_token(refresh_token=INITIAL_REFRESH)
        current = self.assert_issued(self.refresh(INITIAL_REFRESH))["refresh_token"]
        self.token.write_control(revoke=True)
        self.assert_aad(self.refresh(current), 400, "invalid_grant", 50173)
        self.assert_aad(self.refresh(current), 400, "invalid_grant", 50173)
        self.assertEqual(self.token.refusals(), {"refresh_revoked": 2})

    def test_revoked_from_the_start(self):
        self.start_token(refresh_token=INITIAL_REFRESH, revoke_refresh_token=True)
        self.assert_aad(self.refresh(INITIAL_REFRESH), 400, "invalid_grant", 50173)

    def test_unknown_token_and_wrong_scope(self):
        self.start_token(refresh_token=INITIAL_REFRESH)
        self.assert_aad(self.refresh("1.AQ-never-issued"), 400, "invalid_grant", 9002313)
        self.assert_aad(self.refresh(INITIAL_REFRESH, scope="https://outlook.office.com/SMTP.Send"),
                        400, "invalid_scope", 70011)
        self.assertEqual(self.token.current_refresh_token(), INITIAL_REFRESH,
                         "a refused request must not rotate the token")

    def test_public_client_must_not_send_a_secret(self):
        self.start_token(refresh_token=INITIAL_REFRESH)
        answer = self.refresh(INITIAL_REFRESH, extra=[("client_secret", CLIENT_SECRET)])
        self.assert_aad(answer, 401, "invalid_client", 700025)

    def test_confidential_client_needs_its_secret(self):
        self.start_token(refresh_token=INITIAL_REFRESH, confidential_refresh=True)
        self.assert_aad(self.refresh(INITIAL_REFRESH), 401, "invalid_client", 7000218)
        self.assert_issued(self.refresh(INITIAL_REFRESH, extra=[("client_secret", CLIENT_SECRET)]))

    def test_log_never_holds_tokens_or_secrets(self):
        self.start_token(refresh_token=INITIAL_REFRESH)
        body = self.assert_issued(self.refresh(INITIAL_REFRESH))
        self.refresh(INITIAL_REFRESH)
        self.post(self.token.url, [("grant_type", "client_credentials"), ("client_id", CLIENT_ID),
                                   ("client_secret", CLIENT_SECRET), ("scope", APP_SCOPE)])
        log = self.token.log()
        self.assertEqual(len(log.splitlines()), 3, log)
        self.assertIn("reason=refresh_rotated_out", log)
        for name, value in (("refresh token", INITIAL_REFRESH), ("secret", CLIENT_SECRET),
                            ("new refresh token", body["refresh_token"]),
                            ("access token", body["access_token"])):
            self.assertNotIn(value[:24], log, "token.log shows the %s" % name)


# ---------------------------------------------------------------- device code flow

class DeviceCodeTest(IdpCase):
    def device_code(self):
        answer = self.post(self.token.devicecode_url, [("client_id", CLIENT_ID),
                                                       ("scope", DELEGATED_SCOPE)])
        self.assertEqual(answer.status, 200, answer)
        return answer.json

    def poll(self, device_code):
        return self.post(self.token.url, [("grant_type", DEVICE_GRANT), ("client_id", CLIENT_ID),
                                          ("device_code", device_code)])

    def test_pending_then_success(self):
        self.start_token(device_pending=2)
        start = self.device_code()
        self.assertEqual(start["verification_uri"], "https://microsoft.com/devicelogin")
        self.assertEqual(start["interval"], 1)
        self.assertIn(start["user_code"], start["message"])
        for _ in range(2):
            time.sleep(start["interval"])
            self.assert_aad(self.poll(start["device_code"]), 400, "authorization_pending", 70016)
        time.sleep(start["interval"])
        body = self.assert_issued(self.poll(start["device_code"]))
        self.assertEqual(self.token.current_refresh_token(), body["refresh_token"],
                         "the signed-in refresh token becomes the valid one")
        self.assert_aad(self.poll(start["device_code"]), 400, "invalid_grant", 54005)
        full = self.token.counters(full=True)
        self.assertEqual(full["device_codes_issued"], 1)
        self.assertEqual(full["grants"]["device_code"], 4)
        self.assertEqual(full["issued_by_grant"]["device_code"], 1)
        self.assertEqual(full["device_poll_violations"], 1, "the immediate re-poll was too fast")

    def test_sign_in_again_after_revocation(self):
        self.start_token(refresh_token=INITIAL_REFRESH, revoke_refresh_token=True)
        start = self.device_code()
        body = self.assert_issued(self.poll(start["device_code"]))
        refreshed = self.post(self.token.url, [
            ("grant_type", "refresh_token"), ("client_id", CLIENT_ID),
            ("refresh_token", body["refresh_token"]), ("scope", DELEGATED_SCOPE)])
        self.assert_issued(refreshed)
        self.assertEqual(self.token.refusals(), {})

    def test_fast_polls_are_counted(self):
        self.start_token(device_pending=3)
        code = self.device_code()["device_code"]
        for _ in range(3):
            self.assert_aad(self.poll(code), 400, "authorization_pending", 70016)
        self.assertEqual(self.token.counters(full=True)["device_poll_violations"], 2)

    def test_slow_down_is_enforced(self):
        self.start_token(device_slow_down=True, slow_down_increment=1)
        code = self.device_code()["device_code"]
        self.assert_aad(self.poll(code), 400, "slow_down", 70016)          # interval now 2 s
        time.sleep(1.1)
        self.assert_aad(self.poll(code), 400, "slow_down", 70016)          # too soon; now 3 s
        time.sleep(3.1)
        self.assert_issued(self.poll(code))
        full = self.token.counters(full=True)
        self.assertEqual(full["device_poll_violations"], 1)
        self.assertEqual(full["refusals"], {"device_slow_down": 2})

    def test_expired(self):
        self.start_token(device_outcome="expired")
        code = self.device_code()["device_code"]
        self.assert_aad(self.poll(code), 400, "expired_token", 70019)
        self.assertEqual(self.token.tokens(), [])

    def test_declined(self):
        self.start_token(device_outcome="declined", device_pending=1)
        code = self.device_code()["device_code"]
        self.assert_aad(self.poll(code), 400, "authorization_pending", 70016)
        time.sleep(1)
        self.assert_aad(self.poll(code), 400, "authorization_declined", 65004)
        self.assertIsNone(self.token.current_refresh_token())

    def test_devicecode_request_is_checked(self):
        self.start_token()
        answer = self.post(self.token.devicecode_url, [("client_id", CLIENT_ID),
                                                       ("scope", "openid")])
        self.assert_aad(answer, 400, "invalid_scope", 70011)
        answer = self.poll("DAQAB-made-up-device-code")
        self.assert_aad(answer, 400, "bad_verification_code", 70000)


# ---------------------------------------------------------------- Google

class GoogleTest(IdpCase):
    def setUp(self):
        super().setUp()
        self.key = rsa_key("google")
        self.key_file = os.path.join(self.workdir, "service-account.json")
        app_keys.google_key_file(self.key, self.key_file, GOOGLE_ACCOUNT)

    def start(self, **kwargs):
        return self.start_token(google_service_account=self.key_file,
                                google_subjects=[GOOGLE_USER, "other@example.com"], **kwargs)

    def jwt_bearer(self, assertion):
        return self.post(self.token.google_url, [("grant_type", JWT_BEARER_GRANT),
                                                 ("assertion", assertion)])

    def test_jwt_bearer_success(self):
        self.start()
        body = self.assert_issued(self.jwt_bearer(google_assertion(self.key, self.token.google_url)))
        self.assertTrue(body["access_token"].startswith("ya29."))
        self.assertEqual(body["token_type"], "Bearer")
        full = self.token.counters(full=True)
        self.assertEqual(full["issued_by_grant"]["jwt_bearer"], 1)

    def test_wrong_subject(self):
        self.start()
        answer = self.jwt_bearer(google_assertion(self.key, self.token.google_url,
                                                  claims={"sub": "intruder@example.com"}))
        self.assertEqual(answer.status, 401)
        self.assertEqual(answer.json, {
            "error": "unauthorized_client",
            "error_description": "Client is unauthorized to retrieve access tokens using this "
                                 "method, or client not authorized for any of the scopes "
                                 "requested."})

    def test_wrong_scope(self):
        self.start()
        narrower = {"scope": "https://www.googleapis.com/auth/gmail.send"}
        answer = self.jwt_bearer(google_assertion(self.key, self.token.google_url, claims=narrower))
        self.assertEqual((answer.status, answer.error), (400, "invalid_scope"), answer)

    def test_wrong_key_audience_and_lifetime(self):
        self.start()
        other_key = self.jwt_bearer(google_assertion(rsa_key("app"), self.token.google_url))
        self.assertEqual((other_key.status, other_key.error), (400, "invalid_grant"))
        wrong_aud = google_assertion(self.key, "https://oauth2.googleapis.com/token")
        self.assertEqual(self.jwt_bearer(wrong_aud).error, "invalid_grant")
        now = int(time.time())
        too_long = google_assertion(self.key, self.token.google_url, claims={"exp": now + 7200})
        self.assertEqual(self.jwt_bearer(too_long).error, "invalid_grant")
        self.assertEqual(self.token.refusals(),
                         {"jwt_signature": 1, "jwt_audience": 1, "jwt_time": 1})

    def test_refresh_does_not_rotate_and_can_be_revoked(self):
        self.start_token(google_client_id=GOOGLE_CLIENT_ID, google_client_secret=GOOGLE_CLIENT_SECRET,
                         google_refresh_token="1//google-refresh-token")
        fields = [("grant_type", "refresh_token"), ("client_id", GOOGLE_CLIENT_ID),
                  ("client_secret", GOOGLE_CLIENT_SECRET),
                  ("refresh_token", "1//google-refresh-token")]
        for _ in range(2):
            body = self.assert_issued(self.post(self.token.google_url, fields))
            self.assertNotIn("refresh_token", body)
            self.assertEqual(body["scope"], GOOGLE_SCOPE)
        wrong_secret = [f if f[0] != "client_secret" else ("client_secret", "nope") for f in fields]
        self.assertEqual(self.post(self.token.google_url, wrong_secret).status, 401)
        self.token.write_control(google_revoke=True)
        answer = self.post(self.token.google_url, fields)
        self.assertEqual((answer.status, answer.json),
                         (400, {"error": "invalid_grant",
                                "error_description": "Token has been expired or revoked."}))
        self.assertEqual(self.token.counters(full=True)["grants"]["google_refresh_token"], 4)


# ---------------------------------------------------------------- scripted failures

# What Entra answers for each code (HTTP status, error), written out independently
# of the fake's own table.
EXPECTED = {
    50196: (503, "temporarily_unavailable"), 7000222: (401, "invalid_client"),
    700016: (400, "unauthorized_client"), 90002: (400, "invalid_request"),
    500011: (400, "invalid_resource"), 65001: (400, "invalid_grant"),
    70011: (400, "invalid_scope"), 53003: (400, "invalid_grant"),
    530035: (400, "invalid_grant"), 7000215: (401, "invalid_client"),
    70008: (400, "invalid_grant"), 700082: (400, "invalid_grant"),
    50173: (400, "invalid_grant"), 70043: (400, "invalid_grant"),
}


class ScriptedErrorsTest(IdpCase):
    FIELDS = [("grant_type", "client_credentials"), ("client_id", CLIENT_ID),
              ("client_secret", CLIENT_SECRET), ("scope", APP_SCOPE)]

    def request(self, timeout=10.0):
        return self.post(self.token.url, self.FIELDS, timeout=timeout)

    def test_codes_consumed_in_order(self):
        codes = list(EXPECTED)
        self.start_token(errors=codes)
        for code in codes:
            status, error = EXPECTED[code]
            self.assert_aad(self.request(), status, error, code)
        self.assert_issued(self.request())
        full = self.token.counters(full=True)
        self.assertEqual(full["scripted"], len(codes))
        self.assertEqual(full["unavailable"], 1)
        self.assertEqual(full["refusals"]["scripted_7000222"], 1)

    def test_expired_secret_description(self):
        self.start_token(errors="7000222")
        answer = self.request()
        self.assertIn("The provided client secret keys for app '%s' are expired" % CLIENT_ID,
                      answer.json["error_description"])

    def test_http_failures(self):
        self.start_token(errors="http429,http500,http429:7")
        first, second, third = self.request(), self.request(), self.request()
        self.assertEqual((first.status, first.headers["Retry-After"]), (429, "1"))
        self.assertEqual(second.status, 500)
        self.assertIsNone(second.json)
        self.assertEqual((third.status, third.headers["Retry-After"]), (429, "7"))
        self.assert_issued(self.request())

    def test_hang_holds_the_connection(self):
        self.start_token(errors="hang")
        started = time.monotonic()
        with self.assertRaises((socket.timeout, TimeoutError)):
            self.request(timeout=1.0)
        self.assertGreaterEqual(time.monotonic() - started, 0.9)
        self.assert_issued(self.request())   # the next request is answered
        self.assertEqual(self.token.counters(full=True)["hung"], 1)
        self.assertEqual(self.token.counters()["issued"], 1)

    def test_fail_first_then_scripted(self):
        self.start_token(fail_first=1, errors="53003")
        self.assert_aad(self.request(), 503, "temporarily_unavailable", 50196)
        self.assert_aad(self.request(), 400, "invalid_grant", 53003)
        self.assert_issued(self.request())
        self.assertEqual(self.token.refusals(), {"fail_first": 1, "scripted_53003": 1})

    def test_errors_through_control_file(self):
        self.start_token()
        self.assert_issued(self.request())
        self.token.write_control(errors=[530035])
        self.assert_aad(self.request(), 400, "invalid_grant", 530035)
        self.assert_issued(self.request())

    def test_unknown_code_refused_at_start(self):
        with self.assertRaises(RuntimeError):
            self.start_token(errors="12345")
