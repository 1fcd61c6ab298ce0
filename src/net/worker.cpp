#include "worker.hpp"
#include <cerrno>
#include <cstring>

#include <netinet/in.h>
#include <sys/socket.h>

#include <parley/base/log.hpp>
#include <parley/stun/binding.hpp>
#include <parley/stun/framer.hpp>
#include <parley/stun/message.hpp>

#include "socket_address.hpp"
#include "stream_connection.hpp"

namespace parley::net {

using ReusePort = asio::detail::socket_option::boolean<SOL_SOCKET, SO_REUSEPORT>;

namespace {

// Bound the work of one wake-up so other sockets on the same loop are not starved.
constexpr int kBatchesPerWakeup = 16;
constexpr int kListenerBufferBytes = 4 << 20;
constexpr auto kTickInterval = std::chrono::seconds(1);
// RFC 8656 §14.6 does not fix how long a reserved port is kept; 30 s as coturn and pion do.
constexpr auto kReservationLifetime = std::chrono::seconds(30);

void setBufferSizes(int fd, int bytes) {
  // SO_*BUFFORCE lifts the rmem_max cap when we may; otherwise take what the kernel allows.
  if (::setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &bytes, sizeof bytes) != 0) {
    ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &bytes, sizeof bytes);
  }
  if (::setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &bytes, sizeof bytes) != 0) {
    ::setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &bytes, sizeof bytes);
  }
}

template <typename Protocol>
Protocol protocolFor(const IpAddress& address) {
  return address.isV4() ? Protocol::v4() : Protocol::v6();
}

template <typename AsioEndpoint>
AsioEndpoint asioEndpoint(const Endpoint& endpoint) {
  sockaddr_storage storage;
  const socklen_t length = toSockaddr(endpoint, storage);
  AsioEndpoint result;
  std::memcpy(result.data(), &storage, length);
  result.resize(length);
  return result;
}

// The client's address with another port (RFC 5780 RESPONSE-PORT).
sockaddr_storage withPort(const sockaddr_storage& address, std::uint16_t port) {
  sockaddr_storage copy = address;
  if (copy.ss_family == AF_INET) {
    reinterpret_cast<sockaddr_in*>(&copy)->sin_port = htons(port);
  } else {
    reinterpret_cast<sockaddr_in6*>(&copy)->sin6_port = htons(port);
  }
  return copy;
}

bool isBindingRequest(std::span<const std::uint8_t> bytes) {
  // Type 0x0001 with the class bits of a request: the STUN-only fast path.
  return bytes.size() >= 2 && bytes[0] == 0x00 && bytes[1] == 0x01;
}

bool isChannelData(std::span<const std::uint8_t> bytes) {
  return !bytes.empty() && stun::isChannelDataFirstByte(bytes[0]);
}

}  // namespace

Worker::Worker(SharedContext& shared) : shared_(shared), context_(1), tick_(context_) {
  for (const SocketSpec& spec : shared_.plan) {
    if (options().udp) openListener(spec);
    if (options().tcp) openAcceptor(spec);
  }
  for (const SocketSpec& spec : shared_.tlsPlan) {
    if (options().tls.tls) openTlsAcceptor(spec);
    if (options().tls.dtls) openDtls(spec);
  }
  if (options().turn.enabled) {
    turn_ = std::make_unique<turn::Server>(options().turn.protocol, *shared_.turnState,
                                           *shared_.peerFilter, static_cast<turn::RelayIo&>(*this));
  }
}

Worker::~Worker() {
  stop();
  // The state machine closes its relays through RelayIo; it must go while they still exist.
  turn_.reset();
}

void Worker::start() {
  for (std::size_t i = 0; i < listeners_.size(); ++i)
    armListener(i);
  for (std::size_t i = 0; i < acceptors_.size(); ++i)
    accept(i);
  for (std::size_t i = 0; i < tlsAcceptors_.size(); ++i)
    acceptTls(i);
  for (std::size_t i = 0; i < dtls_.size(); ++i)
    armDtls(i);
  if (turn_ || !dtls_.empty()) armTick();
  thread_ = std::thread([this] { context_.run(); });
}

