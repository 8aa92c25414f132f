#pragma once
// Owning pointers for OpenSSL objects, each freed with its own free
// function; and the text of OpenSSL's last error.
#include <memory>
#include <string>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

namespace subrelay::auth {

template <auto Free>
struct openssl_free {
    template <class T>
    void operator()(T* p) const {
        Free(p);
    }
};

using bio_ptr = std::unique_ptr<BIO, openssl_free<&BIO_free>>;
using pkey_ptr = std::unique_ptr<EVP_PKEY, openssl_free<&EVP_PKEY_free>>;
using x509_ptr = std::unique_ptr<X509, openssl_free<&X509_free>>;
using md_ctx_ptr = std::unique_ptr<EVP_MD_CTX, openssl_free<&EVP_MD_CTX_free>>;
using ssl_ctx_ptr = std::unique_ptr<SSL_CTX, openssl_free<&SSL_CTX_free>>;
using ssl_ptr = std::unique_ptr<SSL, openssl_free<&SSL_free>>;
using ssl_session_ptr = std::unique_ptr<SSL_SESSION, openssl_free<&SSL_SESSION_free>>;

// The oldest error on this thread's OpenSSL error queue, as text, and the
// queue emptied; "unknown TLS error" when it was empty.
inline std::string openssl_error() {
    const unsigned long e = ERR_get_error();
    if (e == 0) return "unknown TLS error";
    char buf[256];
    ERR_error_string_n(e, buf, sizeof buf);
    ERR_clear_error();
    return buf;
}

}  // namespace subrelay::auth
