#include "test_tls.hpp"
#include "auth/openssl_ptr.hpp"

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <atomic>
#include <stdexcept>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

namespace subrelay::auth::test {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;


void check(bool ok, const char* what) {
    if (!ok) {
        throw std::runtime_error(std::string("test PKI: ") + what);
    }
}

pkey_ptr new_key() {
    pkey_ptr key(EVP_EC_gen("P-256"));
    check(key != nullptr, "EC key generation");
    return key;
}

void add_ext(X509* cert, X509V3_CTX* ctx, int nid, const char* value) {
    X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, ctx, nid, value);
    check(ext != nullptr, "extension");
    check(X509_add_ext(cert, ext, -1) == 1, "add extension");
    X509_EXTENSION_free(ext);
}

std::atomic<long> next_serial{1};

x509_ptr new_cert(EVP_PKEY* key, const std::string& cn, X509* issuer, EVP_PKEY* issuer_key, bool is_ca,
                  const std::string& san) {
    x509_ptr cert(X509_new());
    check(cert != nullptr, "X509_new");
    X509_set_version(cert.get(), 2);
    ASN1_INTEGER_set(X509_get_serialNumber(cert.get()), next_serial++);
    X509_gmtime_adj(X509_getm_notBefore(cert.get()), -3600);
    X509_gmtime_adj(X509_getm_notAfter(cert.get()), 24 * 3600);
    check(X509_set_pubkey(cert.get(), key) == 1, "set pubkey");
    X509_NAME* name = X509_get_subject_name(cert.get());
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1,
                               0);
    X509_set_issuer_name(cert.get(), issuer != nullptr ? X509_get_subject_name(issuer) : name);
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, issuer != nullptr ? issuer : cert.get(), cert.get(), nullptr, nullptr, 0);
    if (is_ca) {
        add_ext(cert.get(), &ctx, NID_basic_constraints, "critical,CA:TRUE");
        add_ext(cert.get(), &ctx, NID_key_usage, "critical,keyCertSign,cRLSign");
        add_ext(cert.get(), &ctx, NID_subject_key_identifier, "hash");
    } else {
        add_ext(cert.get(), &ctx, NID_basic_constraints, "CA:FALSE");
        add_ext(cert.get(), &ctx, NID_key_usage, "critical,digitalSignature");
        add_ext(cert.get(), &ctx, NID_ext_key_usage, "serverAuth");
        add_ext(cert.get(), &ctx, NID_subject_key_identifier, "hash");
        add_ext(cert.get(), &ctx, NID_authority_key_identifier, "keyid:always");
        add_ext(cert.get(), &ctx, NID_subject_alt_name, san.c_str());
    }
    check(X509_sign(cert.get(), issuer_key != nullptr ? issuer_key : key, EVP_sha256()) > 0, "sign");
    return cert;
}

std::string to_pem(X509* cert) {
    std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new(BIO_s_mem()), &BIO_free);
    check(PEM_write_bio_X509(bio.get(), cert) == 1, "write cert");
    char* data = nullptr;
    const long n = BIO_get_mem_data(bio.get(), &data);
    return std::string(data, static_cast<std::size_t>(n));
}

std::string to_pem(EVP_PKEY* key) {
    std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new(BIO_s_mem()), &BIO_free);
    check(PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr) == 1, "write key");
    char* data = nullptr;
    const long n = BIO_get_mem_data(bio.get(), &data);
    return std::string(data, static_cast<std::size_t>(n));
}

int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

std::string url_decode(std::string_view in) {
    std::string out;
    for (std::size_t i = 0; i < in.size(); ++i) {
        if (in[i] == '+') {
            out.push_back(' ');
        } else if (in[i] == '%' && i + 2 < in.size() && hex_value(in[i + 1]) >= 0 && hex_value(in[i + 2]) >= 0) {
            out.push_back(static_cast<char>(hex_value(in[i + 1]) * 16 + hex_value(in[i + 2])));
            i += 2;
        } else {
            out.push_back(in[i]);
        }
    }
    return out;
}

}  // namespace

// ---- temp_dir ---------------------------------------------------------------

temp_dir::temp_dir() {
    unsigned char raw[8];
    check(RAND_bytes(raw, sizeof raw) == 1, "random");
    std::string name = "subrelay-auth-test-";
    static constexpr char hex[] = "0123456789abcdef";
    for (unsigned char c : raw) {
        name.push_back(hex[c >> 4]);
        name.push_back(hex[c & 0xf]);
    }
    path_ = std::filesystem::temp_directory_path() / name;
    std::filesystem::create_directories(path_);
}

temp_dir::~temp_dir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
}

// ---- test_ca ----------------------------------------------------------------

struct test_ca::impl {
    pkey_ptr key;
    x509_ptr cert;
};

