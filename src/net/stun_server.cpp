#include <array>
#include <atomic>
#include <cstring>
#include <optional>
#include <thread>

#include <boost/asio.hpp>
#include <netinet/in.h>
#include <sys/socket.h>

#include <parley/base/log.hpp>
#include <parley/net/stun_server.hpp>
#include <parley/stun/binding.hpp>
#include <parley/stun/framer.hpp>

#include "listen_plan.hpp"
#include "socket_address.hpp"

namespace parley::net {

namespace asio = boost::asio;
using ReusePort = asio::detail::socket_option::boolean<SOL_SOCKET, SO_REUSEPORT>;

namespace {

// UDP batching: one recvmmsg/sendmmsg moves up to this many datagrams.
constexpr std::size_t kBatch = 64;
// Binding requests are small; anything larger than this is not one and is dropped.
constexpr std::size_t kMaxDatagram = 2048;
// Every Binding response fits (addresses, SOFTWARE <= 763 bytes, FINGERPRINT).
constexpr std::size_t kMaxResponse = 1280;
// Bound the work of one wake-up so TCP on the same loop is not starved under UDP flood.
constexpr int kBatchesPerWakeup = 16;
constexpr int kSocketBufferBytes = 4 << 20;
// A TCP client that does not read its responses: close it once this much is queued.
constexpr std::size_t kMaxQueuedTcpBytes = 64 * 1024;
constexpr std::size_t kInitialTcpBuffer = 2048;

// Single-writer counter: the owning worker adds, anyone reads. No locked instruction.
struct Counter {
  std::atomic<std::uint64_t> value{0};
  void add(std::uint64_t n = 1) {
    value.store(value.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }
  std::uint64_t get() const { return value.load(std::memory_order_relaxed); }
};

struct WorkerCounters {
  Counter udpReceived, tcpReceived, responsesSent, errorResponsesSent, dropped;
  Counter tcpAccepted, tcpRejected, tcpClosedForError, tcpTimedOut;
};

void setBufferSizes(int fd) {
  // SO_*BUFFORCE lifts the rmem_max cap when we may; otherwise take what the kernel allows.
  if (::setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &kSocketBufferBytes, sizeof(int)) != 0) {
    ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &kSocketBufferBytes, sizeof(int));
  }
  if (::setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &kSocketBufferBytes, sizeof(int)) != 0) {
    ::setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &kSocketBufferBytes, sizeof(int));
  }
}

template <typename Protocol>
Protocol protocolFor(const Endpoint& endpoint) {
  return endpoint.address.isV4() ? Protocol::v4() : Protocol::v6();
}

template <typename Endpointish>
Endpointish asioEndpoint(const Endpoint& endpoint) {
  sockaddr_storage storage;
  const socklen_t length = toSockaddr(endpoint, storage);
  Endpointish result;
  std::memcpy(result.data(), &storage, length);
  result.resize(length);
  return result;
}

// Room for one IP_PKTINFO or IPV6_PKTINFO control message.
using ControlBuffer = std::array<std::uint8_t, CMSG_SPACE(sizeof(in6_pktinfo))>;

void enablePacketInfo(int fd, const Endpoint& local) {
  const int on = 1;
  if (local.address.isV4()) {
    ::setsockopt(fd, IPPROTO_IP, IP_PKTINFO, &on, sizeof on);
  } else {
    ::setsockopt(fd, IPPROTO_IPV6, IPV6_RECVPKTINFO, &on, sizeof on);
  }
}

// The local address a datagram was sent to, when the socket asked for packet info.
std::optional<IpAddress> packetDestination(const msghdr& header) {
  for (cmsghdr* c = CMSG_FIRSTHDR(const_cast<msghdr*>(&header)); c != nullptr;
       c = CMSG_NXTHDR(const_cast<msghdr*>(&header), c)) {
    if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_PKTINFO) {
      in_pktinfo info;
      std::memcpy(&info, CMSG_DATA(c), sizeof info);
      return IpAddress::v4(std::span<const std::uint8_t, 4>(
          reinterpret_cast<const std::uint8_t*>(&info.ipi_addr), 4));
    }
    if (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_PKTINFO) {
      in6_pktinfo info;
      std::memcpy(&info, CMSG_DATA(c), sizeof info);
      return IpAddress::v6(std::span<const std::uint8_t, 16>(
          reinterpret_cast<const std::uint8_t*>(&info.ipi6_addr), 16));
    }
  }
  return std::nullopt;
}

