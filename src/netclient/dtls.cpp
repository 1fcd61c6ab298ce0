// STUN/TURN over DTLS (RFC 8656 §3.1, RFC 7350): an OpenSSL DTLS client over a connected UDP
// socket. One record carries one message. Retransmission of handshake flights follows OpenSSL's
// timer (DTLSv1_get_timeout / DTLSv1_handle_timeout), bounded by the caller's deadline.
#include <algorithm>
#include <cerrno>
#include <string>

#include <fmt/format.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include <parley/netclient/transport.hpp>

#include "socket_tls.hpp"
#include "socket_util.hpp"

namespace parley::netclient {
namespace {

using detail::OwnedFd;

struct SslDeleter {
  void operator()(SSL* ssl) const { SSL_free(ssl); }
};
struct SslCtxDeleter {
  void operator()(SSL_CTX* context) const { SSL_CTX_free(context); }
};

// Waits for the socket or OpenSSL's retransmission timer, whichever is first. False when the
// deadline passed.
bool waitReadableOrTimer(int fd, SSL* ssl, Deadline deadline) {
  Deadline until = deadline;
  timeval timer{};
  if (DTLSv1_get_timeout(ssl, &timer) == 1) {
    const auto due = Clock::now() + std::chrono::seconds(timer.tv_sec) +
                     std::chrono::microseconds(timer.tv_usec);
    until = std::min(until, due);
  }
  if (detail::waitFor(fd, POLLIN, until)) return true;
  if (Clock::now() >= deadline) return false;
  // The timer fired: retransmit the last flight.
  DTLSv1_handle_timeout(ssl);
  return true;
}

class DtlsTransport final : public MessageTransport {
 public:
  DtlsTransport(OwnedFd fd, Endpoint server, std::unique_ptr<SSL_CTX, SslCtxDeleter> context,
                std::unique_ptr<SSL, SslDeleter> ssl)
      : fd_(std::move(fd)), server_(server), context_(std::move(context)), ssl_(std::move(ssl)) {}

  ~DtlsTransport() override {
    // close_notify, best effort (one datagram, no wait).
    SSL_shutdown(ssl_.get());
  }

  Result<void> handshake(Deadline deadline) {
    // Every pass waits on the socket or the retransmission timer; the deadline ends it.
    for (int pass = 0; pass < 10'000; ++pass) {
      ERR_clear_error();
      const int result = SSL_do_handshake(ssl_.get());
      if (result == 1) return {};
      const int error = SSL_get_error(ssl_.get(), result);
      if (error == SSL_ERROR_WANT_READ || error == SSL_ERROR_WANT_WRITE) {
        if (!waitReadableOrTimer(fd_.get(), ssl_.get(), deadline))
          return tl::unexpected(
              Failure{"timeout", fmt::format("{}: no DTLS handshake answer in time", describe())});
        continue;
      }
      if (error == SSL_ERROR_SYSCALL && (errno == ECONNREFUSED))
        return tl::unexpected(Failure{
            "refused",
            fmt::format("UDP {}: port unreachable (nothing listens there)", server_.toString())});
      return tl::unexpected(Failure{
          "tls_failed",
          fmt::format("{}: DTLS handshake failed: {}", describe(), detail::drainOpenSslErrors())});
    }
    return tl::unexpected(
        Failure{"timeout", fmt::format("{}: DTLS handshake did not finish", describe())});
  }

  SSL* ssl() { return ssl_.get(); }

  Result<void> send(std::span<const std::uint8_t> message, Deadline deadline) override {
    for (int pass = 0; pass < 1000; ++pass) {
      ERR_clear_error();
      std::size_t written = 0;
      const int result = SSL_write_ex(ssl_.get(), message.data(), message.size(), &written);
      if (result == 1) return {};
      const int error = SSL_get_error(ssl_.get(), result);
      if (error == SSL_ERROR_WANT_WRITE) {
        if (!detail::waitFor(fd_.get(), POLLOUT, deadline))
          return tl::unexpected(
              Failure{"timeout", fmt::format("{}: could not send in time", describe())});
        continue;
      }
      return tl::unexpected(
          Failure{"protocol", fmt::format("{}: DTLS error while sending: {}", describe(),
                                          detail::drainOpenSslErrors())});
    }
    return tl::unexpected(Failure{"timeout", fmt::format("{}: could not send", describe())});
  }

