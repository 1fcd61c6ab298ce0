#include "stream_connection.hpp"
#include <algorithm>
#include <cstring>

#include <parley/stun/framer.hpp>

#include "socket_address.hpp"
#include "worker.hpp"

namespace parley::net {

namespace {
constexpr std::size_t kInitialBuffer = 2048;
// Queued bytes toward a client that does not read; past this, more is dropped, not buffered.
constexpr std::size_t kMaxQueuedBytes = 256 * 1024;
}  // namespace

StreamConnection::StreamConnection(Worker& worker, asio::ip::tcp::socket socket,
                                   std::shared_ptr<tls::ServerContext> tlsContext)
    : worker_(worker),
      socket_(std::move(socket)),
      tlsContext_(std::move(tlsContext)),
      idleTimer_(worker.context()),
      input_(kInitialBuffer) {
  if (tlsContext_) {
    // asio takes ownership of the SSL object; the SSL_CTX is kept by tlsContext_.
    tls_ = std::make_unique<asio::ssl::stream<asio::ip::tcp::socket&>>(socket_,
                                                                       SSL_new(tlsContext_->tls()));
  }
  boost::system::error_code error;
  const auto remote = socket_.remote_endpoint(error);
  if (!error) tuple_.client = fromSockaddr(remote.data());
  // On a wildcard listener the connection's own local address is the precise one.
  const auto local = socket_.local_endpoint(error);
  if (!error) tuple_.server = fromSockaddr(local.data());
  tuple_.transport = tls_ ? turn::Transport::Tls : turn::Transport::Tcp;
}

StreamConnection::StreamConnection(Worker& worker, asio::ip::tcp::socket socket,
                                   tls::AcceptedStream&& adopted)
    : worker_(worker),
      socket_(std::move(socket)),
      tlsContext_(std::move(adopted.context)),
      idleTimer_(worker.context()),
      input_(std::max(kInitialBuffer, adopted.received.size())),
      filled_(adopted.received.size()),
      handshakeDone_(true) {
  std::copy(adopted.received.begin(), adopted.received.end(), input_.begin());
  if (adopted.ssl) {
    // asio attaches its own BIOs to the established session; the SSL_CTX stays referenced by
    // the SSL itself and by tlsContext_.
    tls_ =
        std::make_unique<asio::ssl::stream<asio::ip::tcp::socket&>>(socket_, adopted.ssl.release());
  }
  tuple_.client = adopted.client;  // from a PROXY header, perhaps: not the socket's peer
  tuple_.server = adopted.local;
  tuple_.transport = tls_ ? turn::Transport::Tls : turn::Transport::Tcp;
}

StreamConnection::~StreamConnection() {
  worker_.tcpConnections().fetch_sub(1);
}

void StreamConnection::start() {
  boost::system::error_code ignored;
  socket_.set_option(asio::ip::tcp::no_delay(true), ignored);
  worker_.registerStream(tuple_, weak_from_this());
  armIdleTimer();  // also bounds the TLS handshake
  if (handshakeDone_ && filled_ > 0) {
    onRead(0);  // what the accepting listener read already
    return;
  }
  if (!tls_ || handshakeDone_) {
    read();
    return;
  }
  tls_->async_handshake(asio::ssl::stream_base::server,
                        [self = shared_from_this()](const boost::system::error_code& error) {
                          if (error) {
                            self->worker_.counters().tcpClosedForError.add();
                            self->close();
                            return;
                          }
                          self->read();
                        });
}

template <typename Handler>
void StreamConnection::readSome(asio::mutable_buffer buffer, Handler&& handler) {
  if (tls_) {
    tls_->async_read_some(buffer, std::forward<Handler>(handler));
  } else {
    socket_.async_read_some(buffer, std::forward<Handler>(handler));
  }
}

void StreamConnection::armIdleTimer() {
  idleTimer_.expires_after(worker_.idleTimeoutFor(tuple_));
  idleTimer_.async_wait([self = shared_from_this()](const boost::system::error_code& error) {
    if (error || self->closed_) return;  // re-armed or cancelled
    self->worker_.counters().tcpTimedOut.add();
    self->close();
  });
}

void StreamConnection::read() {
  if (filled_ == input_.size()) {
    // Grow toward the message limit only when a frame really needs it.
    const std::size_t limit = worker_.options().tcpMaxMessageSize + 4;
    input_.resize(std::min(limit, input_.size() * 2));
  }
  readSome(asio::buffer(input_.data() + filled_, input_.size() - filled_),
           [self = shared_from_this()](const boost::system::error_code& error, std::size_t bytes) {
             if (error) {
               self->close();
               return;
             }
             self->onRead(bytes);
           });
}

void StreamConnection::onRead(std::size_t bytes) {
  filled_ += bytes;
  if (!handleFrames()) {
    worker_.counters().tcpClosedForError.add();
    close();
    return;
  }
  if (!closed_) read();
}

bool StreamConnection::handleFrames() {
  const std::size_t limit = worker_.options().tcpMaxMessageSize;
  std::size_t offset = 0;
  while (!closed_) {
    const auto result = stun::nextFrame(stun::Bytes(input_.data() + offset, filled_ - offset),
                                        limit, worker_.streamAcceptsChannelData(tuple_));
    if (result.status == stun::FrameStatus::NeedMore) break;
    if (result.status != stun::FrameStatus::Complete) return false;
    offset += result.consumed;
    worker_.counters().tcpReceived.add();
    if (!worker_.onStreamFrame(*this, tuple_, result.frame.bytes,
                               result.frame.kind == stun::FrameKind::ChannelData)) {
      return false;
    }
    armIdleTimer();  // a complete, valid frame: the peer is alive
  }
  // A frame that does not fit even the grown buffer exceeds the limit.
  if (offset == 0 && filled_ == input_.size() && input_.size() >= limit + 4) return false;
  std::memmove(input_.data(), input_.data() + offset, filled_ - offset);
  filled_ -= offset;
  return true;
}

bool StreamConnection::send(std::span<const std::uint8_t> bytes) {
  if (closed_) return false;
  if (pending_.size() + bytes.size() > kMaxQueuedBytes) return false;
  pending_.insert(pending_.end(), bytes.begin(), bytes.end());
  if (!writeInFlight_) write();
  return true;
}

void StreamConnection::write() {
  std::swap(writing_, pending_);
  pending_.clear();
  writeInFlight_ = true;
  auto done = [self = shared_from_this()](const boost::system::error_code& error, std::size_t) {
    self->writeInFlight_ = false;
    if (error) {
      self->close();
      return;
    }
    if (!self->pending_.empty() && !self->closed_) self->write();
  };
  if (tls_) {
    asio::async_write(*tls_, asio::buffer(writing_), std::move(done));
  } else {
    asio::async_write(socket_, asio::buffer(writing_), std::move(done));
  }
}

void StreamConnection::close() {
  if (closed_) return;
  closed_ = true;
  boost::system::error_code ignored;
  idleTimer_.cancel();
  socket_.shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
  socket_.close(ignored);
  worker_.streamClosed(tuple_);
}

}  // namespace parley::net