// Makes the kernel send from `source` rather than pick by route.
void setPacketSource(msghdr& header, ControlBuffer& control, const IpAddress& source) {
  control.fill(0);
  header.msg_control = control.data();
  cmsghdr* c = reinterpret_cast<cmsghdr*>(control.data());
  if (source.isV4()) {
    header.msg_controllen = CMSG_SPACE(sizeof(in_pktinfo));
    c->cmsg_level = IPPROTO_IP;
    c->cmsg_type = IP_PKTINFO;
    c->cmsg_len = CMSG_LEN(sizeof(in_pktinfo));
    in_pktinfo info{};
    std::memcpy(&info.ipi_spec_dst, source.bytes().data(), 4);
    std::memcpy(CMSG_DATA(c), &info, sizeof info);
  } else {
    header.msg_controllen = CMSG_SPACE(sizeof(in6_pktinfo));
    c->cmsg_level = IPPROTO_IPV6;
    c->cmsg_type = IPV6_PKTINFO;
    c->cmsg_len = CMSG_LEN(sizeof(in6_pktinfo));
    in6_pktinfo info{};
    std::memcpy(&info.ipi6_addr, source.bytes().data(), 16);
    std::memcpy(CMSG_DATA(c), &info, sizeof info);
  }
}

class Worker;

// One accepted TCP connection. Lives as long as a read, write or timer holds it.
class TcpConnection : public std::enable_shared_from_this<TcpConnection> {
 public:
  TcpConnection(Worker& worker, asio::ip::tcp::socket socket, const SocketSpec& spec);
  ~TcpConnection();
  void start();

 private:
  void read();
  void onRead(std::size_t bytes);
  bool handleFrames();  // false: close
  void queue(stun::Bytes response);
  void write();
  void armIdleTimer();
  void close();

  Worker& worker_;
  asio::ip::tcp::socket socket_;
  asio::steady_timer idleTimer_;
  const SocketSpec& spec_;
  Endpoint peer_;
  Endpoint local_;
  std::vector<std::uint8_t> input_;
  std::size_t filled_ = 0;
  std::vector<std::uint8_t> writing_;  // in flight
  std::vector<std::uint8_t> pending_;  // queued behind it
  bool writeInFlight_ = false;
  bool closed_ = false;
};

class Worker {
 public:
  Worker(const StunServerOptions& options, const std::vector<SocketSpec>& plan,
         std::atomic<std::size_t>& tcpConnections)
      : options_(options), plan_(plan), tcpConnections_(tcpConnections), context_(1) {
    for (const SocketSpec& spec : plan_) {
      if (options_.udp) openUdp(spec);
      if (options_.tcp) openTcp(spec);
    }
  }

  void start() {
    for (std::size_t i = 0; i < udp_.size(); ++i)
      armUdp(i);
    for (std::size_t i = 0; i < acceptors_.size(); ++i)
      accept(i);
    thread_ = std::thread([this] { context_.run(); });
  }

  void stop() {
    context_.stop();
    if (thread_.joinable()) thread_.join();
  }

  asio::io_context& context() { return context_; }
  WorkerCounters& counters() { return counters_; }
  const StunServerOptions& options() const { return options_; }
  std::atomic<std::size_t>& tcpConnections() { return tcpConnections_; }

 private:
  struct UdpSocket {
    asio::ip::udp::socket socket;
    const SocketSpec* spec;
  };

