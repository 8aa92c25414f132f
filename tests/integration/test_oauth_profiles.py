"""OAuth2 profiles end to end: the real subrelay binary, the fake identity
platform (fake_token.py) and the fake upstream (fake_upstream.py, which
accepts only XOAUTH2 with an allowed user= and a token the fake platform
issued). Devices submit with smtplib over STARTTLS + AUTH PLAIN.

Covered: a certificate credential (PS256, RS256), a delegated refresh token
with rotation across several renewals, a transient token-endpoint failure
during a renewal, a revoked refresh token, a Google service account with
domain-wide delegation as a named profile with its own SMTP endpoint, many
simultaneous deliveries sharing one token request, and a configuration
error from the platform (backoff, hint). Every test accounts for every
message it sent: delivered, queued or bounced, never vanished.

Note: the relay renews a token when a delivery needs one (an upstream
connection is opened), not on a timer, and an upstream connection stays
open 10 s after its last message. The renewal tests therefore wait for the
relay's upstream connection to close before the next round."""
import os
import re
import stat
import sys
import threading
import time

from cryptography.hazmat.primitives.asymmetric import rsa

import app_keys
import harness
from harness import CLIENT_ID, CLIENT_SECRET, SCANNER_ID, SCANNER_PASSWORD, TENANT, UPSTREAM_MAILBOX

QUEUE_FAST = {"max_lifetime_seconds": 3600, "delay_warning_seconds": 0}
RCPT = "dest@example.org"
INITIAL_REFRESH = "1.AQ-initial-refresh-token-of-the-e2e-tests-0123456789abcdef"
SIGN_IN_HINT = "`subrelay oauth login`"
GOOGLE_ACCOUNT = "relay@subrelay-e2e.iam.gserviceaccount.com"
GOOGLE_MAILBOX = "reports@example.com"
GOOGLE_DENIED_MAILBOX = "denied@example.com"


# ---------------------------------------------------------------- credentials made for the tests

_KEYS = {}


def rsa_key(name):
    """RSA keys are slow to make: one per name for the module."""
    if name not in _KEYS:
        _KEYS[name] = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return _KEYS[name]


def pem_body_lines(pem):
    """The base64 lines of a PEM block (what a leak would show)."""
    text = pem.decode() if isinstance(pem, bytes) else pem
    return [line for line in text.splitlines() if line and not line.startswith("-----")]


# ---------------------------------------------------------------- sending and accounting

def send_messages(relay, messages, identity=SCANNER_ID, sender=SCANNER_ID, rcpts=(RCPT,)):
    """Submits several distinct messages over one STARTTLS + AUTH PLAIN session."""
    harness.smtplib_send(relay, messages, list(rcpts), sender=sender, identity=identity)


class Upstreams:
    """Several fake upstreams seen as one (for harness.account_for)."""

    def __init__(self, *upstreams):
        self.upstreams = upstreams

    def messages(self):
        return [m for u in self.upstreams for m in u.messages()]


