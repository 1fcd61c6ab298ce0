#include <atomic>
#include <random>

#include <parley/net/stun_server.hpp>

#include "listen_plan.hpp"
#include "worker.hpp"

namespace parley::net {

struct StunServer::Impl {
  StunServerOptions options;
  std::vector<SocketSpec> plan;
  std::vector<SocketSpec> tlsPlan;
  std::unique_ptr<SharedContext> shared;
  std::vector<std::unique_ptr<Worker>> workers;
  std::atomic<bool> running = false;
  std::atomic<std::size_t> nextAdoptingWorker{0};
};

namespace {

std::array<std::uint8_t, 32> randomKey() {
  std::random_device device;
  std::array<std::uint8_t, 32> key;
  for (auto& byte : key)
    byte = static_cast<std::uint8_t>(device());
  return key;
}

}  // namespace

StunServer::StunServer(StunServerOptions options) : impl_(std::make_unique<Impl>()) {
  impl_->options = std::move(options);
  if (impl_->options.threads == 0) impl_->options.threads = 1;
}

StunServer::~StunServer() {
  stop();
  impl_->workers.clear();  // before the shared context they point into
}

void StunServer::start() {
  if (impl_->running) return;
  try {
    impl_->plan = planSockets(impl_->options);
    impl_->tlsPlan = planTlsSockets(impl_->options);
  } catch (const std::invalid_argument& error) {
    throw BindError(error.what());
  }
  if ((impl_->options.tls.tls || impl_->options.tls.dtls) && !impl_->options.tls.contexts) {
    throw BindError("TLS/DTLS listeners need certificates");
  }
  impl_->shared = std::make_unique<SharedContext>(impl_->options, impl_->plan, impl_->tlsPlan);
  const TurnRelayOptions& turn = impl_->options.turn;
  if (turn.enabled) {
    impl_->shared->relayPorts = std::make_unique<PortPool>(turn.relayPortMin, turn.relayPortMax);
    // The nonce key lives only in memory: a restart invalidates nonces, clients re-auth (438).
    impl_->shared->turnState =
        std::make_unique<turn::SharedState>(turn.maxAllocationsTotal, randomKey());
    impl_->shared->peerFilter =
        std::make_unique<turn::PeerFilter>(turn.allowedPeers, turn.deniedPeers, turn.exemptPeers);
  }
  for (unsigned i = 0; i < impl_->options.threads; ++i) {
    impl_->workers.push_back(std::make_unique<Worker>(*impl_->shared));
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

namespace {
// The local endpoints of `plan` when that kind of listener is enabled.
std::vector<Endpoint> endpointsOf(bool enabled, const std::vector<SocketSpec>& plan) {
  std::vector<Endpoint> endpoints;
  if (!enabled) return endpoints;
  for (const auto& spec : plan)
    endpoints.push_back(spec.local);
  return endpoints;
}
}  // namespace

std::vector<Endpoint> StunServer::udpEndpoints() const {
  return endpointsOf(impl_->options.udp, impl_->plan);
}
std::vector<Endpoint> StunServer::tcpEndpoints() const {
  return endpointsOf(impl_->options.tcp, impl_->plan);
}
std::vector<Endpoint> StunServer::tlsEndpoints() const {
  return endpointsOf(impl_->options.tls.tls, impl_->tlsPlan);
}
std::vector<Endpoint> StunServer::dtlsEndpoints() const {
  return endpointsOf(impl_->options.tls.dtls, impl_->tlsPlan);
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

void StunServer::updateCredentials(std::vector<std::pair<std::string, std::string>> users,
                                   std::vector<std::string> restSecrets) {
  for (auto& worker : impl_->workers)
    worker->updateCredentials(users, restSecrets);
}

void StunServer::adoptStream(tls::AcceptedStream&& stream) {
  if (!impl_->running || impl_->workers.empty()) return;  // closes it
  // Round robin: handed-over connections are few (the fallback path), so no balancing finer
  // than this is needed.
  const std::size_t index = impl_->nextAdoptingWorker.fetch_add(1) % impl_->workers.size();
  impl_->workers[index]->adoptStream(std::move(stream));
}

turn::Counters StunServer::turnCounters() const {
  turn::Counters total;
  for (const auto& worker : impl_->workers) {
    const turn::Counters c = worker->turnCounters();
    total.allocationsCreated += c.allocationsCreated;
    total.allocationsExpired += c.allocationsExpired;
    total.allocationsDeleted += c.allocationsDeleted;
    total.allocationsActive += c.allocationsActive;
    total.permissionsCreated += c.permissionsCreated;
    total.channelsBound += c.channelsBound;
    total.packetsToPeer += c.packetsToPeer;
    total.bytesToPeer += c.bytesToPeer;
    total.packetsToClient += c.packetsToClient;
    total.bytesToClient += c.bytesToClient;
    total.authFailures += c.authFailures;
    total.staleNonces += c.staleNonces;
    total.forbiddenPeers += c.forbiddenPeers;
    total.quotaRejections += c.quotaRejections;
    total.droppedNoPermission += c.droppedNoPermission;
    total.droppedBandwidth += c.droppedBandwidth;
    total.droppedMalformed += c.droppedMalformed;
    total.unauthenticatedRateLimited += c.unauthenticatedRateLimited;
  }
  return total;
}

}  // namespace parley::net
