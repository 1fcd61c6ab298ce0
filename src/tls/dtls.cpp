#include <algorithm>
#include <functional>
#include <string_view>

#include <openssl/err.h>

#include <parley/base/log.hpp>
#include <parley/tls/dtls.hpp>

#include "cookie.hpp"
#include "datagram_bio.hpp"
#include "ossl.hpp"
#include "output_writer.hpp"

namespace parley::tls {
namespace {

using detail::OutputWriter;

// RFC 6347 §4.1: content type, version, epoch, sequence number, length.
constexpr std::size_t kRecordHeader = 13;
// RFC 6347 §4.2.2: msg_type, length, message_seq, fragment_offset, fragment_length.
constexpr std::size_t kHandshakeHeader = 12;
constexpr std::uint8_t kContentHandshake = 22;
constexpr std::uint8_t kClientHello = 1;
// RFC 6347 §4.2.4.1: "implementations SHOULD use an initial timer value of 1 second ... and
// double the value at each retransmission, up to no less than the RFC 6298 maximum of 60 s".
constexpr unsigned int kMaxRetransmitMicros = 60'000'000;
constexpr std::size_t kMaxRecordPlaintext = 16384;  // RFC 6347 §4.1 (2^14)

std::shared_ptr<spdlog::logger> logger() {
  static const auto log = parley::log::get("tls");
  return log;
}

// A plaintext ClientHello in epoch 0: the only thing worth a look from an unknown peer.
bool looksLikeClientHello(std::span<const std::uint8_t> d) {
  if (d.size() < kRecordHeader + kHandshakeHeader) return false;
  const std::size_t length = (std::size_t{d[11]} << 8) | d[12];
  return d[0] == kContentHandshake && d[1] == 0xFE && d[3] == 0 && d[4] == 0 &&
         kRecordHeader + length <= d.size() && d[kRecordHeader] == kClientHello;
}

// Ex-data slot of an SSL holding its first retransmission timeout (unsigned int, microseconds).
int retransmitIndex() {
  static const int index = SSL_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr);
  return index;
}

}  // namespace

const char* toString(CloseReason reason) {
  switch (reason) {
    case CloseReason::PeerClosed:
      return "peer closed";
    case CloseReason::Local:
      return "closed locally";
    case CloseReason::HandshakeFailed:
      return "handshake failed";
    case CloseReason::HandshakeTimeout:
      return "handshake timeout";
    case CloseReason::IdleTimeout:
      return "idle timeout";
    case CloseReason::Error:
      return "error";
    case CloseReason::Replaced:
      return "replaced by a new handshake";
  }
  return "unknown";
}

void DtlsOutput::clear() {
  buffer_.clear();
  datagrams_.clear();
  received_.clear();
  established_.clear();
  closed_.clear();
}

struct DtlsServer::Session {
  detail::DatagramChannel channel;
  ossl::Ssl ssl;  // after `channel`: destroyed first, its BIOs point at the channel
  std::shared_ptr<ServerContext> context;
  TimePoint started{};
  TimePoint lastActivity{};
  bool established = false;
  unsigned int retransmitInitialMicros = 1'000'000;
  // DTLSv1_listen writes the (unknown) peer address here; our channel knows the peer.
  std::unique_ptr<BIO_ADDR, ossl::Deleter<BIO_ADDR_free>> listenAddress{BIO_ADDR_new()};
};

namespace {

// OpenSSL asks for the next retransmission timeout: 0 when a flight is first sent, the
// previous value after each timeout (RFC 6347 §4.2.4.1 back-off).
unsigned int retransmitTimeout(SSL* ssl, unsigned int previousMicros) {
  const auto* initial = static_cast<const unsigned int*>(SSL_get_ex_data(ssl, retransmitIndex()));
  if (previousMicros == 0) return initial ? *initial : 1'000'000;
  return std::min(previousMicros * 2, kMaxRetransmitMicros);
}

}  // namespace

std::size_t DtlsServer::EndpointHash::operator()(const Endpoint& endpoint) const {
  const auto bytes = endpoint.address.bytes();
  const std::string_view view(reinterpret_cast<const char*>(bytes.data()), bytes.size());
  return std::hash<std::string_view>{}(view) ^ (std::size_t{endpoint.port} * 0x9E3779B97F4A7C15u);
}

DtlsServer::DtlsServer(const ContextHolder& contexts, DtlsLimits limits)
    : holder_(&contexts), limits_(limits), scratch_(kMaxRecordPlaintext) {}

DtlsServer::DtlsServer(std::shared_ptr<ServerContext> context, DtlsLimits limits)
    : fixed_(std::move(context)), limits_(limits), scratch_(kMaxRecordPlaintext) {}

DtlsServer::~DtlsServer() = default;

std::shared_ptr<ServerContext> DtlsServer::currentContext() const {
  return holder_ ? holder_->current() : fixed_;
}