class OAuthCase(harness.IntegrationCase):
    def new_messages(self, count, subject, sender=SCANNER_ID):
        return [harness.make_message(sender, RCPT, "%s %d" % (subject, i)) for i in range(count)]

    def ledger(self, sent, upstream=None):
        return harness.account_for(self.relay, upstream or self.upstream, sent)

    def wait_delivered(self, sent, upstream=None, timeout=harness.DEFAULT_TIMEOUT, what="delivery"):
        """Until every message in `sent` reached the upstream and left the spool."""
        mids = {harness.message_id(m) for m in sent}

        def done():
            report = self.ledger(sent, upstream)
            if not all(e["delivered"] >= 1 for e in report.values()):
                return None
            for qid in self.relay.queued_ids():
                try:
                    body = self.relay.queued_message(qid)[1]
                except FileNotFoundError:
                    continue
                if any(mid.encode() in body for mid in mids):
                    return None
            return report
        return harness.wait_for(done, timeout=timeout, interval=0.1, what=what)

    def assert_accounted(self, report, label=""):
        lost = [mid for mid, e in report.items() if e["delivered"] + e["queued"] + e["bounced"] == 0]
        summary = ("[%s%s] %d message(s): %d delivered, %d queued, %d bounced"
                   % (self.id().rsplit(".", 1)[-1], (" " + label) if label else "", len(report),
                      sum(1 for e in report.values() if e["delivered"]),
                      sum(1 for e in report.values() if e["queued"]),
                      sum(1 for e in report.values() if e["bounced"])))
        sys.stdout.write("\n  " + summary + "\n")
        sys.stdout.flush()
        self.assertEqual(lost, [], "message(s) vanished: neither delivered, queued nor bounced. " + summary)

    def assert_each_delivered_once(self, report):
        for mid, e in report.items():
            self.assertEqual(e["delivered"], 1, "%s delivered %d times" % (mid, e["delivered"]))
            self.assertEqual(e["bounced"], 0, "%s bounced" % mid)

    def assert_waiting(self, report):
        """Queued in the spool, neither delivered nor bounced."""
        for mid, e in report.items():
            self.assertEqual((e["delivered"], e["bounced"]), (0, 0),
                             "%s should wait in the queue: %r" % (mid, e))
            self.assertGreaterEqual(e["queued"], 1, "%s is not in the spool: %r" % (mid, e))

    def relay_log(self):
        return self.relay.log().decode("utf-8", "replace")

    def assert_not_in_log(self, values, what):
        log = self.relay_log()
        for value in values:
            if not value:
                continue
            self.assertNotIn(value, log, "the relay log shows %s" % what)
            if len(value) > 40:
                # A piece from the middle, past any common prefix.
                self.assertNotIn(value[8:40], log, "the relay log shows part of %s" % what)

    def wait_upstream_idle(self, upstream=None, timeout=25):
        """Until the relay closed its upstream connections (10 s after their
        last message): the next delivery opens a new one and needs a token."""
        u = upstream or self.upstream
        harness.wait_for(lambda: u.counters().get("current_connections", 1) == 0, timeout=timeout,
                         interval=0.2, what="the relay's upstream connection to close")

    def oauth_section(self, **values):
        """[oauth] on top of the harness's: no client secret unless given."""
        section = {"client_secret_file": None, "scope": None}
        section.update(values)
        return section


# ---------------------------------------------------------------- 1. certificate credential

class CertificateCredentialTest(OAuthCase):
    def run_with_alg(self, alg):
        key = rsa_key("app")
        cert_dir = os.path.join(self.workdir, "app")
        os.makedirs(cert_dir)
        _, cert_path = app_keys.app_certificate(key, cert_dir, "subrelay e2e app")
        pem = app_keys.key_pem(key)
        key_path = app_keys.write_private(os.path.join(cert_dir, "app-key.pem"), pem)
        self.start_token(client_cert=cert_path)
        self.start_upstream()
        oauth = self.oauth_section(tenant=TENANT, token_url=self.token.url, client_id=CLIENT_ID,
                                   certificate_file=cert_path, private_key_file=key_path,
                                   assertion_alg=alg)
        relay = self.make_relay([harness.scanner_account()], log_level="debug",
                                extra_sections={"oauth": oauth, "queue": QUEUE_FAST})
        self.start_relay(relay)

        sent = self.new_messages(3, "certificate %s" % (alg or "default"))
        send_messages(relay, sent)
        report = self.wait_delivered(sent)
        self.assert_accounted(report)
        self.assert_each_delivered_once(report)

        issued = set(self.token.tokens())
        for eml, meta in self.upstream.messages():
            self.assertEqual(meta["mailbox"], UPSTREAM_MAILBOX, "XOAUTH2 user= must be the upstream mailbox")
            self.assertIn(meta["token"], issued, "the upstream got a token the platform never issued")
        full = self.token.counters(full=True)
        self.assertGreaterEqual(full["issued_by_grant"]["client_credentials_assertion"], 1, full)
        self.assertEqual(full["grants"]["client_credentials_secret"], 0,
                         "a certificate profile must never send a client secret: %r" % full)
        self.assertEqual(full["refusals"], {}, "the platform refused an assertion: %s" % self.token.log())
        self.assertEqual(self.upstream.counters()["auth_failures"], 0, self.upstream.auth_log())

        log = self.relay_log()
        self.assertNotIn("PRIVATE KEY", log, "the relay log shows a PEM key")
        self.assert_not_in_log(pem_body_lines(pem), "the private key")
        # Assertions and access tokens are JWTs: base64url of '{"' starts with "eyJ".
        self.assertIsNone(re.search(r"eyJ[A-Za-z0-9_-]{10,}", log), "the relay log shows a JWT")
        self.assert_not_in_log(issued, "an access token")
        self.assertNotIn(CLIENT_SECRET, log)

    def test_ps256_by_default(self):
        self.run_with_alg(None)

    def test_rs256(self):
        self.run_with_alg("RS256")