  void openUdp(const SocketSpec& spec) {
    asio::ip::udp::socket socket(context_);
    boost::system::error_code error;
    socket.open(protocolFor<asio::ip::udp>(spec.local), error);
    if (!error && !spec.local.address.isV4()) socket.set_option(asio::ip::v6_only(true), error);
    if (!error) socket.set_option(ReusePort(true), error);
    if (!error) socket.bind(asioEndpoint<asio::ip::udp::endpoint>(spec.local), error);
    if (!error) socket.non_blocking(true, error);
    if (error) {
      throw BindError("cannot listen on udp " + spec.local.toString() + ": " + error.message());
    }
    setBufferSizes(socket.native_handle());
    if (spec.local.address.isUnspecified()) enablePacketInfo(socket.native_handle(), spec.local);
    udp_.push_back(UdpSocket{std::move(socket), &spec});
  }

  void openTcp(const SocketSpec& spec) {
    asio::ip::tcp::acceptor acceptor(context_);
    boost::system::error_code error;
    acceptor.open(protocolFor<asio::ip::tcp>(spec.local), error);
    if (!error && !spec.local.address.isV4()) acceptor.set_option(asio::ip::v6_only(true), error);
    if (!error) acceptor.set_option(asio::socket_base::reuse_address(true), error);
    if (!error) acceptor.set_option(ReusePort(true), error);
    if (!error) acceptor.bind(asioEndpoint<asio::ip::tcp::endpoint>(spec.local), error);
    if (!error) acceptor.listen(asio::socket_base::max_listen_connections, error);
    if (error) {
      throw BindError("cannot listen on tcp " + spec.local.toString() + ": " + error.message());
    }
    acceptors_.push_back(std::move(acceptor));
    acceptorSpecs_.push_back(&spec);
  }

  void armUdp(std::size_t index) {
    udp_[index].socket.async_wait(asio::socket_base::wait_read,
                                  [this, index](const boost::system::error_code& error) {
                                    if (error) return;  // cancelled at shutdown
                                    drainUdp(index);
                                    armUdp(index);
                                  });
  }

  // Reads what is queued on a UDP socket in batches and answers each Binding request.
  void drainUdp(std::size_t index) {
    UdpSocket& self = udp_[index];
    const int fd = self.socket.native_handle();
    for (int round = 0; round < kBatchesPerWakeup; ++round) {
      for (std::size_t i = 0; i < kBatch; ++i) {
        recvIov_[i] = {recvBuffers_[i].data(), recvBuffers_[i].size()};
        recvMsgs_[i].msg_hdr = msghdr{};
        recvMsgs_[i].msg_hdr.msg_name = &peers_[i];
        recvMsgs_[i].msg_hdr.msg_namelen = sizeof(sockaddr_storage);
        recvMsgs_[i].msg_hdr.msg_iov = &recvIov_[i];
        recvMsgs_[i].msg_hdr.msg_iovlen = 1;
        recvMsgs_[i].msg_hdr.msg_control = control_[i].data();
        recvMsgs_[i].msg_hdr.msg_controllen = control_[i].size();
      }
      const int received = ::recvmmsg(fd, recvMsgs_.data(), kBatch, MSG_DONTWAIT, nullptr);
      if (received <= 0) return;  // EAGAIN: drained
      counters_.udpReceived.add(static_cast<std::uint64_t>(received));
      std::size_t replies = 0;
      for (int i = 0; i < received; ++i) {
        const msghdr& header = recvMsgs_[i].msg_hdr;
        if ((header.msg_flags & MSG_TRUNC) != 0) {
          counters_.dropped.add();
          continue;
        }
        const stun::Bytes request(recvBuffers_[i].data(), recvMsgs_[i].msg_len);
        // Cheap header test first: most non-STUN traffic never reaches the parser.
        if (!stun::looksLikeStun(request)) {
          counters_.dropped.add();
          continue;
        }
        // On a wildcard socket the kernel tells which of our addresses the request reached;
        // the response must leave from that one (multi-homed hosts, RESPONSE-ORIGIN).
        const std::optional<IpAddress> destination = packetDestination(header);
        const Endpoint local{destination ? *destination : self.spec->local.address,
                             self.spec->local.port};
        const stun::BindingContext context{
            fromSockaddr(reinterpret_cast<const sockaddr*>(&peers_[i])), local,
            stun::Transport::Udp, self.spec->other, options_.software};
        const auto result = stun::answerBinding(request, context, sendBuffers_[replies]);
        if (result.outcome == stun::Outcome::Drop) {
          counters_.dropped.add();
          continue;
        }
        if (result.outcome == stun::Outcome::RespondError) counters_.errorResponsesSent.add();
        if (result.replyFrom != stun::ReplyFrom::Same) {
          sendFromSibling(self, result, peers_[i], header.msg_namelen);
          continue;
        }
        sendIov_[replies] = {const_cast<std::uint8_t*>(result.response.data()),
                             result.response.size()};
        sendMsgs_[replies].msg_hdr = msghdr{};
        sendMsgs_[replies].msg_hdr.msg_name = &peers_[i];
        sendMsgs_[replies].msg_hdr.msg_namelen = header.msg_namelen;
        sendMsgs_[replies].msg_hdr.msg_iov = &sendIov_[replies];
        sendMsgs_[replies].msg_hdr.msg_iovlen = 1;
        if (destination)
          setPacketSource(sendMsgs_[replies].msg_hdr, sendControl_[replies], *destination);
        ++replies;
      }
      sendBatch(fd, replies);
      if (static_cast<std::size_t>(received) < kBatch) return;
    }
  }

