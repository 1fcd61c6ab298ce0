// TLS over any Stream (a TCP connection or a proxy's tunnel): OpenSSL with memory BIOs, so the
// record layer never touches a socket. Certificates are not verified here (the caller pins the
// leaf's fingerprint); what the server presented is reported in TlsFacts.
#include <algorithm>
#include <array>
#include <cstring>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <parley/netclient/transport.hpp>

#include "socket_tls.hpp"
#include "socket_util.hpp"

namespace parley::netclient {
namespace detail {

std::string openSslReason(unsigned long error) {
  if (error == 0) return "no reason given";
  const char* reason = ERR_reason_error_string(error);
  if (reason != nullptr) return reason;
  char buffer[256];
  ERR_error_string_n(error, buffer, sizeof buffer);
  return buffer;
}

std::string drainOpenSslErrors() {
  std::string reason;
  // Bounded: OpenSSL's per-thread error queue holds at most 16 entries.
  for (int i = 0; i < 32; ++i) {
    const unsigned long error = ERR_get_error();
    if (error == 0) break;
    if (reason.empty()) reason = openSslReason(error);
  }
  return reason.empty() ? "the handshake failed" : reason;
}

namespace {
std::string nameLine(const X509_NAME* name) {
  if (name == nullptr) return {};
  BIO* bio = BIO_new(BIO_s_mem());
  if (bio == nullptr) return {};
  // RFC 2253 order and escaping, but ", " between parts and UTF-8 kept readable.
  const unsigned long flags =
      ((XN_FLAG_RFC2253 & ~XN_FLAG_SEP_MASK) | XN_FLAG_SEP_CPLUS_SPC) & ~ASN1_STRFLGS_ESC_MSB;
  X509_NAME_print_ex(bio, name, 0, flags);
  char* data = nullptr;
  const long size = BIO_get_mem_data(bio, &data);
  std::string text(data, static_cast<std::size_t>(size > 0 ? size : 0));
  BIO_free(bio);
  return text;
}
}  // namespace

void fillFacts(SSL* ssl, TlsFacts& facts) {
  facts = TlsFacts{};
  facts.protocol = SSL_get_version(ssl);
  const unsigned char* alpn = nullptr;
  unsigned int alpnSize = 0;
  SSL_get0_alpn_selected(ssl, &alpn, &alpnSize);
  if (alpn != nullptr) facts.alpn.assign(reinterpret_cast<const char*>(alpn), alpnSize);
  X509* leaf = SSL_get1_peer_certificate(ssl);
  if (leaf == nullptr) return;
  std::array<unsigned char, EVP_MAX_MD_SIZE> digest{};
  unsigned int digestSize = 0;
  if (X509_digest(leaf, EVP_sha256(), digest.data(), &digestSize) == 1) {
    facts.leafSha256.reserve(2 * digestSize);
    for (unsigned i = 0; i < digestSize; ++i)
      facts.leafSha256 += fmt::format("{:02x}", digest[i]);
  }
  facts.issuer = nameLine(X509_get_issuer_name(leaf));
  facts.subject = nameLine(X509_get_subject_name(leaf));
  X509_free(leaf);
}

bool applySniAndAlpn(SSL* ssl, const std::string& sni, const std::string& alpn) {
  // RFC 6066 §3: no IP literals in server_name.
  std::string host = sni;
  if (host.size() > 2 && host.front() == '[' && host.back() == ']')
    host = host.substr(1, host.size() - 2);
  if (!host.empty() && !IpAddress::parse(host)) {
    if (SSL_set_tlsext_host_name(ssl, host.c_str()) != 1) return false;
  }
  if (!alpn.empty()) {
    if (alpn.size() > 255) return false;
    std::vector<unsigned char> wire;
    wire.push_back(static_cast<unsigned char>(alpn.size()));
    wire.insert(wire.end(), alpn.begin(), alpn.end());
    if (SSL_set_alpn_protos(ssl, wire.data(), static_cast<unsigned>(wire.size())) != 0)
      return false;
  }
  return true;
}

}  // namespace detail

namespace {

struct SslDeleter {
  void operator()(SSL* ssl) const { SSL_free(ssl); }
};
struct SslCtxDeleter {
  void operator()(SSL_CTX* context) const { SSL_CTX_free(context); }
};

class TlsStream final : public Stream {
 public:
  TlsStream(std::unique_ptr<Stream> inner, std::unique_ptr<SSL_CTX, SslCtxDeleter> context,
            std::unique_ptr<SSL, SslDeleter> ssl, BIO* network)
      : inner_(std::move(inner)),
        context_(std::move(context)),
        ssl_(std::move(ssl)),
        network_(network) {}