# ---------------------------------------------------------------- 2-4. delegated refresh token

class RefreshTokenCase(OAuthCase):
    def refresh_stack(self, **token_options):
        self.start_token(refresh_token=INITIAL_REFRESH, **token_options)
        self.start_upstream()
        oauth = self.oauth_section(tenant=TENANT, token_url=self.token.url, client_id=CLIENT_ID,
                                   grant="refresh_token", refresh_token_file="refresh-token")
        relay = self.make_relay([harness.scanner_account()],
                                extra_sections={"oauth": oauth, "queue": QUEUE_FAST})
        self.refresh_file = os.path.join(relay.workdir, "refresh-token")
        # Deliberately 0640: the relay's own rewrite must be private.
        app_keys.write_private(self.refresh_file, INITIAL_REFRESH + "\n", mode=0o640)
        self.start_relay(relay)
        self.seen_refresh = {INITIAL_REFRESH}
        self._sampling = True
        self._sampler = threading.Thread(target=self._sample_refresh_tokens, daemon=True)
        self._sampler.start()
        return relay

    def _sample_refresh_tokens(self):
        # Every refresh token the fake ever honoured, for the log check.
        while self._sampling:
            current = self.token.current_refresh_token()
            if current:
                self.seen_refresh.add(current)
            time.sleep(0.05)

    def tearDown(self):
        self._sampling = False
        super().tearDown()

    def stored_refresh(self):
        with open(self.refresh_file) as f:
            return f.read().strip("\r\n")

    def refresh_grants(self):
        full = self.token.counters(full=True)
        return full["grants"]["refresh_token"], full["issued_by_grant"]["refresh_token"]

    def assert_file_holds_current(self, label):
        current = self.token.current_refresh_token()
        self.seen_refresh.add(current)
        self.assertEqual(self.stored_refresh(), current,
                         "%s: refresh_token_file does not hold the token the platform honours now "
                         "(a rotation was not stored)" % label)
        mode = stat.S_IMODE(os.stat(self.refresh_file).st_mode)
        self.assertEqual(mode, 0o600, "%s: refresh_token_file has mode %o" % (label, mode))
        return current

    def assert_no_refresh_token_logged(self):
        self._sampling = False
        self._sampler.join(2)
        self.seen_refresh.add(self.token.current_refresh_token())
        self.assert_not_in_log(self.seen_refresh, "a refresh token")


class RefreshRotationTest(RefreshTokenCase):
    ROUNDS = 3

    def test_rotation_stored_across_renewals(self):
        relay = self.refresh_stack(expires_in=3)
        sent = []
        previous = INITIAL_REFRESH
        started = time.monotonic()
        for r in range(self.ROUNDS):
            if r:
                # The token (3 s) expired long ago; the next delivery renews it.
                self.wait_upstream_idle()
            batch = self.new_messages(2, "rotation round %d" % r)
            send_messages(relay, batch)
            sent += batch
            report = self.wait_delivered(batch, what="round %d" % r)
            self.assert_each_delivered_once(report)
            _, issued = self.refresh_grants()
            self.assertGreaterEqual(issued, r + 1, "round %d: no renewal happened" % r)
            # The rotated token is stored before the access token is used, so
            # a delivered message implies the file already holds it.
            current = self.assert_file_holds_current("round %d" % r)
            self.assertNotEqual(current, previous, "round %d: the refresh token did not rotate" % r)
            previous = current
        sys.stdout.write("\n  %d renewals over %.0f s\n" % (self.refresh_grants()[1],
                                                            time.monotonic() - started))

        report = self.ledger(sent)
        self.assert_accounted(report)
        self.assert_each_delivered_once(report)
        issued = set(self.token.tokens())
        for _, meta in self.upstream.messages():
            self.assertEqual(meta["mailbox"], UPSTREAM_MAILBOX)
            self.assertIn(meta["token"], issued)
        full = self.token.counters(full=True)
        self.assertEqual(full["refusals"], {},
                         "the platform refused a request (a rotated-out token was used?): %s"
                         % self.token.log())
        self.assertEqual(full["device_codes_issued"], 0, "no second sign-in is needed")
        self.assertEqual(full["grants"]["device_code"], 0)
        self.assertEqual(full["grants"]["refresh_token"], full["issued_by_grant"]["refresh_token"])
        self.assertEqual(self.upstream.counters()["auth_failures"], 0, self.upstream.auth_log())
        self.assert_file_holds_current("end")
        self.assert_no_refresh_token_logged()
        self.assert_not_in_log(issued, "an access token")