void Worker::stop() {
  context_.stop();
  if (thread_.joinable()) thread_.join();
}

turn::Now Worker::now() const {
  return {std::chrono::steady_clock::now(), std::chrono::system_clock::now()};
}

asio::ip::udp::socket Worker::bindUdp(const SocketSpec& spec, const char* what) {
  asio::ip::udp::socket socket(context_);
  boost::system::error_code error;
  socket.open(protocolFor<asio::ip::udp>(spec.local.address), error);
  if (!error && !spec.local.address.isV4()) socket.set_option(asio::ip::v6_only(true), error);
  if (!error) socket.set_option(ReusePort(true), error);
  if (!error) socket.bind(asioEndpoint<asio::ip::udp::endpoint>(spec.local), error);
  if (!error) socket.non_blocking(true, error);
  if (error) {
    throw BindError(std::string("cannot listen on ") + what + " " + spec.local.toString() + ": " +
                    error.message());
  }
  setBufferSizes(socket.native_handle(), kListenerBufferBytes);
  if (spec.local.address.isUnspecified()) {
    enablePacketInfo(socket.native_handle(), spec.local.address.isV4());
  }
  return socket;
}

asio::ip::tcp::acceptor Worker::bindAcceptor(const SocketSpec& spec, const char* what) {
  asio::ip::tcp::acceptor acceptor(context_);
  boost::system::error_code error;
  acceptor.open(protocolFor<asio::ip::tcp>(spec.local.address), error);
  if (!error && !spec.local.address.isV4()) acceptor.set_option(asio::ip::v6_only(true), error);
  if (!error) acceptor.set_option(asio::socket_base::reuse_address(true), error);
  if (!error) acceptor.set_option(ReusePort(true), error);
  if (!error) acceptor.bind(asioEndpoint<asio::ip::tcp::endpoint>(spec.local), error);
  if (!error) acceptor.listen(asio::socket_base::max_listen_connections, error);
  if (error) {
    throw BindError(std::string("cannot listen on ") + what + " " + spec.local.toString() + ": " +
                    error.message());
  }
  return acceptor;
}

void Worker::openListener(const SocketSpec& spec) {
  listeners_.push_back(Listener{bindUdp(spec, "udp"), &spec, nullptr});
}

void Worker::openAcceptor(const SocketSpec& spec) {
  acceptors_.push_back(bindAcceptor(spec, "tcp"));
  acceptorSpecs_.push_back(&spec);
}

void Worker::openTlsAcceptor(const SocketSpec& spec) {
  tlsAcceptors_.push_back(bindAcceptor(spec, "tls"));
  tlsAcceptorSpecs_.push_back(&spec);
}

void Worker::openDtls(const SocketSpec& spec) {
  dtls_.push_back(DtlsListener{bindUdp(spec, "dtls"), &spec,
                               std::make_unique<tls::DtlsServer>(*options().tls.contexts)});
}

void Worker::armListener(std::size_t index) {
  listeners_[index].socket.async_wait(asio::socket_base::wait_read,
                                      [this, index](const boost::system::error_code& error) {
                                        if (error) return;  // cancelled at shutdown
                                        drainListener(index);
                                        flushListeners();
                                        armListener(index);
                                      });
}

void Worker::drainListener(std::size_t index) {
  Listener& self = listeners_[index];
  const int fd = self.socket.native_handle();
  const turn::Now time = turn_ ? now() : turn::Now{};
  for (int round = 0; round < kBatchesPerWakeup; ++round) {
    const std::size_t received = receive_.receive(fd);
    if (received == 0) return;  // drained
    counters_.udpReceived.add(received);
    for (std::size_t i = 0; i < received; ++i) {
      const auto bytes = receive_.payload(i);
      if (receive_.truncated(i)) {
        counters_.dropped.add();
        continue;
      }
      // On a wildcard socket the kernel tells which of our addresses the request reached;
      // the response must leave from that one (multi-homed hosts, RESPONSE-ORIGIN).
      const std::optional<IpAddress> destination = receive_.destination(i);
      const Endpoint local{destination ? *destination : self.spec->local.address,
                           self.spec->local.port};
      const Endpoint source = fromSockaddr(reinterpret_cast<const sockaddr*>(&receive_.peer(i)));
      if (isBindingRequest(bytes) || !turn_) {
        // Cheap header test first: most non-STUN traffic never reaches the parser.
        if (!stun::looksLikeStun(bytes)) {
          counters_.dropped.add();
          continue;
        }
        answerBinding(self, bytes, source, local, receive_.peer(i), receive_.peerLength(i),
                      destination);
        continue;
      }
      if (!isChannelData(bytes) && !stun::looksLikeStun(bytes)) {
        counters_.dropped.add();
        continue;
      }
      turn_->onClientBytes(turn::FiveTuple{source, local, turn::Transport::Udp}, bytes, time);
    }
    if (received < kBatch) return;
  }
}