  void sendBatch(int fd, std::size_t count) {
    std::size_t sent = 0;
    while (sent < count) {
      const int n = ::sendmmsg(fd, sendMsgs_.data() + sent, static_cast<unsigned>(count - sent), 0);
      if (n <= 0) {
        if (n < 0 && errno == EINTR) continue;
        // Socket buffer full or the peer unreachable: UDP may lose these; count and go on.
        counters_.dropped.add(count - sent);
        ++sent;  // skip the failing datagram, try the rest
        continue;
      }
      sent += static_cast<std::size_t>(n);
      counters_.responsesSent.add(static_cast<std::uint64_t>(n));
    }
  }

  // RFC 5780 CHANGE-REQUEST: the response leaves from another of our addresses/ports.
  void sendFromSibling(const UdpSocket& self, const stun::BindingResult& result,
                       const sockaddr_storage& peer, socklen_t peerLength) {
    const int which = static_cast<int>(result.replyFrom) - 1;
    const int sibling = self.spec->changed[static_cast<std::size_t>(which)];
    for (UdpSocket& candidate : udp_) {
      if (candidate.spec != &plan_[static_cast<std::size_t>(sibling)]) continue;
      const ssize_t n =
          ::sendto(candidate.socket.native_handle(), result.response.data(), result.response.size(),
                   0, reinterpret_cast<const sockaddr*>(&peer), peerLength);
      if (n < 0) {
        counters_.dropped.add();
      } else {
        counters_.responsesSent.add();
      }
      return;
    }
    counters_.dropped.add();
  }

  void accept(std::size_t index) {
    acceptors_[index].async_accept(
        [this, index](const boost::system::error_code& error, asio::ip::tcp::socket socket) {
          if (error == asio::error::operation_aborted) return;
          if (!error) {
            if (tcpConnections_.fetch_add(1) >= options_.tcpMaxConnections) {
              tcpConnections_.fetch_sub(1);
              counters_.tcpRejected.add();
              boost::system::error_code ignored;
              socket.close(ignored);
            } else {
              counters_.tcpAccepted.add();
              std::make_shared<TcpConnection>(*this, std::move(socket), *acceptorSpecs_[index])
                  ->start();
            }
          }
          // Errors such as EMFILE: keep accepting; the next attempt may succeed.
          accept(index);
        });
  }

  const StunServerOptions& options_;
  const std::vector<SocketSpec>& plan_;
  std::atomic<std::size_t>& tcpConnections_;
  asio::io_context context_;
  std::vector<UdpSocket> udp_;
  std::vector<asio::ip::tcp::acceptor> acceptors_;
  std::vector<const SocketSpec*> acceptorSpecs_;
  std::thread thread_;
  WorkerCounters counters_;