test_ca::test_ca() : impl_(std::make_unique<impl>()) {
    impl_->key = new_key();
    impl_->cert = new_cert(impl_->key.get(), "subrelay test CA", nullptr, nullptr, true, "");
}

test_ca::~test_ca() = default;

std::string test_ca::cert_pem() const { return to_pem(impl_->cert.get()); }

pem_pair test_ca::issue(const std::string& common_name, const std::string& san) const {
    auto key = new_key();
    auto cert = new_cert(key.get(), common_name, impl_->cert.get(), impl_->key.get(), false, san);
    return {to_pem(cert.get()), to_pem(key.get())};
}

std::shared_ptr<ssl::context> server_context(const pem_pair& pair) {
    auto ctx = std::make_shared<ssl::context>(ssl::context::tls_server);
    ctx->use_certificate_chain(asio::buffer(pair.cert));
    ctx->use_private_key(asio::buffer(pair.key), ssl::context::pem);
    return ctx;
}

std::map<std::string, std::string> form_decode(const std::string& body) {
    std::map<std::string, std::string> out;
    std::string_view rest(body);
    while (!rest.empty()) {
        const auto amp = rest.find('&');
        const std::string_view pair = rest.substr(0, amp);
        const auto eq = pair.find('=');
        out[url_decode(pair.substr(0, eq))] = eq == std::string_view::npos ? std::string{} : url_decode(pair.substr(eq + 1));
        if (amp == std::string_view::npos) {
            break;
        }
        rest.remove_prefix(amp + 1);
    }
    return out;
}

// ---- https_test_server ------------------------------------------------------

struct https_test_server::state : std::enable_shared_from_this<state> {
    state(asio::io_context& ioc, std::shared_ptr<ssl::context> c, request_handler h)
        : acceptor(ioc, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0)), ctx(std::move(c)),
          handler(std::move(h)) {}

    tcp::acceptor acceptor;
    std::shared_ptr<ssl::context> ctx;
    request_handler handler;
    std::vector<captured_request> requests;
    std::size_t connections = 0;

    static asio::awaitable<void> accept_loop(std::shared_ptr<state> self) {
        for (;;) {
            auto [ec, socket] = co_await self->acceptor.async_accept(asio::as_tuple(asio::use_awaitable));
            if (ec) {
                co_return;
            }
            ++self->connections;
            asio::co_spawn(self->acceptor.get_executor(), session(self, std::move(socket)), asio::detached);
        }
    }

    static asio::awaitable<void> session(std::shared_ptr<state> self, tcp::socket socket) {
        constexpr auto tok = asio::as_tuple(asio::use_awaitable);
        ssl::stream<beast::tcp_stream> stream(beast::tcp_stream(std::move(socket)), *self->ctx);
        auto [hec] = co_await stream.async_handshake(ssl::stream_base::server, tok);
        if (hec) {
            co_return;
        }
        beast::flat_buffer buffer;
        http::request<http::string_body> req;
        auto [rec, n] = co_await http::async_read(stream, buffer, req, tok);
        (void)n;
        if (rec) {
            co_return;
        }
        captured_request cap;
        cap.method = std::string(req.method_string());
        cap.target = std::string(req.target());
        if (auto it = req.find(http::field::content_type); it != req.end()) {
            cap.content_type = std::string(it->value());
        }
        cap.body = req.body();
        cap.form = form_decode(cap.body);
        self->requests.push_back(cap);
        const canned_response answer = self->handler(cap);
        if (answer.never_answer) {
            asio::steady_timer stall(stream.get_executor());
            stall.expires_after(std::chrono::hours(1));
            co_await stall.async_wait(tok);
            co_return;
        }
        http::response<http::string_body> res{static_cast<http::status>(answer.status), 11};
        res.set(http::field::content_type, answer.content_type);
        res.set(http::field::connection, "close");
        res.body() = answer.body;
        res.prepare_payload();
        auto [wec, written] = co_await http::async_write(stream, res, tok);
        (void)written;
        if (wec) {
            co_return;
        }
        auto [sec] = co_await stream.async_shutdown(tok);
        (void)sec;
    }
};

https_test_server::https_test_server(asio::io_context& ioc, std::shared_ptr<ssl::context> ctx,
                                     request_handler handler)
    : state_(std::make_shared<state>(ioc, std::move(ctx), std::move(handler))) {
    asio::co_spawn(ioc, state::accept_loop(state_), asio::detached);
}

https_test_server::~https_test_server() {
    boost::system::error_code ec;
    state_->acceptor.close(ec);
}

std::uint16_t https_test_server::port() const { return state_->acceptor.local_endpoint().port(); }

const std::vector<captured_request>& https_test_server::requests() const { return state_->requests; }

std::size_t https_test_server::connections() const { return state_->connections; }

std::string https_test_server::url(const std::string& path) const {
    return "https://127.0.0.1:" + std::to_string(port()) + path;
}

}  // namespace subrelay::auth::test
