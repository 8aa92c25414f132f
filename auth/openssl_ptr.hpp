#pragma once
// Owning pointers for OpenSSL objects, each freed with its own free function.
#include <memory>

#include <openssl/bio.h>
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

}  // namespace subrelay::auth
