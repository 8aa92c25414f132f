"""Two relays behind Debian's haproxy in TCP mode, each with its own spool:
haproxy sends the PROXY protocol header (v2 to one backend, v1 to another,
v2 in front of the implicit-TLS listener) and the relays, which trust it
through `server.proxy_protocol_from`, take the client's address from the
header: the Received: header, the log, the bindings and the per-client
limits all name the client (127.0.0.5 here), not haproxy (127.0.0.2). A
client that connects directly and sends a PROXY line itself is not trusted:
its line is a bad command and changes nothing.

Its own ctest label, haproxy (`ctest -L haproxy`)."""
import os
import re
import subprocess

import harness

PROXY = "127.0.0.2"           # haproxy's address towards the nodes (its `source`)
CLIENT = "127.0.0.5"          # the device, as haproxy sees it
UNBOUND = "127.0.0.6"         # a device without a binding
SPOOFED = "127.0.0.9"         # bound in the policy; nobody connects from it
BOUND = "bound@contoso.com"
SPOOF_TARGET = "spoofed@contoso.com"
SCANNER_PASSWORD = harness.SCANNER_PASSWORD
PER_CLIENT = 2                # server.max_connections_per_client on the nodes

HAPROXY_CONFIG = """\
global
    maxconn 200

defaults
    mode tcp
    source {proxy}
    timeout connect 5s
    timeout client 60s
    timeout server 60s

# STARTTLS submission, PROXY v2. The health checks send a v2 LOCAL header
# and wait for the greeting.
frontend submission_v2
    bind 127.0.0.1:{v2_port}
    default_backend nodes_v2
backend nodes_v2
    balance roundrobin
    option tcp-check
    tcp-check expect rstring ^220
    server a 127.0.0.1:{a_submission} send-proxy-v2 check check-send-proxy inter 2s
    server b 127.0.0.1:{b_submission} send-proxy-v2 check check-send-proxy inter 2s

# The same listeners, PROXY v1 (text).
frontend submission_v1
    bind 127.0.0.1:{v1_port}
    default_backend nodes_v1
backend nodes_v1
    balance roundrobin
    server a 127.0.0.1:{a_submission} send-proxy
    server b 127.0.0.1:{b_submission} send-proxy

# Implicit TLS (port 465): the header comes before the handshake; checked
# on the node's STARTTLS port, as the README shows.
frontend submissions
    bind 127.0.0.1:{tls_port}
    default_backend nodes_tls
backend nodes_tls
    balance roundrobin
    option tcp-check
    tcp-check expect rstring ^220
    server a 127.0.0.1:{a_submissions} send-proxy-v2 check port {a_submission} check-send-proxy inter 2s
    server b 127.0.0.1:{b_submissions} send-proxy-v2 check port {b_submission} check-send-proxy inter 2s

# Node a alone, for its per-client limits.
frontend node_a
    bind 127.0.0.1:{a_port}
    default_backend node_a
backend node_a
    server a 127.0.0.1:{a_submission} send-proxy-v2
"""


def read_to_end(sock):
    """What the peer sends until it closes (a reset, when it closed with
    our bytes unread, ends it too)."""
    data = b""
    try:
        while True:
            chunk = sock.recv(4096)
            if not chunk:
                return data
            data += chunk
    except ConnectionResetError:
        return data


def queued(out):
    return re.findall(r"(?m)^<[-~]  250 2\.0\.0 Ok: queued as (\S+)", out)