void Worker::answerBinding(Listener& self, std::span<const std::uint8_t> request,
                           const Endpoint& source, const Endpoint& local,
                           const sockaddr_storage& peer, socklen_t peerLength,
                           const std::optional<IpAddress>& replySource) {
  if (!self.pending) self.pending = std::make_unique<SendBatch>();
  const stun::BindingContext context{source, local, stun::Transport::Udp, self.spec->other,
                                     options().software};
  const auto result = stun::answerBinding(request, context, self.pending->next());
  if (result.outcome == stun::Outcome::Drop) {
    counters_.dropped.add();
    return;
  }
  if (result.outcome == stun::Outcome::RespondError) counters_.errorResponsesSent.add();
  const sockaddr_storage destination =
      result.responsePort ? withPort(peer, *result.responsePort) : peer;
  if (result.replyFrom == stun::ReplyFrom::Same) {
    self.pending->commit(result.response.size(), destination, peerLength, replySource);
    if (self.pending->full()) {
      const auto [sent, dropped] = self.pending->flush(self.socket.native_handle());
      counters_.responsesSent.add(sent);
      counters_.dropped.add(dropped);
    } else if (self.pending->size() == 1) {
      dirtyListeners_.push_back(&self);
    }
    return;
  }
  // RFC 5780 CHANGE-REQUEST: the response leaves from another of our addresses/ports.
  const int which = static_cast<int>(result.replyFrom) - 1;
  const int sibling = self.spec->changed[static_cast<std::size_t>(which)];
  for (Listener& candidate : listeners_) {
    if (candidate.spec != &shared_.plan[static_cast<std::size_t>(sibling)]) continue;
    const ssize_t n =
        ::sendto(candidate.socket.native_handle(), result.response.data(), result.response.size(),
                 0, reinterpret_cast<const sockaddr*>(&destination), peerLength);
    (n < 0 ? counters_.dropped : counters_.responsesSent).add();
    return;
  }
  counters_.dropped.add();
}

void Worker::scheduleFlush() {
  // Posted handlers run after the handlers already made ready by the same epoll wake-up, so
  // one flush serves every relay socket that had data.
  if (flushPosted_) return;
  flushPosted_ = true;
  asio::post(context_, [this] {
    flushPosted_ = false;
    flushListeners();
  });
}

void Worker::flushListeners() {
  for (Listener* listener : dirtyListeners_) {
    if (!listener->pending || listener->pending->empty()) continue;
    const auto [sent, dropped] = listener->pending->flush(listener->socket.native_handle());
    counters_.responsesSent.add(sent);
    counters_.dropped.add(dropped);
  }
  dirtyListeners_.clear();
}

Worker::Listener* Worker::listenerFor(const Endpoint& server) {
  for (Listener& listener : listeners_) {
    const Endpoint& local = listener.spec->local;
    if (local.port != server.port || local.address.family() != server.address.family()) continue;
    if (local.address == server.address || local.address.isUnspecified()) return &listener;
  }
  return nullptr;
}

const SocketSpec* Worker::specFor(const Endpoint& server) const {
  for (const SocketSpec& spec : shared_.plan) {
    if (spec.local.port != server.port || spec.local.address.family() != server.address.family()) {
      continue;
    }
    if (spec.local.address == server.address || spec.local.address.isUnspecified()) return &spec;
  }
  return nullptr;
}