  ~TlsStream() override {
    // Best effort close_notify: the peer learns the close was deliberate.
    SSL_shutdown(ssl_.get());
    (void)flush(Clock::now() + std::chrono::milliseconds(100));
    BIO_free(network_);
  }

  Result<void> handshake(Deadline deadline) {
    // Each pass either moves records or waits on the inner stream, which honours the deadline.
    for (int pass = 0; pass < 10'000; ++pass) {
      ERR_clear_error();
      const int result = SSL_do_handshake(ssl_.get());
      if (auto flushed = flush(deadline); !flushed) return flushed;
      if (result == 1) return {};
      const int error = SSL_get_error(ssl_.get(), result);
      if (error == SSL_ERROR_WANT_READ) {
        auto filled = fill(deadline);
        if (!filled) return tl::unexpected(filled.error());
        if (*filled == 0)
          return tl::unexpected(
              Failure{"tls_failed",
                      fmt::format("{}: the server closed the connection during the TLS handshake",
                                  inner_->describe())});
        continue;
      }
      if (error == SSL_ERROR_WANT_WRITE) continue;
      return tl::unexpected(
          Failure{"tls_failed", fmt::format("{}: TLS handshake failed: {}", inner_->describe(),
                                            detail::drainOpenSslErrors())});
    }
    return tl::unexpected(
        Failure{"timeout", fmt::format("{}: TLS handshake did not finish", inner_->describe())});
  }

  SSL* ssl() { return ssl_.get(); }

  Result<std::size_t> readSome(std::span<std::uint8_t> buffer, Deadline deadline) override {
    if (buffer.empty()) return 0;
    for (int pass = 0; pass < 10'000; ++pass) {
      ERR_clear_error();
      std::size_t got = 0;
      const int result = SSL_read_ex(ssl_.get(), buffer.data(), buffer.size(), &got);
      if (result == 1) return got;
      const int error = SSL_get_error(ssl_.get(), result);
      if (error == SSL_ERROR_ZERO_RETURN) return 0;
      if (error == SSL_ERROR_WANT_READ || error == SSL_ERROR_WANT_WRITE) {
        // TLS 1.3 may need to answer (key update) before it can read on.
        if (auto flushed = flush(deadline); !flushed) return tl::unexpected(flushed.error());
        if (error == SSL_ERROR_WANT_WRITE) continue;
        auto filled = fill(deadline);
        if (!filled) return tl::unexpected(filled.error());
        if (*filled == 0) return 0;  // closed without close_notify: treat as the end
        continue;
      }
      return tl::unexpected(Failure{
          "protocol", fmt::format("{}: TLS error: {}", describe(), detail::drainOpenSslErrors())});
    }
    return tl::unexpected(Failure{"timeout", fmt::format("{}: no data in time", describe())});
  }

  Result<void> writeAll(std::span<const std::uint8_t> bytes, Deadline deadline) override {
    std::size_t offset = 0;
    for (int pass = 0; pass < 100'000 && offset < bytes.size(); ++pass) {
      ERR_clear_error();
      std::size_t written = 0;
      const int result =
          SSL_write_ex(ssl_.get(), bytes.data() + offset, bytes.size() - offset, &written);
      if (result == 1) {
        offset += written;
        if (auto flushed = flush(deadline); !flushed) return flushed;
        continue;
      }
      const int error = SSL_get_error(ssl_.get(), result);
      if (error == SSL_ERROR_WANT_WRITE || error == SSL_ERROR_WANT_READ) {
        if (auto flushed = flush(deadline); !flushed) return flushed;
        if (error == SSL_ERROR_WANT_READ) {
          auto filled = fill(deadline);
          if (!filled) return tl::unexpected(filled.error());
          if (*filled == 0)
            return tl::unexpected(
                Failure{"protocol", fmt::format("{}: the peer closed the connection", describe())});
        }
        continue;
      }
      return tl::unexpected(Failure{
          "protocol", fmt::format("{}: TLS error: {}", describe(), detail::drainOpenSslErrors())});
    }
    if (offset < bytes.size())
      return tl::unexpected(Failure{"timeout", fmt::format("{}: could not send", describe())});
    return {};
  }