class RefreshTransientFailureTest(RefreshTokenCase):
    def test_transient_failure_during_renewal_keeps_the_stored_token(self):
        relay = self.refresh_stack(expires_in=3)
        first = self.new_messages(1, "before the outage")
        send_messages(relay, first)
        self.wait_delivered(first, what="the first message")
        stored = self.assert_file_holds_current("after the first renewal")

        self.wait_upstream_idle()   # the token is due (expired) now
        self.token.write_control(errors=["50196", "http500"])
        second = self.new_messages(1, "during the outage")
        send_messages(relay, second)
        harness.wait_for(lambda: self.token.counters()["unavailable"] >= 1,
                         what="the relay's renewal meeting the outage")
        # The failed renewal left the stored token in place, and it is still valid.
        self.assertEqual(self.stored_refresh(), stored, "a failed renewal changed the refresh_token_file")
        self.assertEqual(self.token.current_refresh_token(), stored,
                         "the stored refresh token is no longer the valid one")

        report = self.wait_delivered(second, what="delivery after the outage")
        self.assert_each_delivered_once(report)
        full = self.token.counters(full=True)
        self.assertEqual(full["refusals"], {"scripted_50196": 1, "scripted_http500": 1},
                         "only the scripted failures may be refused: %s" % self.token.log())
        current = self.assert_file_holds_current("after the outage")
        self.assertNotEqual(current, stored, "the renewal after the outage did not rotate")
        self.assertIn("AADSTS50196", self.relay_log(), "the failed renewal is not logged")

        report = self.ledger(first + second)
        self.assert_accounted(report)
        self.assert_each_delivered_once(report)
        self.assert_no_refresh_token_logged()


class RefreshRevokedTest(RefreshTokenCase):
    def test_revoked_token_keeps_messages_queued_with_sign_in_hint(self):
        relay = self.refresh_stack()
        first = self.new_messages(1, "before revocation")
        send_messages(relay, first)
        self.wait_delivered(first, what="the first message")
        stored = self.assert_file_holds_current("after the first sign-in use")

        # A restart drops the cached access token: the next delivery must use
        # the stored (rotated) refresh token, which the platform revokes now.
        self.assertEqual(relay.stop(), 0, "subrelay did not stop cleanly")
        self.token.write_control(revoke=True)
        self.start_relay(relay)
        waiting = self.new_messages(2, "after revocation")
        send_messages(relay, waiting)
        harness.wait_for(lambda: self.token.refusals().get("refresh_revoked"),
                         what="the relay's request with the revoked token")
        harness.wait_for(lambda: SIGN_IN_HINT in self.relay_log(), timeout=10,
                         what="the sign-in hint in the relay log")
        time.sleep(4)   # several retry periods (retry_max_seconds = 2)

        report = self.ledger(waiting)
        self.assert_accounted(report, "revoked")
        self.assert_waiting(report)
        self.assertEqual(len(self.upstream.messages()), 1, "only the first message may reach the upstream")
        self.assertEqual(self.stored_refresh(), stored, "the relay changed or dropped the stored refresh token")
        hint_lines = [l for l in self.relay_log().splitlines() if SIGN_IN_HINT in l]
        self.assertTrue(any("50173" in l or "revoked" in l for l in hint_lines),
                        "the hint should say why: %r" % hint_lines[:3])
        requests = self.token.counters(full=True)["grants"]["refresh_token"]
        self.assertLessEqual(requests, 5, "the token endpoint is asked too often: %s" % self.token.log())
        listing = relay.queue_list()
        if listing is not None:
            hints = [str(entry.get("hint", "")) for entry in listing]
            self.assertEqual(len(listing), 2, listing)
            self.assertTrue(all(SIGN_IN_HINT in h for h in hints),
                            "`queue list` should show the sign-in hint: %r" % hints)
        self.assert_no_refresh_token_logged()