void Worker::accept(std::size_t index) {
  acceptors_[index].async_accept(
      [this, index](const boost::system::error_code& error, asio::ip::tcp::socket socket) {
        if (error == asio::error::operation_aborted) return;
        if (!error) admitStream(std::move(socket), nullptr);
        // Errors such as EMFILE: keep accepting; the next attempt may succeed.
        accept(index);
      });
}

void Worker::acceptTls(std::size_t index) {
  tlsAcceptors_[index].async_accept(
      [this, index](const boost::system::error_code& error, asio::ip::tcp::socket socket) {
        if (error == asio::error::operation_aborted) return;
        // Each connection takes the current certificate: a reload applies to new connections.
        if (!error) admitStream(std::move(socket), options().tls.contexts->current());
        acceptTls(index);
      });
}

bool Worker::reserveConnection() {
  // TCP and TLS connections share one limit: both hold a socket and buffers.
  if (tcpConnections().fetch_add(1) >= options().tcpMaxConnections) {
    tcpConnections().fetch_sub(1);
    counters_.tcpRejected.add();
    return false;
  }
  counters_.tcpAccepted.add();
  return true;
}

void Worker::admitStream(asio::ip::tcp::socket socket,
                         std::shared_ptr<tls::ServerContext> tlsContext) {
  if (!reserveConnection()) {
    boost::system::error_code ignored;
    socket.close(ignored);
    return;
  }
  std::make_shared<StreamConnection>(*this, std::move(socket), std::move(tlsContext))->start();
}

void Worker::adoptStream(tls::AcceptedStream&& stream) {
  asio::post(context_, [this, stream = std::move(stream)]() mutable {
    if (!reserveConnection()) return;  // `stream` closes the socket
    asio::ip::tcp::socket socket(context_);
    boost::system::error_code error;
    socket.assign(stream.local.address.isV4() ? asio::ip::tcp::v4() : asio::ip::tcp::v6(),
                  stream.socket.get(), error);
    if (error) {
      tcpConnections().fetch_sub(1);
      return;
    }
    stream.socket.release();  // the asio socket owns the descriptor now
    std::make_shared<StreamConnection>(*this, std::move(socket), std::move(stream))->start();
  });
}

void Worker::armDtls(std::size_t index) {
  dtls_[index].socket.async_wait(asio::socket_base::wait_read,
                                 [this, index](const boost::system::error_code& error) {
                                   if (error) return;
                                   drainDtls(index);
                                   armDtls(index);
                                 });
}

void Worker::drainDtls(std::size_t index) {
  DtlsListener& listener = dtls_[index];
  const turn::Now time = now();
  for (int round = 0; round < kBatchesPerWakeup; ++round) {
    const std::size_t received = receive_.receive(listener.socket.native_handle());
    if (received == 0) break;
    for (std::size_t i = 0; i < received; ++i) {
      if (receive_.truncated(i)) {
        counters_.dropped.add();
        continue;
      }
      const Endpoint peer = fromSockaddr(reinterpret_cast<const sockaddr*>(&receive_.peer(i)));
      listener.server->onDatagram(peer, receive_.payload(i), time.steady, dtlsOutput_);
    }
    handleDtlsOutput(listener, time);
    if (received < kBatch) break;
  }
  flushListeners();
}

void Worker::handleDtlsOutput(DtlsListener& listener, const turn::Now& time) {
  const tls::DtlsOutput& out = dtlsOutput_;
  sendDatagrams(listener.socket.native_handle(), out);
  for (const tls::DtlsChunk& chunk : out.received()) {
    const turn::FiveTuple tuple{chunk.peer, listener.spec->local, turn::Transport::Dtls};
    const auto bytes = out.bytes(chunk);
    if (isBindingRequest(bytes) || !turn_) {
      // Over DTLS, as over TCP, there is no other socket to answer from.
      const stun::BindingContext context{tuple.client, tuple.server, stun::Transport::Tcp,
                                         std::nullopt, options().software};
      const auto answer = stun::answerBinding(bytes, context, scratch_);
      if (answer.outcome == stun::Outcome::Drop) {
        counters_.dropped.add();
        continue;
      }
      if (answer.outcome == stun::Outcome::RespondError) counters_.errorResponsesSent.add();
      sendToClient(tuple, answer.response);
      counters_.responsesSent.add();
      continue;
    }
    turn_->onClientBytes(tuple, bytes, time);
  }
  for (const tls::DtlsClosed& closed : out.closed()) {
    if (turn_) {
      turn_->onClientClosed(
          turn::FiveTuple{closed.peer, listener.spec->local, turn::Transport::Dtls}, time);
    }
  }
  dtlsOutput_.clear();
}

