// A server-side TLS handshake over memory, for a port whose connections are given to their
// owner only after the first decrypted bytes are known (port 443: HTTPS or TURN, decided by
// what the client sends first, not by ALPN or SNI). The caller moves bytes between its socket
// and this object; once it has decided, it releases the SSL, with everything received so far
// decrypted, to whoever serves the connection (asio::ssl::stream takes an SSL*). Nothing is
// lost or read twice across the hand-over. Not thread-safe; nothing throws after construction.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <openssl/types.h>

#include <parley/tls/context.hpp>

namespace parley::tls {

struct SslFree {
  void operator()(SSL* ssl) const;
};
using UniqueSsl = std::unique_ptr<SSL, SslFree>;

class ServerHandshake {
 public:
  // Throws std::bad_alloc when OpenSSL cannot create the SSL.
  explicit ServerHandshake(std::shared_ptr<ServerContext> context);
  ~ServerHandshake();
  ServerHandshake(const ServerHandshake&) = delete;
  ServerHandshake& operator=(const ServerHandshake&) = delete;

  enum class State { Handshaking, Established, Failed, Closed };

  // Hands in bytes read from the socket; advances the handshake and, once established, decrypts
  // every complete record into plaintext(). Returns the state afterwards. Always send output()
  // next, whatever the state (it may hold an alert).
  State feed(std::span<const std::uint8_t> received);

  // Bytes to write to the socket (handshake flights, session tickets, alerts), then
  // consumeOutput() once written.
  std::span<const std::uint8_t> output() const { return output_; }
  void consumeOutput() { output_.clear(); }

  State state() const { return state_; }
  // Application bytes the client sent so far, decrypted.
  std::span<const std::uint8_t> plaintext() const { return plaintext_; }
  // The ALPN protocol agreed ("" when none).
  std::string_view alpn() const;
  // Why the handshake failed (OpenSSL's reasons), for a debug log line.
  const std::string& error() const { return error_; }
  const std::shared_ptr<ServerContext>& context() const { return context_; }

  // Established, output() sent: gives up the SSL, whose memory BIOs are empty (everything
  // received is in plaintext(), which the caller takes first). The new owner attaches its own
  // BIOs (asio::ssl::stream does). Null in any other state.
  UniqueSsl release();

 private:
  void drainOutput();
  void readPlaintext();

  std::shared_ptr<ServerContext> context_;
  UniqueSsl ssl_;
  BIO* input_ = nullptr;      // owned by ssl_
  BIO* outputBio_ = nullptr;  // owned by ssl_
  State state_ = State::Handshaking;
  std::vector<std::uint8_t> output_;
  std::vector<std::uint8_t> plaintext_;
  std::string error_;
};

}  // namespace parley::tls