  // Batch buffers, allocated once per worker: the packet path allocates nothing.
  std::array<std::array<std::uint8_t, kMaxDatagram>, kBatch> recvBuffers_{};
  std::array<std::array<std::uint8_t, kMaxResponse>, kBatch> sendBuffers_{};
  std::array<sockaddr_storage, kBatch> peers_{};
  std::array<iovec, kBatch> recvIov_{};
  std::array<iovec, kBatch> sendIov_{};
  std::array<mmsghdr, kBatch> recvMsgs_{};
  std::array<mmsghdr, kBatch> sendMsgs_{};
  std::array<ControlBuffer, kBatch> control_{};
  std::array<ControlBuffer, kBatch> sendControl_{};
};

TcpConnection::TcpConnection(Worker& worker, asio::ip::tcp::socket socket, const SocketSpec& spec)
    : worker_(worker),
      socket_(std::move(socket)),
      idleTimer_(worker.context()),
      spec_(spec),
      input_(kInitialTcpBuffer) {
  boost::system::error_code error;
  const auto remote = socket_.remote_endpoint(error);
  if (!error) peer_ = fromSockaddr(remote.data());
  // On a wildcard listener the connection's own local address is the precise one.
  local_ = spec_.local;
  const auto local = socket_.local_endpoint(error);
  if (!error) local_ = fromSockaddr(local.data());
}

TcpConnection::~TcpConnection() {
  worker_.tcpConnections().fetch_sub(1);
}

void TcpConnection::start() {
  boost::system::error_code ignored;
  socket_.set_option(asio::ip::tcp::no_delay(true), ignored);
  armIdleTimer();
  read();
}

void TcpConnection::armIdleTimer() {
  idleTimer_.expires_after(worker_.options().tcpIdleTimeout);
  idleTimer_.async_wait([self = shared_from_this()](const boost::system::error_code& error) {
    if (error) return;  // re-armed or cancelled
    self->worker_.counters().tcpTimedOut.add();
    self->close();
  });
}

void TcpConnection::read() {
  if (filled_ == input_.size()) {
    // Grow toward the message limit only when a frame really needs it.
    const std::size_t limit = worker_.options().tcpMaxMessageSize;
    input_.resize(std::min(limit + 4, input_.size() * 2));
  }
  socket_.async_read_some(
      asio::buffer(input_.data() + filled_, input_.size() - filled_),
      [self = shared_from_this()](const boost::system::error_code& error, std::size_t bytes) {
        if (error) {
          self->close();
          return;
        }
        self->onRead(bytes);
      });
}

void TcpConnection::onRead(std::size_t bytes) {
  filled_ += bytes;
  if (!handleFrames()) {
    worker_.counters().tcpClosedForError.add();
    close();
    return;
  }
  if (!closed_) read();
}

bool TcpConnection::handleFrames() {
  std::size_t offset = 0;
  std::array<std::uint8_t, kMaxResponse> response;
  while (true) {
    const auto result = stun::nextFrame(stun::Bytes(input_.data() + offset, filled_ - offset),
                                        worker_.options().tcpMaxMessageSize);
    if (result.status == stun::FrameStatus::NeedMore) break;
    if (result.status != stun::FrameStatus::Complete) return false;
    offset += result.consumed;
    worker_.counters().tcpReceived.add();
    if (result.frame.kind != stun::FrameKind::Stun) {
      worker_.counters().dropped.add();  // ChannelData needs a TURN allocation
      continue;
    }
    const stun::BindingContext context{peer_, local_, stun::Transport::Tcp, spec_.other,
                                       worker_.options().software};
    const auto answer = stun::answerBinding(result.frame.bytes, context, response);
    if (answer.outcome == stun::Outcome::Drop) {
      worker_.counters().dropped.add();
      if (answer.dropReason == stun::DropReason::Malformed) return false;
      continue;
    }
    if (answer.outcome == stun::Outcome::RespondError) {
      worker_.counters().errorResponsesSent.add();
    }
    armIdleTimer();  // a complete, valid message: the peer is alive
    if (pending_.size() + answer.response.size() > kMaxQueuedTcpBytes) return false;
    queue(answer.response);
    worker_.counters().responsesSent.add();
  }
  // A frame that does not fit even the grown buffer means it exceeds the limit.
  if (offset == 0 && filled_ == input_.size() &&
      input_.size() >= worker_.options().tcpMaxMessageSize + 4) {
    return false;
  }
  std::memmove(input_.data(), input_.data() + offset, filled_ - offset);
  filled_ -= offset;
  if (!pending_.empty() && !writeInFlight_) write();
  return true;
}