void Worker::sendDatagrams(int fd, const tls::DtlsOutput& output) {
  for (const tls::DtlsChunk& chunk : output.datagrams()) {
    sockaddr_storage address;
    const socklen_t length = toSockaddr(chunk.peer, address);
    const auto bytes = output.bytes(chunk);
    if (::sendto(fd, bytes.data(), bytes.size(), 0, reinterpret_cast<sockaddr*>(&address), length) <
        0) {
      counters_.dropped.add();
    }
  }
}

Worker::DtlsListener* Worker::dtlsFor(const Endpoint& server) {
  for (DtlsListener& listener : dtls_) {
    if (listener.spec->local == server) return &listener;
  }
  return nullptr;
}

void Worker::registerStream(const turn::FiveTuple& tuple,
                            std::weak_ptr<StreamConnection> connection) {
  streams_[tuple] = std::move(connection);
}

void Worker::streamClosed(const turn::FiveTuple& tuple) {
  streams_.erase(tuple);
  if (turn_) turn_->onClientClosed(tuple, now());
}

bool Worker::streamAcceptsChannelData(const turn::FiveTuple& tuple) const {
  return turn_ && turn_->hasChannels(tuple);
}

std::chrono::milliseconds Worker::idleTimeoutFor(const turn::FiveTuple& tuple) const {
  if (turn_ && turn_->hasAllocation(tuple)) {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
        options().turn.protocol.maxLifetime);
  }
  return options().tcpIdleTimeout;
}

bool Worker::onStreamFrame(StreamConnection& connection, const turn::FiveTuple& tuple,
                           std::span<const std::uint8_t> frame, bool channelData) {
  if (!channelData && (isBindingRequest(frame) || !turn_)) {
    const SocketSpec* spec = specFor(tuple.server);
    const stun::BindingContext context{tuple.client, tuple.server, stun::Transport::Tcp,
                                       spec ? spec->other : std::nullopt, options().software};
    const auto answer = stun::answerBinding(frame, context, scratch_);
    if (answer.outcome == stun::Outcome::Drop) {
      counters_.dropped.add();
      return answer.dropReason != stun::DropReason::Malformed;
    }
    if (answer.outcome == stun::Outcome::RespondError) counters_.errorResponsesSent.add();
    (connection.send(answer.response) ? counters_.responsesSent : counters_.dropped).add();
    return true;
  }
  turn_->onClientBytes(tuple, frame, now());
  return true;
}

// ---- TURN relay sockets (turn::RelayIo) ----

tl::expected<asio::ip::udp::socket, int> Worker::bindRelaySocket(const IpAddress& address,
                                                                 std::uint16_t port) {
  asio::ip::udp::socket socket(context_);
  boost::system::error_code error;
  socket.open(protocolFor<asio::ip::udp>(address), error);
  if (!error && !address.isV4()) socket.set_option(asio::ip::v6_only(true), error);
  if (!error) socket.bind(asioEndpoint<asio::ip::udp::endpoint>(Endpoint{address, port}), error);
  if (!error) socket.non_blocking(true, error);
  if (error) return tl::unexpected(error == asio::error::address_in_use ? 0 : 508);
  setBufferSizes(socket.native_handle(), options().turn.relaySocketBufferBytes);
  return socket;
}