# ---------------------------------------------------------------- 5. Google service account

class GoogleServiceAccountTest(OAuthCase):
    def test_named_profile_with_domain_wide_delegation(self):
        key_path = os.path.join(self.workdir, "google-key.json")
        pem = app_keys.google_key_file(rsa_key("google"), key_path, GOOGLE_ACCOUNT)
        self.start_token(google_service_account=key_path, google_subjects=[GOOGLE_MAILBOX])
        self.start_upstream()   # the Microsoft upstream of the default profile
        gmail = harness.FakeUpstream(os.path.join(self.workdir, "gmail-upstream"), self.pki,
                                     self.token.tokens_file,
                                     mailboxes=(GOOGLE_MAILBOX, GOOGLE_DENIED_MAILBOX))
        gmail.start()
        self._track(gmail)
        self.log_files += [gmail.process.log_path, os.path.join(gmail.state_dir, "auth.log")]

        printer = harness.Account("printer@example.com", SCANNER_PASSWORD, disabled=False,
                                  upstream_mailbox=GOOGLE_MAILBOX)
        copier = harness.Account("copier@example.com", SCANNER_PASSWORD, disabled=False,
                                 upstream_mailbox=GOOGLE_DENIED_MAILBOX)
        profile = {"provider": "google", "service_account_file": key_path,
                   "token_url": self.token.google_url, "ca_file": "ca.pem",
                   "mailboxes": [GOOGLE_MAILBOX, GOOGLE_DENIED_MAILBOX],
                   "smtp_host": "127.0.0.1", "smtp_port": gmail.port, "smtp_tls": "starttls"}
        relay = self.make_relay([printer, copier],
                                extra_sections={"queue": QUEUE_FAST, "oauth.profiles.gmail": profile})
        self.start_relay(relay)

        delivered = self.new_messages(2, "gmail report", sender=printer.identity)
        send_messages(relay, delivered, identity=printer.identity, sender=printer.identity)
        denied = self.new_messages(1, "gmail denied", sender=copier.identity)
        send_messages(relay, denied, identity=copier.identity, sender=copier.identity)

        both = Upstreams(self.upstream, gmail)
        report = self.wait_delivered(delivered, upstream=both, what="delivery through the gmail profile")
        self.assert_each_delivered_once(report)
        issued = set(self.token.tokens())
        for _, meta in gmail.messages():
            self.assertEqual(meta["mailbox"], GOOGLE_MAILBOX, "XOAUTH2 user= must be the delegated mailbox")
            self.assertIn(meta["token"], issued)
            self.assertTrue(meta["token"].startswith("ya29."), "not a token of the Google endpoint")
        self.assertEqual(self.upstream.messages(), [], "the default profile's upstream got a gmail message")
        self.assertEqual(gmail.counters()["auth_failures"], 0, gmail.auth_log())

        harness.wait_for(lambda: self.token.refusals().get("jwt_subject"),
                         what="the token request for the mailbox without delegation")
        harness.wait_for(lambda: "Domain-wide delegation" in self.relay_log(), timeout=10,
                         what="the domain-wide delegation hint in the relay log")
        time.sleep(3)   # retries (retry_max_seconds = 2) must not deliver or bounce it
        waiting = self.ledger(denied, upstream=both)
        self.assert_waiting(waiting)
        self.assertTrue(any(GOOGLE_DENIED_MAILBOX in l for l in self.relay_log().splitlines()
                            if "Domain-wide delegation" in l),
                        "the hint should name the mailbox it is about")

        full = self.token.counters(full=True)
        self.assertGreaterEqual(full["issued_by_grant"]["jwt_bearer"], 1)
        self.assertEqual(full["grants"]["client_credentials_secret"], 0,
                         "the default profile was asked for a token it does not need")
        self.assertEqual(set(full["refusals"]), {"jwt_subject"}, self.token.log())

        report = self.ledger(delivered + denied, upstream=both)
        self.assert_accounted(report)
        self.assertNotIn("PRIVATE KEY", self.relay_log())
        self.assert_not_in_log(pem_body_lines(pem), "the service account key")
        self.assert_not_in_log(issued, "an access token")