void TcpConnection::queue(stun::Bytes response) {
  pending_.insert(pending_.end(), response.begin(), response.end());
}

void TcpConnection::write() {
  std::swap(writing_, pending_);
  pending_.clear();
  writeInFlight_ = true;
  asio::async_write(
      socket_, asio::buffer(writing_),
      [self = shared_from_this()](const boost::system::error_code& error, std::size_t bytes) {
        self->writeInFlight_ = false;
        if (error) {
          self->close();
          return;
        }
        (void)bytes;
        if (!self->pending_.empty() && !self->closed_) self->write();
      });
}

void TcpConnection::close() {
  if (closed_) return;
  closed_ = true;
  boost::system::error_code ignored;
  idleTimer_.cancel();
  socket_.shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
  socket_.close(ignored);
}

}  // namespace

struct StunServer::Impl {
  StunServerOptions options;
  std::vector<SocketSpec> plan;
  std::atomic<std::size_t> tcpConnections{0};
  std::vector<std::unique_ptr<Worker>> workers;
  bool running = false;
};

StunServer::StunServer(StunServerOptions options) : impl_(std::make_unique<Impl>()) {
  impl_->options = std::move(options);
  if (impl_->options.threads == 0) impl_->options.threads = 1;
}

StunServer::~StunServer() {
  stop();
}

void StunServer::start() {
  if (impl_->running) return;
  try {
    impl_->plan = planSockets(impl_->options);
  } catch (const std::invalid_argument& error) {
    throw BindError(error.what());
  }
  for (unsigned i = 0; i < impl_->options.threads; ++i) {
    impl_->workers.push_back(
        std::make_unique<Worker>(impl_->options, impl_->plan, impl_->tcpConnections));
  }
  for (auto& worker : impl_->workers)
    worker->start();
  impl_->running = true;
}

void StunServer::stop() {
  // Workers stay allocated (stopped) so counters() still reports after shutdown.
  for (auto& worker : impl_->workers)
    worker->stop();
  impl_->running = false;
}

std::vector<Endpoint> StunServer::udpEndpoints() const {
  std::vector<Endpoint> endpoints;
  if (impl_->options.udp) {
    for (const auto& spec : impl_->plan)
      endpoints.push_back(spec.local);
  }
  return endpoints;
}

std::vector<Endpoint> StunServer::tcpEndpoints() const {
  std::vector<Endpoint> endpoints;
  if (impl_->options.tcp) {
    for (const auto& spec : impl_->plan)
      endpoints.push_back(spec.local);
  }
  return endpoints;
}

StunCounters StunServer::counters() const {
  StunCounters total;
  for (const auto& worker : impl_->workers) {
    const WorkerCounters& c = worker->counters();
    total.udpReceived += c.udpReceived.get();
    total.tcpReceived += c.tcpReceived.get();
    total.responsesSent += c.responsesSent.get();
    total.errorResponsesSent += c.errorResponsesSent.get();
    total.dropped += c.dropped.get();
    total.tcpConnectionsAccepted += c.tcpAccepted.get();
    total.tcpConnectionsRejected += c.tcpRejected.get();
    total.tcpConnectionsClosedForError += c.tcpClosedForError.get();
    total.tcpConnectionsTimedOut += c.tcpTimedOut.get();
  }
  return total;
}

}  // namespace parley::net
