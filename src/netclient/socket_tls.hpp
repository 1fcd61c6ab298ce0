// OpenSSL helpers shared by the TLS and DTLS clients of the network check. Private.
#pragma once

#include <string>

#include <openssl/types.h>

#include <parley/netclient/transport.hpp>

namespace parley::netclient::detail {

// OpenSSL's reason for `error`, or of the first queued error (and clears the queue).
std::string openSslReason(unsigned long error);
std::string drainOpenSslErrors();
// Fills `facts` from an established connection.
void fillFacts(SSL* ssl, TlsFacts& facts);
// SNI (not for IP literals, RFC 6066 §3) and one ALPN protocol when not empty.
bool applySniAndAlpn(SSL* ssl, const std::string& sni, const std::string& alpn);

}  // namespace parley::netclient::detail
