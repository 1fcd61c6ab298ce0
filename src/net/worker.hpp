// One event-loop thread and everything it owns: its SO_REUSEPORT listeners, its TCP
// connections, its share of the TURN allocations and their relay sockets. Nothing on the
// packet path is shared with other workers, so nothing there takes a lock.
#pragma once

#include <atomic>
#include <memory>
#include <optional>
#include <thread>
#include <unordered_map>
#include <vector>

#include <boost/asio.hpp>

#include <parley/net/stun_server.hpp>
#include <parley/tls/dtls.hpp>
#include <parley/turn/server.hpp>

#include "listen_plan.hpp"
#include "port_pool.hpp"
#include "udp_batch.hpp"

namespace parley::net {

namespace asio = boost::asio;
using turn::RelayId;

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

// What all workers share: read-only options and the few cross-worker quotas.
struct SharedContext {
  SharedContext(const StunServerOptions& o, const std::vector<SocketSpec>& p,
                const std::vector<SocketSpec>& t)
      : options(o), plan(p), tlsPlan(t) {}
  const StunServerOptions& options;
  const std::vector<SocketSpec>& plan;
  const std::vector<SocketSpec>& tlsPlan;
  std::atomic<std::size_t> tcpConnections{0};
  std::unique_ptr<PortPool> relayPorts;          // TURN only
  std::unique_ptr<turn::SharedState> turnState;  // TURN only
  std::unique_ptr<turn::PeerFilter> peerFilter;  // TURN only
};

class StreamConnection;

class Worker : private turn::RelayIo {
 public:
  explicit Worker(SharedContext& shared);
  ~Worker() override;
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  void start();
  void stop();

  asio::io_context& context() { return context_; }
  WorkerCounters& counters() { return counters_; }
  const StunServerOptions& options() const { return shared_.options; }
  std::atomic<std::size_t>& tcpConnections() { return shared_.tcpConnections; }
  // Hands new TURN credentials to this worker's state machine, on its own thread.
  void updateCredentials(std::vector<std::pair<std::string, std::string>> users,
                         std::vector<std::string> restSecrets);
  // Takes over a connection another listener accepted; thread-safe (posts to this worker).
  void adoptStream(tls::AcceptedStream&& stream);
  // Snapshot of the TURN counters taken on this worker's thread at its last tick.
  turn::Counters turnCounters() const;

  // Called by stream connections (on this worker's thread).
  void registerStream(const turn::FiveTuple& tuple, std::weak_ptr<StreamConnection> connection);
  void streamClosed(const turn::FiveTuple& tuple);
  // A complete STUN message or ChannelData frame from a stream. false: close the stream.
  bool onStreamFrame(StreamConnection& connection, const turn::FiveTuple& tuple,
                     std::span<const std::uint8_t> frame, bool isChannelData);
  // No complete frame for this long closes a stream; an allocation extends it to its lifetime.
  std::chrono::milliseconds idleTimeoutFor(const turn::FiveTuple& tuple) const;
  // May ChannelData arrive on this stream yet?
  bool streamAcceptsChannelData(const turn::FiveTuple& tuple) const;

 private:
  struct Listener {
    asio::ip::udp::socket socket;
    const SocketSpec* spec;
    std::unique_ptr<SendBatch> pending;  // replies gathered during a drain
  };
  struct DtlsListener {
    asio::ip::udp::socket socket;
    const SocketSpec* spec;
    std::unique_ptr<tls::DtlsServer> server;
  };
  struct Relay {
    asio::ip::udp::socket socket;
    std::uint16_t port;
    std::uint32_t generation;
    bool dontFragmentSet = false;
  };

  void openListener(const SocketSpec& spec);
  void openAcceptor(const SocketSpec& spec);
  asio::ip::tcp::acceptor bindAcceptor(const SocketSpec& spec, const char* what);
  asio::ip::udp::socket bindUdp(const SocketSpec& spec, const char* what);
  void sendDatagrams(int fd, const tls::DtlsOutput& output);
  void armListener(std::size_t index);
  void drainListener(std::size_t index);
  void answerBinding(Listener& self, std::span<const std::uint8_t> request, const Endpoint& source,
                     const Endpoint& local, const sockaddr_storage& peer, socklen_t peerLength,
                     const std::optional<IpAddress>& replySource);
  void flushListeners();
  void scheduleFlush();
  void accept(std::size_t index);
  void admitStream(asio::ip::tcp::socket socket, std::shared_ptr<tls::ServerContext> tlsContext);
  bool reserveConnection();
  void openTlsAcceptor(const SocketSpec& spec);
  void acceptTls(std::size_t index);
  void openDtls(const SocketSpec& spec);
  void armDtls(std::size_t index);
  void drainDtls(std::size_t index);
  // Sends what a DTLS server produced and hands decrypted messages to STUN/TURN.
  void handleDtlsOutput(DtlsListener& listener, const turn::Now& time);
  DtlsListener* dtlsFor(const Endpoint& server);
  void armRelay(RelayId id);
  void drainRelay(RelayId id, std::uint32_t generation);
  void armTick();
  turn::Now now() const;
  Listener* listenerFor(const Endpoint& server);
  const SocketSpec* specFor(const Endpoint& server) const;

  // turn::RelayIo
  tl::expected<turn::OpenedRelay, int> openRelay(const turn::RelayRequest& request) override;
  void closeRelay(RelayId relay) override;
  void sendToPeer(RelayId relay, const Endpoint& peer, std::span<const std::uint8_t> payload,
                  bool dontFragment) override;
  void sendToClient(const turn::FiveTuple& client, std::span<const std::uint8_t> message) override;
  tl::expected<asio::ip::udp::socket, int> bindRelaySocket(const IpAddress& address,
                                                           std::uint16_t port);

  SharedContext& shared_;
  asio::io_context context_;
  std::thread thread_;
  WorkerCounters counters_;
  std::vector<Listener> listeners_;
  std::vector<Listener*> dirtyListeners_;
  bool flushPosted_ = false;
  std::vector<asio::ip::tcp::acceptor> acceptors_;
  std::vector<const SocketSpec*> acceptorSpecs_;
  std::vector<asio::ip::tcp::acceptor> tlsAcceptors_;
  std::vector<const SocketSpec*> tlsAcceptorSpecs_;
  std::vector<DtlsListener> dtls_;
  tls::DtlsOutput dtlsOutput_;      // what a received datagram or a tick produced
  tls::DtlsOutput dtlsSendOutput_;  // what sendToClient encrypts, flushed at once
  std::unique_ptr<turn::Server> turn_;
  std::vector<std::optional<Relay>> relays_;  // indexed by RelayId
  std::vector<RelayId> freeRelayIds_;
  std::uint32_t nextGeneration_ = 1;
  std::unordered_map<turn::FiveTuple, std::weak_ptr<StreamConnection>, turn::FiveTupleHash>
      streams_;
  asio::steady_timer tick_;
  mutable std::mutex turnCountersMutex_;
  turn::Counters turnCountersSnapshot_;
  ReceiveBatch receive_;
  std::array<std::uint8_t, kMaxDatagram> scratch_{};
};

}  // namespace parley::net