std::unique_ptr<DtlsServer::Session> DtlsServer::newSession(const Endpoint& peer) {
  auto session = std::make_unique<Session>();
  session->channel.peer = peer;
  session->context = currentContext();
  if (!session->context) return nullptr;
  session->retransmitInitialMicros = static_cast<unsigned int>(
      std::chrono::duration_cast<std::chrono::microseconds>(limits_.retransmitInitial).count());
  session->ssl.reset(SSL_new(session->context->dtls()));
  if (!session->ssl || !session->listenAddress) return nullptr;
  SSL* ssl = session->ssl.get();
  BIO* rbio = detail::newDatagramBio(&session->channel);
  BIO* wbio = detail::newDatagramBio(&session->channel);
  if (!rbio || !wbio) {
    BIO_free(rbio);
    BIO_free(wbio);
    return nullptr;
  }
  SSL_set_bio(ssl, rbio, wbio);
  SSL_set_accept_state(ssl);
  SSL_set_mtu(ssl, static_cast<long>(limits_.mtu));
  SSL_set_ex_data(ssl, retransmitIndex(), &session->retransmitInitialMicros);
  DTLS_set_timer_cb(ssl, retransmitTimeout);
  detail::setCookiePeer(ssl, &session->channel.peer);
  return session;
}

std::unique_ptr<DtlsServer::Session> DtlsServer::listen(const Endpoint& peer,
                                                        std::span<const std::uint8_t> datagram,
                                                        TimePoint now, DtlsOutput& out) {
  // The listener follows reloads; it is rebuilt only when the context changes.
  if (!listener_ || listener_->context != currentContext()) {
    listener_ = newSession(peer);
    if (!listener_) {
      ERR_clear_error();
      ++counters_.ignored;
      return nullptr;
    }
  }
  Session& listener = *listener_;
  listener.channel.peer = peer;
  listener.channel.input = datagram;
  listener.channel.out = &out;
  const std::size_t before = OutputWriter::datagramCount(out);
  ERR_clear_error();
  // RFC 6347 §4.2.1: without a valid cookie, DTLSv1_listen answers HelloVerifyRequest from
  // the ClientHello alone and keeps nothing (it clears the SSL first).
  const int result = DTLSv1_listen(listener.ssl.get(), listener.listenAddress.get());
  ERR_clear_error();
  listener.channel.input = {};
  listener.channel.out = nullptr;
  if (result <= 0) {
    if (OutputWriter::datagramCount(out) > before) {
      ++counters_.helloVerifyRequests;
    } else {
      ++counters_.ignored;
    }
    return nullptr;
  }
  // The cookie proves the peer receives at its address: the listener becomes its session,
  // with the verified ClientHello still buffered for SSL_accept.
  ++counters_.handshakesStarted;
  listener.started = now;
  listener.lastActivity = now;
  return std::move(listener_);
}

void DtlsServer::onDatagram(const Endpoint& peer, std::span<const std::uint8_t> datagram,
                            TimePoint now, DtlsOutput& out) {
  ++counters_.datagramsIn;
  auto it = sessions_.find(peer);
  if (it == sessions_.end()) {
    if (!looksLikeClientHello(datagram)) {
      ++counters_.ignored;
      return;
    }
    if (sessions_.size() >= limits_.maxSessions) {
      ++counters_.sessionLimitDrops;
      return;
    }
    auto session = listen(peer, datagram, now, out);
    if (!session) return;
    it = sessions_.emplace(peer, std::move(session)).first;
    feed(it, {}, now, out);
    return;
  }
  if (it->second->established && looksLikeClientHello(datagram)) {
    // RFC 6347 §4.2.8: a ClientHello in epoch 0 on an established association is a client
    // that lost its state. Answer with a cookie exchange; only once the client has proved
    // reachability with a valid cookie does the new session replace the old one.
    auto session = listen(peer, datagram, now, out);
    if (!session) return;
    end(it, CloseReason::Replaced, false, out);
    it = sessions_.emplace(peer, std::move(session)).first;
    feed(it, {}, now, out);
    return;
  }
  feed(it, datagram, now, out);
}

void DtlsServer::feed(Sessions::iterator it, std::span<const std::uint8_t> datagram, TimePoint now,
                      DtlsOutput& out) {
  Session& session = *it->second;
  session.channel.input = datagram;
  session.channel.out = &out;
  const auto reason = drive(session, now, out);
  session.channel.input = {};
  session.channel.out = nullptr;
  if (reason) end(it, *reason, *reason == CloseReason::PeerClosed, out);
}

