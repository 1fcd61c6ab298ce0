// The network check's client side (docs/netcheck.md): connections to the server the way a
// browser in the customer's network would make them. Blocking calls with a deadline each (the
// command-line check runs its checks on threads of its own; no event loop is needed), on POSIX
// sockets and OpenSSL. Nothing here knows which check it serves.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>

#include <tl/expected.hpp>

#include <parley/base/endpoint.hpp>

namespace parley::netclient {

using Clock = std::chrono::steady_clock;
using Deadline = Clock::time_point;

// Why a step failed: `code` is a docs/netcheck.md failure code ("timeout", "refused",
// "unreachable", "dns", "tls_failed", "proxy_refused", "proxy_auth_required", "http_status",
// "protocol", ...), `message` a sentence for people naming what was tried.
struct Failure {
  std::string code;
  std::string message;
};
template <typename T>
using Result = tl::expected<T, Failure>;

// An HTTP proxy (CONNECT), from --proxy / HTTPS_PROXY.
struct Proxy {
  std::string host;
  std::uint16_t port = 3128;
  std::string userColonPassword;  // "" = none; sent as Basic credentials
  std::string display() const;    // "10.10.0.1:3128"
};

// --- byte streams ---------------------------------------------------------------------------

class Stream {
 public:
  virtual ~Stream() = default;
  // At least one byte into `buffer` (0 = the peer closed cleanly).
  virtual Result<std::size_t> readSome(std::span<std::uint8_t> buffer, Deadline deadline) = 0;
  virtual Result<void> writeAll(std::span<const std::uint8_t> bytes, Deadline deadline) = 0;
  virtual std::string describe() const = 0;  // "tcp 203.0.113.10:443", "… via proxy 10.10.0.1:3128"
  virtual std::optional<Endpoint> localEndpoint() const = 0;
};

struct TlsFacts {
  std::string leafSha256;  // lowercase hex of SHA-256 over the leaf certificate's DER
  std::string issuer;      // one line, e.g. "CN=mitmproxy, O=mitmproxy"
  std::string subject;
  std::string protocol;  // "TLSv1.3"
  std::string alpn;      // "" when none was agreed
};

Result<std::unique_ptr<Stream>> connectTcp(const Endpoint& server, Deadline deadline);
// Through an HTTP proxy: TCP to the proxy, CONNECT host:port (Basic credentials when the proxy
// has them), 2xx -> the tunnel; 407 -> Failure{"proxy_auth_required"} naming the proxy; other
// status -> Failure{"proxy_refused", "... answered 403 Forbidden"}.
Result<std::unique_ptr<Stream>> connectViaProxy(const Proxy& proxy, const std::string& host,
                                                std::uint16_t port, Deadline deadline);
// TLS over any stream. Certificates are not verified here: the caller compares the leaf's
// fingerprint with the server's published one. `alpn` e.g. "stun.turn"; "" sends none.
Result<std::unique_ptr<Stream>> startTls(std::unique_ptr<Stream> stream, const std::string& sni,
                                         const std::string& alpn, Deadline deadline,
                                         TlsFacts* facts);

// --- STUN/TURN message transports -------------------------------------------------------------

// One STUN message or ChannelData frame at a time: over a connected UDP socket, DTLS over it,
// or any Stream (framed per RFC 8489 §6.2.2 / RFC 8656 §12.5 with stun::nextFrame).
class MessageTransport {
 public:
  virtual ~MessageTransport() = default;
  virtual Result<void> send(std::span<const std::uint8_t> message, Deadline deadline) = 0;
  // One whole message into `buffer`; its size. Nothing by the deadline: Failure{"timeout"}.
  virtual Result<std::size_t> receive(std::span<std::uint8_t> buffer, Deadline deadline) = 0;
  virtual bool reliable() const = 0;  // stream transports: no retransmission needed
  virtual std::string describe() const = 0;
  virtual std::optional<Endpoint> localEndpoint() const = 0;
};

Result<std::unique_ptr<MessageTransport>> openUdp(const Endpoint& server);
Result<std::unique_ptr<MessageTransport>> openDtls(const std::string& sni, const Endpoint& server,
                                                   Deadline deadline, TlsFacts* facts);
std::unique_ptr<MessageTransport> framed(std::unique_ptr<Stream> stream);

}  // namespace parley::netclient