tl::expected<turn::OpenedRelay, int> Worker::openRelay(const turn::RelayRequest& request) {
  const TurnRelayOptions& turnOptions = options().turn;
  const bool v4 = request.family == AddressFamily::V4;
  const std::optional<IpAddress>& bindAddress =
      v4 ? turnOptions.relayAddressV4 : turnOptions.relayAddressV6;
  if (!bindAddress) return tl::unexpected(stun::error::kAddressFamilyNotSupported);
  PortPool& ports = *shared_.relayPorts;

  std::optional<asio::ip::udp::socket> socket;
  std::uint16_t port = 0;
  if (request.reservationToken) {
    const auto reserved = ports.claim(*request.reservationToken);
    if (!reserved) return tl::unexpected(stun::error::kBadRequest);
    auto bound = bindRelaySocket(*bindAddress, *reserved);
    if (!bound) {
      ports.give(*reserved);
      return tl::unexpected(stun::error::kInsufficientCapacity);
    }
    socket.emplace(std::move(*bound));
    port = *reserved;
  } else {
    // Another process may hold a port of our range: try a few before giving up (508).
    constexpr int kAttempts = 32;
    for (int attempt = 0; attempt < kAttempts && !socket; ++attempt) {
      const auto candidate = ports.take(request.evenPort);
      if (!candidate) break;
      if (request.reserveNext && !ports.takeExactly(static_cast<std::uint16_t>(*candidate + 1))) {
        ports.give(*candidate);
        continue;
      }
      auto bound = bindRelaySocket(*bindAddress, *candidate);
      if (!bound) {
        ports.give(*candidate);
        if (request.reserveNext) ports.give(static_cast<std::uint16_t>(*candidate + 1));
        continue;
      }
      socket.emplace(std::move(*bound));
      port = *candidate;
    }
    if (!socket) return tl::unexpected(stun::error::kInsufficientCapacity);
  }

  turn::OpenedRelay opened;
  if (request.reserveNext) {
    opened.reservationToken =
        ports.reserve(static_cast<std::uint16_t>(port + 1),
                      std::chrono::steady_clock::now() + kReservationLifetime);
  }
  RelayId id;
  if (!freeRelayIds_.empty()) {
    id = freeRelayIds_.back();
    freeRelayIds_.pop_back();
  } else {
    id = static_cast<RelayId>(relays_.size());
    relays_.emplace_back();
  }
  relays_[id].emplace(Relay{std::move(*socket), port, nextGeneration_++});
  const std::optional<IpAddress>& external =
      v4 ? turnOptions.externalAddressV4 : turnOptions.externalAddressV6;
  opened.id = id;
  opened.advertised = Endpoint{external ? *external : *bindAddress, port};
  armRelay(id);
  return opened;
}

void Worker::closeRelay(RelayId relay) {
  if (relay >= relays_.size() || !relays_[relay]) return;
  boost::system::error_code ignored;
  relays_[relay]->socket.close(ignored);  // the pending wait completes with operation_aborted
  shared_.relayPorts->give(relays_[relay]->port);
  relays_[relay].reset();
  freeRelayIds_.push_back(relay);
}

void Worker::armRelay(RelayId id) {
  Relay& relay = *relays_[id];
  relay.socket.async_wait(
      asio::socket_base::wait_read,
      [this, id, generation = relay.generation](const boost::system::error_code& error) {
        if (error) return;
        drainRelay(id, generation);
      });
}

void Worker::drainRelay(RelayId id, std::uint32_t generation) {
  // The slot may have been closed, or reused by a newer relay, since the wait was armed.
  auto alive = [&] {
    return id < relays_.size() && relays_[id] && relays_[id]->generation == generation;
  };
  if (!alive()) return;
  const turn::Now time = now();
  for (int round = 0; round < kBatchesPerWakeup && alive(); ++round) {
    const std::size_t received = receive_.receive(relays_[id]->socket.native_handle());
    if (received == 0) break;
    for (std::size_t i = 0; i < received && alive(); ++i) {
      if (receive_.truncated(i)) {
        counters_.dropped.add();
        continue;
      }
      const Endpoint peer = fromSockaddr(reinterpret_cast<const sockaddr*>(&receive_.peer(i)));
      turn_->onPeerBytes(id, peer, receive_.payload(i), time);
    }
    if (received < kBatch) break;
  }
  // No flush here: what this drain queued toward clients leaves with what the other relay
  // sockets ready in this loop iteration queue, in one sendmmsg (see scheduleFlush).
  if (alive()) armRelay(id);
}