std::optional<CloseReason> DtlsServer::drive(Session& session, TimePoint now, DtlsOutput& out) {
  SSL* ssl = session.ssl.get();
  if (!session.established) {
    ERR_clear_error();
    const int result = SSL_do_handshake(ssl);
    if (result != 1) {
      const int error = SSL_get_error(ssl, result);
      if (error == SSL_ERROR_WANT_READ || error == SSL_ERROR_WANT_WRITE) {
        ERR_clear_error();
        return std::nullopt;
      }
      ++counters_.handshakeFailures;
      logger()->debug("DTLS handshake with {} failed: {}", session.channel.peer.toString(),
                      ossl::takeErrors("handshake error"));
      return CloseReason::HandshakeFailed;
    }
    session.established = true;
    session.lastActivity = now;
    ++counters_.handshakesCompleted;
    OutputWriter::addEstablished(out, session.channel.peer);
  }
  for (;;) {
    ERR_clear_error();
    const int n = SSL_read(ssl, scratch_.data(), static_cast<int>(scratch_.size()));
    if (n > 0) {
      ++counters_.recordsIn;
      session.lastActivity = now;
      OutputWriter::addReceived(out, session.channel.peer,
                                {scratch_.data(), static_cast<std::size_t>(n)});
      continue;
    }
    const int error = SSL_get_error(ssl, n);
    if (error == SSL_ERROR_WANT_READ || error == SSL_ERROR_WANT_WRITE) {
      ERR_clear_error();
      return std::nullopt;
    }
    if (error == SSL_ERROR_ZERO_RETURN) {
      ERR_clear_error();
      return CloseReason::PeerClosed;
    }
    ++counters_.sessionErrors;
    logger()->debug("DTLS session with {} failed: {}", session.channel.peer.toString(),
                    ossl::takeErrors("read error"));
    return CloseReason::Error;
  }
}

void DtlsServer::end(Sessions::iterator it, CloseReason reason, bool notifyPeer, DtlsOutput& out) {
  Session& session = *it->second;
  if (notifyPeer && session.established) {
    session.channel.out = &out;
    ERR_clear_error();
    SSL_shutdown(session.ssl.get());  // one close_notify; we do not wait for the peer's
    ERR_clear_error();
    session.channel.out = nullptr;
  }
  logger()->debug("DTLS session with {} ended: {}", session.channel.peer.toString(),
                  toString(reason));
  OutputWriter::addClosed(out, session.channel.peer, reason);
  sessions_.erase(it);
}

bool DtlsServer::send(const Endpoint& peer, std::span<const std::uint8_t> plaintext,
                      DtlsOutput& out) {
  auto it = sessions_.find(peer);
  if (it == sessions_.end() || !it->second->established || plaintext.empty() ||
      plaintext.size() > DTLS_get_data_mtu(it->second->ssl.get())) {
    ++counters_.sendRejected;
    return false;
  }
  Session& session = *it->second;
  session.channel.out = &out;
  ERR_clear_error();
  const int n = SSL_write(session.ssl.get(), plaintext.data(), static_cast<int>(plaintext.size()));
  session.channel.out = nullptr;
  if (n == static_cast<int>(plaintext.size())) {
    ERR_clear_error();
    ++counters_.recordsOut;
    return true;
  }
  ++counters_.sendRejected;
  const int error = SSL_get_error(session.ssl.get(), n);
  ERR_clear_error();
  if (error == SSL_ERROR_SSL || error == SSL_ERROR_SYSCALL) {
    ++counters_.sessionErrors;
    end(it, CloseReason::Error, false, out);
  }
  return false;
}

void DtlsServer::tick(TimePoint now, DtlsOutput& out) {
  for (auto it = sessions_.begin(); it != sessions_.end();) {
    const auto next = std::next(it);
    Session& session = *it->second;
    if (session.established) {
      if (now - session.lastActivity >= limits_.idleTimeout) {
        ++counters_.idleTimeouts;
        end(it, CloseReason::IdleTimeout, true, out);
      }
    } else if (now - session.started >= limits_.handshakeTimeout) {
      ++counters_.handshakeTimeouts;
      end(it, CloseReason::HandshakeTimeout, false, out);
    } else {
      // Resends the last flight if its timer expired (RFC 6347 §4.2.4).
      session.channel.out = &out;
      ERR_clear_error();
      const int result = DTLSv1_handle_timeout(session.ssl.get());
      ERR_clear_error();
      session.channel.out = nullptr;
      if (result > 0) {
        ++counters_.retransmissions;
      } else if (result < 0) {
        ++counters_.handshakeFailures;  // too many retransmissions
        end(it, CloseReason::HandshakeFailed, false, out);
      }
    }
    it = next;
  }
}

void DtlsServer::close(const Endpoint& peer, DtlsOutput& out) {
  auto it = sessions_.find(peer);
  if (it != sessions_.end()) end(it, CloseReason::Local, true, out);
}

bool DtlsServer::isEstablished(const Endpoint& peer) const {
  auto it = sessions_.find(peer);
  return it != sessions_.end() && it->second->established;
}

std::string DtlsServer::alpn(const Endpoint& peer) const {
  auto it = sessions_.find(peer);
  if (it == sessions_.end()) return {};
  const unsigned char* data = nullptr;
  unsigned int size = 0;
  SSL_get0_alpn_selected(it->second->ssl.get(), &data, &size);
  return data ? std::string(reinterpret_cast<const char*>(data), size) : std::string();
}

std::size_t DtlsServer::maxPlaintext(const Endpoint& peer) const {
  auto it = sessions_.find(peer);
  if (it == sessions_.end() || !it->second->established) return 0;
  return DTLS_get_data_mtu(it->second->ssl.get());
}

}  // namespace parley::tls