  std::string describe() const override { return "tls over " + inner_->describe(); }
  std::optional<Endpoint> localEndpoint() const override { return inner_->localEndpoint(); }

 private:
  // Sends every record OpenSSL has produced.
  Result<void> flush(Deadline deadline) {
    for (int pass = 0; pass < 10'000; ++pass) {
      const int pending = BIO_read(network_, buffer_.data(), static_cast<int>(buffer_.size()));
      if (pending <= 0) return {};
      if (auto written = inner_->writeAll(
              std::span<const std::uint8_t>(buffer_.data(), static_cast<std::size_t>(pending)),
              deadline);
          !written)
        return written;
    }
    return {};
  }

  // Feeds what the inner stream has into OpenSSL; 0 when it closed.
  Result<std::size_t> fill(Deadline deadline) {
    // Read no more than the BIO pair can take now, so nothing read is ever dropped.
    const std::size_t room = std::min(buffer_.size(), BIO_ctrl_get_write_guarantee(network_));
    if (room == 0)
      return tl::unexpected(
          Failure{"protocol", fmt::format("{}: TLS buffer full", inner_->describe())});
    auto n = inner_->readSome(std::span<std::uint8_t>(buffer_.data(), room), deadline);
    if (!n || *n == 0) return n;
    if (BIO_write(network_, buffer_.data(), static_cast<int>(*n)) != static_cast<int>(*n))
      return tl::unexpected(
          Failure{"protocol", fmt::format("{}: TLS buffer overflow", inner_->describe())});
    return *n;
  }

  std::unique_ptr<Stream> inner_;
  std::unique_ptr<SSL_CTX, SslCtxDeleter> context_;
  std::unique_ptr<SSL, SslDeleter> ssl_;
  BIO* network_;  // our end of the BIO pair; the SSL owns the other end
  std::array<std::uint8_t, 16 * 1024> buffer_{};
};

}  // namespace

Result<std::unique_ptr<Stream>> startTls(std::unique_ptr<Stream> stream, const std::string& sni,
                                         const std::string& alpn, Deadline deadline,
                                         TlsFacts* facts) {
  const std::string where = stream->describe();
  auto setupFailure = [&] {
    return tl::unexpected(Failure{"tls_failed", fmt::format("{}: TLS setup failed: {}", where,
                                                            detail::drainOpenSslErrors())});
  };
  std::unique_ptr<SSL_CTX, SslCtxDeleter> context(SSL_CTX_new(TLS_client_method()));
  if (!context) return setupFailure();
  SSL_CTX_set_min_proto_version(context.get(), TLS1_2_VERSION);
  // The caller compares the leaf's fingerprint with the server's published one.
  SSL_CTX_set_verify(context.get(), SSL_VERIFY_NONE, nullptr);
  std::unique_ptr<SSL, SslDeleter> ssl(SSL_new(context.get()));
  if (!ssl) return setupFailure();
  BIO* inside = nullptr;
  BIO* network = nullptr;
  // A BIO pair: the SSL reads and writes `inside`; we move bytes between `network` and the
  // stream. Buffers of 17 KiB hold a whole TLS record.
  if (BIO_new_bio_pair(&inside, 17 * 1024, &network, 17 * 1024) != 1) return setupFailure();
  SSL_set_bio(ssl.get(), inside, inside);
  SSL_set_connect_state(ssl.get());
  if (!detail::applySniAndAlpn(ssl.get(), sni, alpn)) {
    BIO_free(network);
    return tl::unexpected(
        Failure{"tls_failed", fmt::format("{}: bad server name or ALPN for TLS", where)});
  }
  auto tls =
      std::make_unique<TlsStream>(std::move(stream), std::move(context), std::move(ssl), network);
  if (auto done = tls->handshake(deadline); !done) return tl::unexpected(done.error());
  if (facts != nullptr) detail::fillFacts(tls->ssl(), *facts);
  return std::unique_ptr<Stream>(std::move(tls));
}

}  // namespace parley::netclient