  Result<std::size_t> receive(std::span<std::uint8_t> buffer, Deadline deadline) override {
    for (int pass = 0; pass < 10'000; ++pass) {
      ERR_clear_error();
      std::size_t got = 0;
      const int result = SSL_read_ex(ssl_.get(), buffer.data(), buffer.size(), &got);
      if (result == 1) return got;
      const int error = SSL_get_error(ssl_.get(), result);
      if (error == SSL_ERROR_ZERO_RETURN)
        return tl::unexpected(
            Failure{"protocol", fmt::format("{}: the server closed the DTLS session", describe())});
      if (error == SSL_ERROR_WANT_READ || error == SSL_ERROR_WANT_WRITE) {
        if (!waitReadableOrTimer(fd_.get(), ssl_.get(), deadline))
          return tl::unexpected(
              Failure{"timeout", fmt::format("{}: no answer in time", describe())});
        continue;
      }
      if (error == SSL_ERROR_SYSCALL && errno == ECONNREFUSED)
        return tl::unexpected(
            Failure{"refused", fmt::format("UDP {}: port unreachable", server_.toString())});
      return tl::unexpected(Failure{
          "protocol", fmt::format("{}: DTLS error: {}", describe(), detail::drainOpenSslErrors())});
    }
    return tl::unexpected(Failure{"timeout", fmt::format("{}: no answer in time", describe())});
  }

  bool reliable() const override { return false; }
  std::string describe() const override { return "dtls " + server_.toString(); }
  std::optional<Endpoint> localEndpoint() const override {
    return detail::localEndpointOf(fd_.get());
  }

 private:
  OwnedFd fd_;
  Endpoint server_;
  std::unique_ptr<SSL_CTX, SslCtxDeleter> context_;
  std::unique_ptr<SSL, SslDeleter> ssl_;
};

}  // namespace

Result<std::unique_ptr<MessageTransport>> openDtls(const std::string& sni, const Endpoint& server,
                                                   Deadline deadline, TlsFacts* facts) {
  auto fd = detail::connectedUdpSocket(server);
  if (!fd) return tl::unexpected(fd.error());
  auto setupFailure = [&] {
    return tl::unexpected(
        Failure{"tls_failed", fmt::format("dtls {}: DTLS setup failed: {}", server.toString(),
                                          detail::drainOpenSslErrors())});
  };
  std::unique_ptr<SSL_CTX, SslCtxDeleter> context(SSL_CTX_new(DTLS_client_method()));
  if (!context) return setupFailure();
  SSL_CTX_set_min_proto_version(context.get(), DTLS1_2_VERSION);
  // The caller compares the leaf's fingerprint with the server's published one.
  SSL_CTX_set_verify(context.get(), SSL_VERIFY_NONE, nullptr);
  std::unique_ptr<SSL, SslDeleter> ssl(SSL_new(context.get()));
  if (!ssl) return setupFailure();
  BIO* bio = BIO_new_dgram(fd->get(), BIO_NOCLOSE);
  if (bio == nullptr) return setupFailure();
  sockaddr_storage peer{};
  detail::toSockaddr(server, peer);
  BIO_ctrl(bio, BIO_CTRL_DGRAM_SET_CONNECTED, 0, &peer);
  SSL_set_bio(ssl.get(), bio, bio);
  SSL_set_connect_state(ssl.get());
  if (!detail::applySniAndAlpn(ssl.get(), sni, ""))
    return tl::unexpected(
        Failure{"tls_failed", fmt::format("dtls {}: bad server name", server.toString())});
  auto transport =
      std::make_unique<DtlsTransport>(std::move(*fd), server, std::move(context), std::move(ssl));
  if (auto done = transport->handshake(deadline); !done) return tl::unexpected(done.error());
  if (facts != nullptr) detail::fillFacts(transport->ssl(), *facts);
  return std::unique_ptr<MessageTransport>(std::move(transport));
}

}  // namespace parley::netclient