class HAProxyTest(harness.IntegrationCase):
    def setUp(self):
        super().setUp()
        self.haproxy_binary = harness.require_tool("haproxy")
        self.swaks_binary = harness.require_tool("swaks")
        self.nodes = [self.start_node(name) for name in ("a", "b")]
        self.relay = self.nodes[0]   # whose log a failing tearDown shows
        self.start_haproxy()

    def start_node(self, name):
        policy = harness.policy_toml(
            org={"smtp_client_authentication_disabled": True},
            mailboxes=[{"identity": harness.SCANNER_ID, "password": SCANNER_PASSWORD,
                        "smtp_client_authentication_disabled": False},
                       {"identity": BOUND, "smtp_client_authentication_disabled": False},
                       {"identity": SPOOF_TARGET, "smtp_client_authentication_disabled": False}],
            bindings=[{"network": CLIENT, "identity": BOUND},
                      {"network": SPOOFED, "identity": SPOOF_TARGET}])
        relay = harness.Relay(os.path.join(self.workdir, "node-" + name), self.pki, [], kind="directory",
                              log_level="debug",
                              extra_sections={"server": {"proxy_protocol_from": [PROXY],
                                                         "max_connections_per_client": PER_CLIENT}})
        harness.write_policy(relay, policy)
        self.log_files.append(relay.log_path)
        self.start_relay(relay)
        return relay

    def start_haproxy(self):
        a, b = self.nodes
        self.ports = {name: harness.free_port() for name in ("v2_port", "v1_port", "tls_port", "a_port")}
        config = os.path.join(self.workdir, "haproxy.cfg")
        with open(config, "w") as f:
            f.write(HAPROXY_CONFIG.format(a_submission=a.submission_port, b_submission=b.submission_port,
                                          a_submissions=a.submissions_port, b_submissions=b.submissions_port,
                                          proxy=PROXY, **self.ports))
        check = subprocess.run([self.haproxy_binary, "-c", "-q", "-f", config], stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, timeout=30)
        self.assertEqual(check.returncode, 0, check.stdout.decode(errors="replace"))
        self.haproxy = harness.Process([self.haproxy_binary, "-db", "-f", config],
                                       os.path.join(self.workdir, "haproxy.log"), cwd=self.workdir)
        self._processes.append(self.haproxy)
        self.log_files.append(self.haproxy.log_path)
        for port in self.ports.values():
            harness.wait_for(lambda port=port: not self.haproxy.running() or harness.port_accepts(port),
                             what="haproxy on port %d" % port)
        self.assertTrue(self.haproxy.running(), harness.tail(self.haproxy.log_path))

    def swaks(self, port, source, sender, tls="--tls", identity=None, subject="through haproxy"):
        message = harness.make_message(sender, "alice@example.org", subject)
        path = os.path.join(self.workdir, "msg-%s.eml" % os.urandom(4).hex())
        with open(path, "wb") as f:
            f.write(message[:-2])  # swaks adds the CRLF before the dot
        argv = [self.swaks_binary, "--server", "127.0.0.1:%d" % port, "--local-interface", source,
                "--ehlo", "printer.contoso.test", "--from", sender, "--to", "alice@example.org",
                "--data", "@" + path, "--timeout", "30", tls]
        if identity is not None:
            argv += ["--auth", "PLAIN", "--auth-user", identity, "--auth-password", SCANNER_PASSWORD]
        result = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                timeout=90)
        return result.returncode, result.stdout.decode("utf-8", "replace")

    def delivered(self):
        """{queue id: (eml, node)} of every message either node delivered."""
        out = {}
        for node in self.nodes:
            for eml, _, qid in node.directory_messages():
                out[qid] = (eml, node)
        return out

    def wait_delivered(self, ids):
        return harness.wait_for(lambda: set(ids) <= set(self.delivered()) and self.delivered(),
                                what="messages %s delivered" % sorted(ids))

    def send_and_check(self, port, tls="--tls", count=2):
        """`count` messages from CLIENT through one haproxy frontend: each is
        accepted by its binding, and names CLIENT in its Received: header
        and in its node's log line. Returns the nodes that took them."""
        ids = []
        for i in range(count):
            code, out = self.swaks(port, CLIENT, BOUND, tls=tls, subject="haproxy %d" % i)
            self.assertEqual(code, 0, out)
            ids += queued(out)
        self.assertEqual(len(ids), count)
        delivered = self.wait_delivered(ids)
        nodes = set()
        for qid in ids:
            eml, node = delivered[qid]
            nodes.add(node.workdir)
            (received,), _ = harness.split_leading_received(eml)
            self.assertIn(b"([%s])" % CLIENT.encode(), received)
            self.assertNotIn(PROXY.encode(), received)
            self.assertRegex(node.log().decode(), r"accepted id=%s account=%s client=%s " %
                             (re.escape(qid), re.escape(BOUND), re.escape(CLIENT)))
        return nodes

    def assert_no_refused_proxy(self):
        for node in self.nodes:
            self.assertNotIn("connection from proxy", node.log().decode())

    def test_proxy_v2_and_v1_reach_both_nodes_with_the_clients_address(self):
        both = {node.workdir for node in self.nodes}
        self.assertEqual(self.send_and_check(self.ports["v2_port"]), both)
        self.assertEqual(self.send_and_check(self.ports["v1_port"]), both)
        # The binding is the client's, not haproxy's: another device through
        # the same proxy is not bound.
        code, out = self.swaks(self.ports["v2_port"], UNBOUND, BOUND)
        self.assertNotEqual(code, 0, out)
        self.assertRegex(out, r"(?m)^<[-~*]{1,2} +%s\s*$" % re.escape(harness.REPLY_NOT_AUTHENTICATED))
        # AUTH through the proxy works too, and its log line names the client.
        code, out = self.swaks(self.ports["v1_port"], UNBOUND, harness.SCANNER_ID, identity=harness.SCANNER_ID)
        self.assertEqual(code, 0, out)
        logs = "".join(node.log().decode() for node in self.nodes)
        self.assertIn("auth ok: account=%s client=%s " % (harness.SCANNER_ID, UNBOUND), logs)
        self.assert_no_refused_proxy()

    def test_health_checks_send_local_and_are_served(self):
        # haproxy's checks (check-send-proxy on the v2 backend) send a LOCAL
        # header and wait for the 220: the proxy connects for itself, and
        # is neither refused nor limited as a client.
        line = "proxy %s connects for itself (PROXY v2 LOCAL)" % PROXY
        for node in self.nodes:
            harness.wait_for(lambda node=node: line in node.log().decode(), what="a health check at " + node.workdir)
        self.assert_no_refused_proxy()

    def test_implicit_tls_through_haproxy(self):
        both = {node.workdir for node in self.nodes}
        self.assertEqual(self.send_and_check(self.ports["tls_port"], tls="--tls-on-connect"), both)
        self.assert_no_refused_proxy()

    def test_a_direct_client_cannot_spoof_its_address(self):
        node = self.nodes[0]
        d = harness.Dialogue(harness.connect_from(UNBOUND, node.submission_port), node.client_tls_context())
        d.expect("220 *")   # greeted at once: no header is awaited from an untrusted client
        d.send("PROXY TCP4 %s 127.0.0.1 40000 %d" % (SPOOFED, node.submission_port))
        self.assertRegex(d.read_reply()[-1], r"^5\d\d ")
        d.send("EHLO printer.contoso.test")
        d.expect("250 *")
        # SPOOFED's binding does not apply: the client is still UNBOUND.
        self.assertEqual(harness.submit_on(d, SPOOF_TARGET), harness.REPLY_NOT_AUTHENTICATED)
        d.close()
        # A PROXY v2 header from it is bytes that are no command either
        # (and a bare LF among them), whatever the session makes of them.
        s = harness.connect_from(UNBOUND, node.submission_port)
        f = s.makefile("rb")
        self.assertTrue(f.readline().startswith(b"220 "))
        s.sendall(b"\r\n\r\n\x00\r\nQUIT\n\x21\x11\x00\x0c\x7f\x00\x00\x09\x7f\x00\x00\x01\x9c\x40\x02\x4b"
                  b"EHLO printer.contoso.test\r\nMAIL FROM:<%s>\r\nQUIT\r\n" % SPOOF_TARGET.encode())
        transcript = read_to_end(s)
        self.assertNotRegex(transcript, rb"(?m)^250 2\.1\.0")
        s.close()
        log = node.log().decode()
        self.assertNotIn("client=%s" % SPOOFED, log)
        self.assertNotIn("session %s" % SPOOFED, log)

    def test_a_trusted_proxy_must_send_a_header(self):
        # haproxy's own address without a header: closed, before any greeting.
        node = self.nodes[0]
        for _ in range(3):
            s = harness.connect_from(PROXY, node.submission_port)
            s.sendall(b"EHLO printer.contoso.test\r\n")
            self.assertEqual(read_to_end(s), b"")
            s.close()
        refusals = re.findall(r"connection from proxy %s closed: no PROXY protocol header" % re.escape(PROXY),
                              node.log().decode())
        self.assertEqual(len(refusals), 1, "refusals of one proxy are logged once a minute")
        # A valid header then anything: the session starts only once the
        # header is complete, and the bytes after it are the client's.
        s = harness.connect_from(PROXY, node.submission_port)
        header = b"PROXY TCP4 %s 127.0.0.1 40000 %d\r\n" % (CLIENT.encode(), node.submission_port)
        s.sendall(header[:20])
        f = s.makefile("rb")
        s.sendall(header[20:] + b"NOOP\r\n")
        self.assertTrue(f.readline().startswith(b"220 "))
        self.assertTrue(f.readline().startswith(b"250 "))
        s.close()

    def test_per_client_limits_use_the_clients_address(self):
        port = self.ports["a_port"]   # node a alone
        held = []
        for _ in range(PER_CLIENT):
            s = harness.connect_from(CLIENT, port)
            self.assertTrue(s.makefile("rb").readline().startswith(b"220 "))
            held.append(s)
        s = harness.connect_from(CLIENT, port)
        self.assertEqual(s.makefile("rb").readline(),
                         b"421 4.7.0 Too many connections from your host, try again later\r\n")
        s.close()
        # Every client comes from haproxy's address, but each is limited as
        # itself: another one still gets in.
        for source in (UNBOUND, "127.0.0.7"):
            s = harness.connect_from(source, port)
            self.assertTrue(s.makefile("rb").readline().startswith(b"220 "))
            held.append(s)
        self.assertIn("client %s refused: server.max_connections_per_client" % CLIENT,
                      self.nodes[0].log().decode())
        for s in held:
            s.close()
