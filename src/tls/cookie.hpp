// DTLS cookies (RFC 6347 §4.2.1): HMAC-SHA256 over the client's address and port under a
// random per-process secret. A cookie proves the client receives at the address it claims
// without the server keeping anything per client; every worker of the process accepts a
// cookie another issued. Private to parley::tls.
#pragma once

#include <parley/base/endpoint.hpp>

#include "ossl.hpp"

namespace parley::tls::detail {

// Draws the secret; call at start-up (ServerContext::load does). Throws std::runtime_error
// if the system has no randomness. Later calls do nothing.
void initCookieSecret();

// Installs the generate/verify callbacks on a DTLS SSL_CTX.
void installCookieCallbacks(SSL_CTX* ctx);

// The address the next cookie callback on `ssl` binds to; the Endpoint must outlive the use.
// Without one, the callbacks ask the SSL's read BIO (a real datagram socket BIO knows it).
void setCookiePeer(SSL* ssl, const Endpoint* peer);

}  // namespace parley::tls::detail