void Worker::sendToPeer(RelayId relay, const Endpoint& peer, std::span<const std::uint8_t> payload,
                        bool dontFragment) {
  if (relay >= relays_.size() || !relays_[relay]) return;
  Relay& self = *relays_[relay];
  const int fd = self.socket.native_handle();
  if (dontFragment && !self.dontFragmentSet) {
    // RFC 8656 §10.2 DONT-FRAGMENT: set DF on what this relay sends from now on.
    const int mode = IP_PMTUDISC_DO;
    ::setsockopt(fd, IPPROTO_IP, IP_MTU_DISCOVER, &mode, sizeof mode);
    self.dontFragmentSet = true;
  }
  sockaddr_storage address;
  const socklen_t length = toSockaddr(peer, address);
  if (::sendto(fd, payload.data(), payload.size(), 0, reinterpret_cast<sockaddr*>(&address),
               length) < 0) {
    counters_.dropped.add();
  }
}

void Worker::sendToClient(const turn::FiveTuple& client, std::span<const std::uint8_t> message) {
  if (client.transport == turn::Transport::Udp) {
    Listener* listener = listenerFor(client.server);
    if (listener == nullptr) {
      counters_.dropped.add();
      return;
    }
    if (!listener->pending) listener->pending = std::make_unique<SendBatch>();
    sockaddr_storage address;
    const socklen_t length = toSockaddr(client.client, address);
    const std::optional<IpAddress> source = listener->spec->local.address.isUnspecified()
                                                ? std::optional(client.server.address)
                                                : std::nullopt;
    if (!listener->pending->add(message, address, length, source)) {
      counters_.dropped.add();
      return;
    }
    if (listener->pending->full()) {
      const auto [sent, dropped] = listener->pending->flush(listener->socket.native_handle());
      counters_.responsesSent.add(sent);
      counters_.dropped.add(dropped);
    } else if (listener->pending->size() == 1) {
      dirtyListeners_.push_back(listener);
      scheduleFlush();
    }
    return;
  }
  if (client.transport == turn::Transport::Dtls) {
    DtlsListener* listener = dtlsFor(client.server);
    if (listener == nullptr || !listener->server->send(client.client, message, dtlsSendOutput_)) {
      counters_.dropped.add();
    }
    if (listener != nullptr) sendDatagrams(listener->socket.native_handle(), dtlsSendOutput_);
    dtlsSendOutput_.clear();
    return;
  }
  const auto found = streams_.find(client);
  if (found == streams_.end()) {
    counters_.dropped.add();
    return;
  }
  if (auto connection = found->second.lock(); !connection || !connection->send(message)) {
    counters_.dropped.add();
  }
}

void Worker::armTick() {
  tick_.expires_after(kTickInterval);
  tick_.async_wait([this](const boost::system::error_code& error) {
    if (error) return;
    const turn::Now time = now();
    for (DtlsListener& listener : dtls_) {
      listener.server->tick(time.steady, dtlsOutput_);
      handleDtlsOutput(listener, time);
    }
    if (turn_) {
      turn_->expire(time);
      shared_.relayPorts->expireReservations(time.steady);
      std::lock_guard lock(turnCountersMutex_);
      turnCountersSnapshot_ = turn_->counters();
    }
    flushListeners();
    armTick();
  });
}

void Worker::updateCredentials(std::vector<std::pair<std::string, std::string>> users,
                               std::vector<std::string> restSecrets) {
  if (!turn_) return;
  asio::post(context_,
             [this, users = std::move(users), secrets = std::move(restSecrets)]() mutable {
               turn_->setCredentials(std::move(users), std::move(secrets));
             });
}

turn::Counters Worker::turnCounters() const {
  std::lock_guard lock(turnCountersMutex_);
  return turnCountersSnapshot_;
}

}  // namespace parley::net