# ---------------------------------------------------------------- 6. one token for many deliveries

class SimultaneousDeliveriesTest(OAuthCase):
    def test_twenty_messages_one_token_request(self):
        relay = self.full_stack([harness.scanner_account()], extra_sections={"queue": QUEUE_FAST})
        clients = 5
        sent = self.new_messages(20, "simultaneous")
        batches = [sent[i::clients] for i in range(clients)]
        barrier = threading.Barrier(clients)
        errors = []

        def client(batch):
            try:
                barrier.wait(30)
                send_messages(relay, batch)
            except Exception as e:  # noqa: BLE001 - reported below
                errors.append(repr(e))
        threads = [threading.Thread(target=client, args=(b,)) for b in batches]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        self.assertEqual(errors, [], "submissions failed")

        report = self.wait_delivered(sent, timeout=60)
        self.assert_accounted(report)
        self.assert_each_delivered_once(report)
        counters = self.token.counters()
        up = self.upstream.counters()
        sys.stdout.write("\n  %d upstream connection(s), at most %d at once\n"
                         % (up["connections"], up["max_concurrent_connections"]))
        self.assertEqual(counters["requests"], 1,
                         "20 deliveries over %d upstream connection(s) need one token request: %s"
                         % (up["connections"], self.token.log()))
        (token,) = self.token.tokens()
        self.assertTrue(all(meta["token"] == token for _, meta in self.upstream.messages()))
        self.assertEqual(up["auth_failures"], 0, self.upstream.auth_log())
        self.assertLessEqual(up["max_concurrent_connections"], 3)


# ---------------------------------------------------------------- 7. configuration error

class ConfigurationErrorTest(OAuthCase):
    WINDOW = 8.0

    def test_expired_secret_waits_with_hint_and_backoff(self):
        self.start_token(errors=["7000222"] * 30)
        self.start_upstream()
        relay = self.make_relay([harness.scanner_account()], extra_sections={"queue": QUEUE_FAST})
        self.start_relay(relay)
        sent = self.new_messages(5, "expired secret")
        for m in sent:   # separate sessions, so that their retries are not in step
            send_messages(relay, [m])
            time.sleep(0.3)
        harness.wait_for(lambda: self.token.counters()["requests"] >= 1, what="the first token request")
        started = time.monotonic()
        time.sleep(self.WINDOW)
        requests = self.token.counters()["requests"]
        log = self.relay_log()
        deferrals = len(re.findall(r"status=deferred", log))
        sys.stdout.write("\n  %d token request(s) in %.0f s; %d deferral(s) logged\n"
                         % (requests, time.monotonic() - started, deferrals))
        # 2 s doubling (with +-25 % jitter): at most 1 + 2 s + 4 s expiries in 8 s.
        self.assertLessEqual(requests, 4, "the token endpoint is hammered: %s" % self.token.log())

        report = self.ledger(sent)
        self.assert_accounted(report)
        self.assert_waiting(report)
        self.assertEqual(self.upstream.messages(), [], "nothing may reach the upstream")
        self.assertEqual(self.token.counters(full=True)["refusals"].get("scripted_7000222"), requests)

        hint_lines = [l for l in log.splitlines() if "AADSTS7000222" in l]
        self.assertTrue(hint_lines, "the refused token request is not logged")
        self.assertTrue(any("client secret has expired" in l and "client_secret_file" in l
                            for l in hint_lines),
                        "no one-line hint naming the fix: %r" % hint_lines[:2])
        self.assertNotIn(CLIENT_SECRET, log, "the relay log shows the client secret")


if __name__ == "__main__":
    sys.exit("run through run_tests.py")
