// turn_load: a TURN (RFC 8656) relay load generator over UDP for benchmarking `parley turn`
// and coturn.
//
// Three modes, all bounded in count and time, each ending with one JSON line on stdout:
//
//   relay  Phase 1 creates --allocations allocations, each from its own client socket
//          (Allocate → 401 → Allocate with MD5 long-term MESSAGE-INTEGRITY → ChannelBind to
//          a peer sink). Phase 2 sends ChannelData for --duration seconds, paced (--rate,
//          packets/s from the clients in total) or unpaced (--window packets outstanding).
//          The peer sinks live in this process and echo every datagram back to the relay
//          address it came from, so each packet is relayed twice: client → relay → peer →
//          relay → client. Payloads carry a sequence number and a send timestamp: loss and
//          round-trip time are measured end to end. Finally every allocation is deleted
//          (Refresh with LIFETIME 0).
//   allocs Allocate + Refresh(LIFETIME 0) cycles from --sockets client sockets, --count in
//          total (each cycle starts unauthenticated, as browsers do: 401, Allocate, Refresh);
//          reports allocations per second.
//   idle   Creates --allocations allocations (with a channel each, as in relay mode), holds
//          them --hold seconds, deletes them. With --server-pid the server's RSS before and
//          with the allocations, and its CPU while they idle, are read from /proc.
//
// With --server-pid PID the generator reads the server's CPU time (utime+stime of all threads
// from /proc/PID/stat, and the scheduler's runtime from /proc/PID/task/*/schedstat) right
// around the measured phase, so set-up and tear-down are not charged to it.

#include <algorithm>
#include <array>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <parley/stun/builder.hpp>
#include <parley/stun/integrity.hpp>
#include <parley/stun/message.hpp>

#include "load_common.hpp"

namespace {

namespace stun = parley::stun;
using parley::Endpoint;
using parley::IpAddress;
using parley::bench::die;
using parley::bench::Histogram;
using parley::bench::nowNs;
using parley::bench::parseDouble;
using parley::bench::parseNumber;

constexpr std::size_t kBatch = 64;
constexpr std::size_t kMaxDatagram = 2048;
constexpr std::size_t kPayloadHeader = 24;  // tag, client index, sequence, send time
constexpr std::size_t kChannelDataHeader = 4;
constexpr double kMaxDurationSeconds = 120.0;
constexpr std::uint64_t kRingSize = std::uint64_t{1} << 22;
constexpr std::uint64_t kEmpty = ~std::uint64_t{0};
constexpr int kBigBufferBytes = 4 << 20;
constexpr std::uint16_t kChannel = 0x4000;
constexpr std::uint32_t kPeerTag = 0x80000000u;  // epoll data: peer sink, not client
// Set-up transactions: retransmitted after kRto, given up after kMaxTries sends.
constexpr std::uint64_t kRtoNs = 500'000'000;
constexpr int kMaxTries = 7;

double seconds(std::uint64_t ns) {
  return static_cast<double>(ns) / 1e9;
}

enum class Mode { Relay, Allocs, Idle };

struct Options {
  Mode mode = Mode::Relay;
  sockaddr_in server{};
  std::string serverText = "127.0.0.1:3478";
  std::string username = "bench";
  std::string password = "benchpassword";
  std::string realm = "parley";
  int serverPid = 0;
  // relay
  int allocations = 64;
  int peers = 4;
  std::size_t size = 100;  // ChannelData payload bytes
  double rate = 0;         // client packets/s in total; 0 = unpaced, limited by `window`
  std::uint64_t window = 256;
  double duration = 10;
  int timeoutMs = 1000;
  // allocs
  std::uint64_t count = 2000;
  int sockets = 16;
  // idle
  double hold = 2;
  // set-up
  int concurrency = 64;
  double setupTimeout = 60;
  bool quiet = false;
};

void usage() {
  std::fprintf(
      stderr,
      "usage: turn_load [--mode relay|allocs|idle] [--server IP:PORT] [options]\n"
      "  --server        IPv4 TURN server (default 127.0.0.1:3478)\n"
      "  --user NAME:PASSWORD  long-term credentials (default bench:benchpassword)\n"
      "  --server-pid    read this process's CPU time and RSS around the measured phase\n"
      "  --allocations   relay/idle: allocations, one client socket each (default 64)\n"
      "  --concurrency   relay/idle: allocations being set up at once (default 64)\n"
      "  --peers         relay: peer echo sockets (default 4)\n"
      "  --size          relay: ChannelData payload bytes, 24..1400 (default 100)\n"
      "  --rate          relay: client packets/s in total, paced; 0 = unpaced (default 0)\n"
      "  --window        relay: packets outstanding when unpaced (default 256)\n"
      "  --duration      relay: seconds of sending; allocs: bound on the run, <= 120 (10)\n"
      "  --timeout-ms    relay: a packet not back after this counts as lost (default 1000)\n"
      "  --count         allocs: allocate+delete cycles in total (default 2000)\n"
      "  --sockets       allocs: client sockets cycling in parallel (default 16)\n"
      "  --hold          idle: seconds to hold the allocations, <= 120 (default 2)\n"
      "  --quiet         print only the JSON line\n");
}

Options parseOptions(int argc, char** argv) {
  Options options;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      usage();
      std::exit(0);
    }
    if (arg == "--quiet") {
      options.quiet = true;
      continue;
    }
    if (i + 1 >= argc) die("missing value for " + std::string(arg));
    const std::string_view value = argv[++i];
    if (arg == "--mode") {
      if (value == "relay") {
        options.mode = Mode::Relay;
      } else if (value == "allocs") {
        options.mode = Mode::Allocs;
      } else if (value == "idle") {
        options.mode = Mode::Idle;
      } else {
        die("--mode must be relay, allocs or idle");
      }
    } else if (arg == "--server") {
      options.serverText = std::string(value);
    } else if (arg == "--user") {
      const auto colon = value.find(':');
      if (colon == std::string_view::npos) die("--user needs NAME:PASSWORD");
      options.username = std::string(value.substr(0, colon));
      options.password = std::string(value.substr(colon + 1));
    } else if (arg == "--server-pid") {
      options.serverPid = parseNumber<int>(arg, value);
    } else if (arg == "--allocations") {
      options.allocations = parseNumber<int>(arg, value);
    } else if (arg == "--concurrency") {
      options.concurrency = parseNumber<int>(arg, value);
    } else if (arg == "--peers") {
      options.peers = parseNumber<int>(arg, value);
    } else if (arg == "--size") {
      options.size = parseNumber<std::size_t>(arg, value);
    } else if (arg == "--rate") {
      options.rate = parseDouble(arg, value);
    } else if (arg == "--window") {
      options.window = parseNumber<std::uint64_t>(arg, value);
    } else if (arg == "--duration") {
      options.duration = parseDouble(arg, value);
    } else if (arg == "--timeout-ms") {
      options.timeoutMs = parseNumber<int>(arg, value);
    } else if (arg == "--count") {
      options.count = parseNumber<std::uint64_t>(arg, value);
    } else if (arg == "--sockets") {
      options.sockets = parseNumber<int>(arg, value);
    } else if (arg == "--hold") {
      options.hold = parseDouble(arg, value);
    } else {
      usage();
      die("unknown option " + std::string(arg));
    }
  }
  if (options.allocations < 1 || options.allocations > 15000) {
    die("--allocations must be in [1, 15000]");
  }
  if (options.concurrency < 1) die("--concurrency must be >= 1");
  if (options.peers < 1 || options.peers > 64) die("--peers must be in [1, 64]");
  if (options.size < kPayloadHeader || options.size > 1400) die("--size must be in [24, 1400]");
  if (options.rate < 0) die("--rate must be >= 0");
  if (options.window < 1 || options.window > kRingSize / 2) die("--window out of range");
  if (!(options.duration > 0 && options.duration <= kMaxDurationSeconds)) {
    die("--duration must be in (0, 120]");
  }
  if (options.timeoutMs < 1 || options.timeoutMs > 10'000) {
    die("--timeout-ms must be in [1, 10000]");
  }
  if (options.count < 1 || options.count > 1'000'000) die("--count must be in [1, 1000000]");
  if (options.sockets < 1 || options.sockets > 1024) die("--sockets must be in [1, 1024]");
  if (!(options.hold >= 0 && options.hold <= kMaxDurationSeconds)) {
    die("--hold must be in [0, 120]");
  }

  options.server = parley::bench::parseServer(options.serverText);
  return options;
}

// ---- the server process, read from /proc ----------------------------------------------------

struct ServerSample {
  std::uint64_t ticks = 0;    // utime + stime, all threads, in clock ticks
  std::uint64_t schedNs = 0;  // sum of the threads' scheduler runtime
  std::uint64_t rssKb = 0;
  std::uint64_t hwmKb = 0;
  std::uint64_t hostTicks = 0;  // all CPUs busy (not idle or iowait), from /proc/stat
  std::uint64_t selfTicks = 0;  // this load generator's utime + stime
};

std::uint64_t statTicks(const std::string& path) {
  std::ifstream file(path);
  std::string text((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
  const auto close = text.rfind(')');
  if (close == std::string::npos) return 0;
  // After "pid (comm) ": field 3 is state; utime and stime are fields 14 and 15.
  std::istringstream rest(text.substr(close + 2));
  std::string field;
  std::uint64_t ticks = 0;
  for (int i = 3; i <= 15 && rest >> field; ++i) {
    if (i == 14 || i == 15) ticks += std::strtoull(field.c_str(), nullptr, 10);
  }
  return ticks;
}

// Busy ticks of all CPUs together: user nice system idle iowait irq softirq steal ...
std::uint64_t hostBusyTicks() {
  std::ifstream file("/proc/stat");
  std::string cpu;
  std::uint64_t value = 0;
  std::uint64_t busy = 0;
  file >> cpu;
  for (int i = 0; i < 8 && file >> value; ++i) {
    if (i != 3 && i != 4) busy += value;
  }
  return busy;
}

ServerSample sampleServer(int pid) {
  ServerSample sample;
  sample.hostTicks = hostBusyTicks();
  sample.selfTicks = statTicks("/proc/self/stat");
  if (pid <= 0) return sample;
  const std::string base = "/proc/" + std::to_string(pid);
  sample.ticks = statTicks(base + "/stat");
  if (DIR* tasks = ::opendir((base + "/task").c_str())) {
    while (const dirent* entry = ::readdir(tasks)) {
      if (entry->d_name[0] == '.') continue;
      std::ifstream file(base + "/task/" + entry->d_name + "/schedstat");
      std::uint64_t runNs = 0;
      if (file >> runNs) sample.schedNs += runNs;
    }
    ::closedir(tasks);
  }
  std::ifstream status(base + "/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmRSS:", 0) == 0) sample.rssKb = std::strtoull(line.c_str() + 6, nullptr, 10);
    if (line.rfind("VmHWM:", 0) == 0) sample.hwmKb = std::strtoull(line.c_str() + 6, nullptr, 10);
  }
  return sample;
}

// ---- sockets --------------------------------------------------------------------------------

void setBuffers(int fd, int bytes) {
  if (::setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &bytes, sizeof(int)) != 0) {
    ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &bytes, sizeof(int));
  }
  if (::setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &bytes, sizeof(int)) != 0) {
    ::setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &bytes, sizeof(int));
  }
}

// A UDP socket bound to `local` (port 0: ephemeral), connected to `connectTo` if given.
int openUdp(std::uint32_t localHostOrder, const sockaddr_in* connectTo, bool bigBuffers) {
  const int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) die(std::string("socket: ") + std::strerror(errno));
  if (bigBuffers) setBuffers(fd, kBigBufferBytes);
  sockaddr_in local{};
  local.sin_family = AF_INET;
  local.sin_addr.s_addr = htonl(localHostOrder);
  if (::bind(fd, reinterpret_cast<const sockaddr*>(&local), sizeof(local)) != 0) {
    die(std::string("bind: ") + std::strerror(errno));
  }
  // connect() fixes the server as the only source accepted.
  if (connectTo != nullptr &&
      ::connect(fd, reinterpret_cast<const sockaddr*>(connectTo), sizeof(*connectTo)) != 0) {
    die(std::string("connect: ") + std::strerror(errno));
  }
  return fd;
}

sockaddr_in localAddress(int fd) {
  sockaddr_in local{};
  socklen_t length = sizeof(local);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&local), &length);
  return local;
}

Endpoint toEndpoint(const sockaddr_in& address) {
  return Endpoint{IpAddress::v4(ntohl(address.sin_addr.s_addr)), ntohs(address.sin_port)};
}

bool sameAddress(const sockaddr_in& a, const sockaddr_in& b) {
  return a.sin_port == b.sin_port && a.sin_addr.s_addr == b.sin_addr.s_addr;
}

// ---- TURN clients: the set-up state machine ---------------------------------------------------

enum class Step : std::uint8_t {
  Idle,          // not started
  AllocateAnon,  // Allocate without credentials, expecting 401
  Allocate,      // authenticated Allocate
  ChannelBind,
  Refresh,  // LIFETIME 0: delete
  Ready,    // allocated (and bound, unless cycling)
  Done,     // deleted, or finished cycling
  Failed,
};

struct Client {
  int fd = -1;
  sockaddr_in local{};
  sockaddr_in relay{};  // XOR-RELAYED-ADDRESS
  int peer = 0;         // index of the peer sink its channel is bound to
  Step step = Step::Idle;
  std::array<std::uint8_t, 12> transaction{};
  std::uint64_t sentAt = 0;      // last (re)transmission
  std::uint64_t cycleStart = 0;  // allocs mode: when this cycle's first request left
  int tries = 0;
  int staleRetries = 0;
  std::string nonce;
  std::string realm;
};

struct SetupStats {
  std::uint64_t requests = 0;
  std::uint64_t retransmissions = 0;
  std::uint64_t challenges = 0;  // 401 to the anonymous Allocate
  std::uint64_t stale = 0;       // 438
  std::uint64_t failed = 0;
  std::uint64_t badIntegrity = 0;
  std::uint64_t strays = 0;  // responses to no outstanding transaction
  std::uint64_t allocated = 0;
  std::uint64_t bound = 0;
  std::uint64_t deleted = 0;
  int lastErrorCode = 0;
  std::string lastError;
  Histogram cycle;  // allocs mode: anonymous Allocate sent → Refresh answered
};

struct RelayStats {
  std::uint64_t sent = 0;
  std::uint64_t peerReceived = 0;  // at the peer sinks: relayed client → peer
  std::uint64_t peerInvalid = 0;   // wrong source (not the allocation's relay) or malformed
  std::uint64_t echoErrors = 0;
  std::uint64_t received = 0;   // back at the clients: relayed peer → client, valid
  std::uint64_t invalid = 0;    // not ChannelData on our channel with our payload
  std::uint64_t unmatched = 0;  // duplicate, late (already counted lost) or unknown
  std::uint64_t sendErrors = 0;
  std::uint64_t timedOut = 0;
  Histogram rtt;
};

class TurnLoad {
 public:
  explicit TurnLoad(const Options& options)
      : options_(options), epoll_(::epoll_create1(EPOLL_CLOEXEC)) {
    if (epoll_ < 0) die(std::string("epoll_create1: ") + std::strerror(errno));
    std::random_device device;
    runTag_ = device();
    const auto key =
        stun::longTermKeyMd5(options_.username, options_.realm, options_.password).value();
    key_.assign(key.begin(), key.end());
    for (std::size_t i = 0; i < kBatch; ++i) {
      recvIov_[i] = {recvBuffers_[i].data(), recvBuffers_[i].size()};
      sendIov_[i] = {sendBuffers_[i].data(), 0};
    }
  }

  ~TurnLoad() {
    for (const Client& client : clients_)
      ::close(client.fd);
    for (const int fd : peerFds_)
      ::close(fd);
    ::close(epoll_);
  }

  // ---- client sockets and peer sinks ----

  void openClients(int count, bool bigBuffers) {
    bigBuffers_ = bigBuffers;
    clients_.resize(static_cast<std::size_t>(count));
    for (int i = 0; i < count; ++i) {
      Client& client = clients_[static_cast<std::size_t>(i)];
      client.peer = i % options_.peers;
      openClientSocket(static_cast<std::uint32_t>(i));
    }
  }

  // Every client socket gets a source address of its own in 127.0.0.0/8 that no earlier socket
  // of this run had, so no 5-tuple is ever reused: coturn answers 437 to an Allocate from a
  // 5-tuple whose allocation was deleted moments ago, and a server may still hold allocations
  // of an earlier run (same ephemeral port) until they expire.
  void openClientSocket(std::uint32_t index) {
    Client& client = clients_[index];
    if (client.fd >= 0) ::close(client.fd);  // also leaves the epoll set
    const std::uint32_t address = (127u << 24) | ((addressBase_ + addressCount_++) & 0xFFFFFFu);
    client.fd = openUdp(address, &options_.server, bigBuffers_);
    client.local = localAddress(client.fd);
    client.realm = options_.realm;
    client.nonce.clear();
    epoll_event event{};
    event.events = EPOLLIN;
    event.data.u32 = index;
    if (::epoll_ctl(epoll_, EPOLL_CTL_ADD, client.fd, &event) != 0) {
      die(std::string("epoll_ctl: ") + std::strerror(errno));
    }
  }

  void openPeers() {
    for (int p = 0; p < options_.peers; ++p) {
      const int fd = openUdp(INADDR_LOOPBACK, nullptr, true);
      peerFds_.push_back(fd);
      peerAddresses_.push_back(localAddress(fd));
      epoll_event event{};
      event.events = EPOLLIN;
      event.data.u32 = kPeerTag | static_cast<std::uint32_t>(p);
      if (::epoll_ctl(epoll_, EPOLL_CTL_ADD, fd, &event) != 0) {
        die(std::string("epoll_ctl: ") + std::strerror(errno));
      }
    }
  }

  // ---- set-up transactions ----

  // Runs clients through Allocate (and ChannelBind when `bind`) until all are Ready or
  // Failed, at most `concurrency` at a time.
  void allocateAll(bool bind, std::uint64_t deadline) {
    bind_ = bind;
    cycling_ = false;
    std::size_t next = 0;
    while (true) {
      const std::uint64_t now = nowNs();
      while (next < clients_.size() && inFlight_ < static_cast<std::size_t>(options_.concurrency)) {
        begin(clients_[next++], now);
      }
      if (pumpSetup(now, deadline) == 0 && next == clients_.size()) return;
      if (now >= deadline) {
        failRemaining("set-up timed out");
        return;
      }
    }
  }

  // Deletes every Ready allocation (Refresh LIFETIME 0).
  void releaseAll(std::uint64_t deadline) {
    std::size_t next = 0;
    while (true) {
      const std::uint64_t now = nowNs();
      while (next < clients_.size() && inFlight_ < static_cast<std::size_t>(options_.concurrency)) {
        Client& client = clients_[next++];
        if (client.step == Step::Ready) send(client, Step::Refresh, now);
      }
      if (pumpSetup(now, deadline) == 0 && next == clients_.size()) return;
      if (now >= deadline) {
        failRemaining("release timed out");
        return;
      }
    }
  }

  // allocs mode: every client (a "lane") cycles Allocate → Refresh(0) until `count` cycles
  // completed (or the deadline), each cycle from a new socket with a new source address.
  // Returns the seconds from the first request to the last answer.
  double cycleAllocations(std::uint64_t count, std::uint64_t deadline) {
    cycling_ = true;
    cyclesWanted_ = count;
    const std::uint64_t start = nowNs();
    for (Client& client : clients_) {
      if (cyclesStarted_ >= cyclesWanted_) break;
      ++cyclesStarted_;
      begin(client, start);
    }
    while (true) {
      const std::uint64_t now = nowNs();
      if (pumpSetup(now, deadline) == 0) break;
      if (now >= deadline) {
        failRemaining("allocs run timed out");
        break;
      }
    }
    return seconds(nowNs() - start);
  }

  // ---- relay traffic ----

  const RelayStats& relay() {
    ready_.clear();
    for (std::size_t i = 0; i < clients_.size(); ++i) {
      if (clients_[i].step == Step::Ready) ready_.push_back(i);
    }
    if (ready_.empty()) return relayStats_;
    slots_.assign(kRingSize, Slot{});
    const std::uint64_t timeoutNs = static_cast<std::uint64_t>(options_.timeoutMs) * 1'000'000u;
    start_ = nowNs();
    const std::uint64_t sendEnd = start_ + static_cast<std::uint64_t>(options_.duration * 1e9);
    const double nsPerPacket = options_.rate > 0 ? 1e9 / options_.rate : 0;
    std::size_t nextClient = 0;

    while (true) {
      const std::uint64_t now = nowNs();
      if (now >= sendEnd) break;
      expire(now, timeoutNs);
      std::uint64_t due;
      if (options_.rate > 0) {
        // An absolute schedule: a late wake-up sends a catch-up burst rather than silently
        // lowering the offered rate.
        const auto scheduled =
            static_cast<std::uint64_t>(static_cast<double>(now - start_) / nsPerPacket) + 1;
        due = scheduled > relayStats_.sent ? scheduled - relayStats_.sent : 0;
      } else {
        due = outstanding_ < options_.window ? options_.window - outstanding_ : 0;
      }
      due = std::min<std::uint64_t>(due, kBatch);
      if (due > 0) {
        sendChannelData(ready_[nextClient], static_cast<std::size_t>(due), now);
        nextClient = (nextClient + 1) % ready_.size();
      }
      const bool gotAny = pollRelay(0);
      if (due == 0 && !gotAny) {
        std::uint64_t waitNs = 1'000'000;
        if (options_.rate > 0) {
          const auto nextAt = start_ + static_cast<std::uint64_t>(
                                           static_cast<double>(relayStats_.sent) * nsPerPacket);
          waitNs = nextAt > now ? std::min(waitNs, nextAt - now) : 0;
        }
        if (waitNs > 0) pollRelay(waitNs);
      }
    }
    sendEndedAt_ = nowNs();
    const std::uint64_t drainEnd = sendEndedAt_ + timeoutNs;
    while (outstanding_ > 0) {
      const std::uint64_t now = nowNs();
      if (now >= drainEnd) break;
      expire(now, timeoutNs);
      if (!pollRelay(0)) pollRelay(std::min<std::uint64_t>(drainEnd - now, 1'000'000));
    }
    relayStats_.timedOut += outstanding_;
    outstanding_ = 0;
    finishedAt_ = nowNs();
    return relayStats_;
  }

  const SetupStats& setupStats() const { return setup_; }
  std::size_t readyCount() const {
    return static_cast<std::size_t>(std::count_if(
        clients_.begin(), clients_.end(), [](const Client& c) { return c.step == Step::Ready; }));
  }
  std::uint64_t cyclesCompleted() const { return cyclesCompleted_; }
  double sendSeconds() const { return seconds(sendEndedAt_ - start_); }
  double totalSeconds() const { return seconds(finishedAt_ - start_); }

 private:
  struct Slot {
    std::uint64_t seq = kEmpty;
    std::uint64_t sentNs = 0;
  };

  void begin(Client& client, std::uint64_t now) {
    client.cycleStart = now;
    client.staleRetries = 0;
    send(client, Step::AllocateAnon, now);
  }

  void newTransaction(Client& client) {
    for (std::size_t i = 0; i < client.transaction.size(); i += 4) {
      const std::uint32_t word = rng_();
      std::memcpy(client.transaction.data() + i, &word, 4);
    }
  }

  // Builds and sends the request for `step` with a fresh transaction ID.
  void send(Client& client, Step step, std::uint64_t now) {
    setStep(client, step);
    client.tries = 0;
    newTransaction(client);
    transmit(client, now);
  }

  // (Re)sends the current request; a retransmission keeps the transaction ID (RFC 8489 §6.2.1).
  void transmit(Client& client, std::uint64_t now) {
    std::uint16_t method = stun::method::kAllocate;
    if (client.step == Step::ChannelBind) method = stun::method::kChannelBind;
    if (client.step == Step::Refresh) method = stun::method::kRefresh;
    stun::MessageBuilder builder(
        requestBuffer_, stun::messageType(method, stun::MessageClass::Request), client.transaction);
    if (method == stun::method::kAllocate) {
      builder.addUint32(stun::attr::kRequestedTransport, 17u << 24);  // UDP
    } else if (method == stun::method::kChannelBind) {
      builder.addUint32(stun::attr::kChannelNumber, std::uint32_t{kChannel} << 16);
      builder.addXorAddress(stun::attr::kXorPeerAddress,
                            toEndpoint(peerAddresses_[static_cast<std::size_t>(client.peer)]));
    } else {
      builder.addUint32(stun::attr::kLifetime, 0);
    }
    if (client.step != Step::AllocateAnon) {
      builder.addText(stun::attr::kUsername, options_.username)
          .addText(stun::attr::kRealm, client.realm)
          .addText(stun::attr::kNonce, client.nonce)
          .addMessageIntegrity(key_);
    }
    const auto bytes = builder.finish();
    if (!bytes) die("cannot build a request");
    ++client.tries;
    client.sentAt = now;
    ++setup_.requests;
    if (client.tries > 1) ++setup_.retransmissions;
    if (::send(client.fd, bytes->data(), bytes->size(), 0) < 0) {
      // ENOBUFS and the like: the retransmission timer tries again.
    }
  }

  // Keeps inFlight_ (clients in a set-up transaction) current.
  void setStep(Client& client, Step step) {
    inFlight_ +=
        static_cast<std::size_t>(inSetup(step)) - static_cast<std::size_t>(inSetup(client.step));
    client.step = step;
  }

  void fail(Client& client, int code, std::string what) {
    setStep(client, Step::Failed);
    ++setup_.failed;
    setup_.lastErrorCode = code;
    setup_.lastError = std::move(what);
  }

  void failRemaining(const char* what) {
    for (Client& client : clients_) {
      if (inSetup(client.step)) fail(client, 0, what);
    }
  }

  static bool inSetup(Step step) {
    return step == Step::AllocateAnon || step == Step::Allocate || step == Step::ChannelBind ||
           step == Step::Refresh;
  }

  // One round of the set-up loop: reads responses, retransmits; returns clients in flight.
  std::size_t pumpSetup(std::uint64_t now, std::uint64_t deadline) {
    std::array<epoll_event, 64> events{};
    const int n = ::epoll_wait(epoll_, events.data(), static_cast<int>(events.size()), 10);
    for (int i = 0; i < n; ++i) {
      const std::uint32_t tag = events[static_cast<std::size_t>(i)].data.u32;
      if (tag & kPeerTag) {
        echoPeer(tag & ~kPeerTag);  // nothing should arrive during set-up; keep it drained
        continue;
      }
      readSetup(clients_[tag]);
    }
    if (now >= nextRtoScan_) {
      nextRtoScan_ = now + 20'000'000;
      const std::uint64_t t = nowNs();
      for (Client& client : clients_) {
        if (!inSetup(client.step) || t - client.sentAt < kRtoNs) continue;
        if (client.tries >= kMaxTries || t >= deadline) {
          fail(client, 0, "no response");
        } else {
          transmit(client, t);
        }
      }
    }
    return inFlight_;
  }

  void readSetup(Client& client) {
    while (true) {
      const ssize_t n =
          ::recv(client.fd, recvBuffers_[0].data(), recvBuffers_[0].size(), MSG_DONTWAIT);
      if (n <= 0) return;
      onSetupResponse(client, stun::Bytes(recvBuffers_[0].data(), static_cast<std::size_t>(n)));
    }
  }

  void onSetupResponse(Client& client, stun::Bytes bytes) {
    const auto message = stun::Message::parse(bytes);
    if (!message || !inSetup(client.step) ||
        !std::equal(client.transaction.begin(), client.transaction.end(),
                    message->transactionId().begin())) {
      ++setup_.strays;
      return;
    }
    const std::uint64_t now = nowNs();
    if (message->messageClass() == stun::MessageClass::ErrorResponse) {
      int code = 0;
      std::string reason;
      if (const auto attribute = message->find(stun::attr::kErrorCode)) {
        if (const auto value = stun::decodeErrorCode(*attribute)) {
          code = value->code;
          reason = std::string(value->reason);
        }
      }
      const bool challenge =
          code == stun::error::kUnauthenticated && client.step == Step::AllocateAnon;
      if (challenge || code == stun::error::kStaleNonce) {
        const auto nonce = message->find(stun::attr::kNonce);
        const auto realm = message->find(stun::attr::kRealm);
        if (!nonce) return fail(client, code, "challenge without NONCE");
        client.nonce = std::string(stun::decodeText(*nonce).value_or(""));
        if (realm) client.realm = std::string(stun::decodeText(*realm).value_or(""));
        if (challenge) {
          ++setup_.challenges;
          return send(client, Step::Allocate, now);
        }
        ++setup_.stale;
        if (++client.staleRetries > 3) return fail(client, code, "438 over and over");
        return send(client, client.step, now);
      }
      return fail(client, code, "error " + std::to_string(code) + " " + reason);
    }
    if (message->messageClass() != stun::MessageClass::SuccessResponse) {
      ++setup_.strays;
      return;
    }
    if (client.step != Step::AllocateAnon &&
        stun::checkMessageIntegrity(*message, key_) != stun::Check::Valid) {
      ++setup_.badIntegrity;
      return fail(client, 0, "response without valid MESSAGE-INTEGRITY");
    }
    switch (client.step) {
      case Step::AllocateAnon:
        return fail(client, 0, "Allocate succeeded without credentials");
      case Step::Allocate: {
        const auto attribute = message->find(stun::attr::kXorRelayedAddress);
        if (!attribute) return fail(client, 0, "Allocate success without XOR-RELAYED-ADDRESS");
        const auto relayed = message->decodeXorAddress(*attribute);
        if (!relayed || !relayed->address.isV4()) {
          return fail(client, 0, "Allocate success without an IPv4 XOR-RELAYED-ADDRESS");
        }
        client.relay.sin_family = AF_INET;
        client.relay.sin_port = htons(relayed->port);
        std::memcpy(&client.relay.sin_addr, relayed->address.bytes().data(), 4);
        ++setup_.allocated;
        if (cycling_) return send(client, Step::Refresh, now);
        if (bind_) return send(client, Step::ChannelBind, now);
        setStep(client, Step::Ready);
        return;
      }
      case Step::ChannelBind:
        ++setup_.bound;
        setStep(client, Step::Ready);
        return;
      case Step::Refresh:
        ++setup_.deleted;
        if (!cycling_) {
          setStep(client, Step::Done);
          return;
        }
        ++cyclesCompleted_;
        setup_.cycle.add(now - client.cycleStart);
        if (cyclesStarted_ < cyclesWanted_) {
          ++cyclesStarted_;
          openClientSocket(static_cast<std::uint32_t>(&client - clients_.data()));
          return begin(client, nowNs());
        }
        setStep(client, Step::Done);
        return;
      default:
        return;
    }
  }

  // ---- relay data path ----

  void sendChannelData(std::size_t clientIndex, std::size_t count, std::uint64_t now) {
    const Client& client = clients_[clientIndex];
    const std::size_t length = kChannelDataHeader + options_.size;
    const auto index = static_cast<std::uint32_t>(clientIndex);
    for (std::size_t i = 0; i < count; ++i) {
      std::uint8_t* p = sendBuffers_[i].data();
      const std::uint64_t seq = nextSeq_ + i;
      p[0] = static_cast<std::uint8_t>(kChannel >> 8);
      p[1] = static_cast<std::uint8_t>(kChannel & 0xff);
      p[2] = static_cast<std::uint8_t>(options_.size >> 8);
      p[3] = static_cast<std::uint8_t>(options_.size & 0xff);
      std::memcpy(p + 4, &runTag_, 4);
      std::memcpy(p + 8, &index, 4);
      std::memcpy(p + 12, &seq, 8);
      std::memcpy(p + 20, &now, 8);
      sendIov_[i].iov_len = length;
      sendMsgs_[i].msg_hdr = msghdr{};
      sendMsgs_[i].msg_hdr.msg_iov = &sendIov_[i];
      sendMsgs_[i].msg_hdr.msg_iovlen = 1;
    }
    const int n = ::sendmmsg(client.fd, sendMsgs_.data(), static_cast<unsigned>(count), 0);
    if (n <= 0) {
      ++relayStats_.sendErrors;
      return;
    }
    for (int i = 0; i < n; ++i) {
      const std::uint64_t seq = nextSeq_++;
      Slot& slot = slots_[seq & (kRingSize - 1)];
      if (slot.seq != kEmpty) {
        ++relayStats_.timedOut;
        --outstanding_;
      }
      slot = Slot{seq, now};
      ++outstanding_;
    }
    relayStats_.sent += static_cast<std::uint64_t>(n);
  }

  // Waits up to `waitNs` (0: just looks) and drains whatever is readable.
  bool pollRelay(std::uint64_t waitNs) {
    std::array<epoll_event, 64> events{};
    const timespec timeout{static_cast<time_t>(waitNs / 1'000'000'000u),
                           static_cast<long>(waitNs % 1'000'000'000u)};
    const int n =
        ::epoll_pwait2(epoll_, events.data(), static_cast<int>(events.size()), &timeout, nullptr);
    for (int i = 0; i < n; ++i) {
      const std::uint32_t tag = events[static_cast<std::size_t>(i)].data.u32;
      if (tag & kPeerTag) {
        echoPeer(tag & ~kPeerTag);
      } else {
        readChannelData(tag);
      }
    }
    return n > 0;
  }

  // Echoes every datagram on peer sink `p` back to where it came from (the relay address).
  void echoPeer(std::uint32_t p) {
    const int fd = peerFds_[p];
    for (int round = 0; round < 16; ++round) {
      for (std::size_t i = 0; i < kBatch; ++i) {
        recvMsgs_[i].msg_hdr = msghdr{};
        recvMsgs_[i].msg_hdr.msg_name = &peerNames_[i];
        recvMsgs_[i].msg_hdr.msg_namelen = sizeof(sockaddr_in);
        recvMsgs_[i].msg_hdr.msg_iov = &recvIov_[i];
        recvMsgs_[i].msg_hdr.msg_iovlen = 1;
      }
      const int n = ::recvmmsg(fd, recvMsgs_.data(), kBatch, MSG_DONTWAIT, nullptr);
      if (n <= 0) return;
      relayStats_.peerReceived += static_cast<std::uint64_t>(n);
      std::size_t out = 0;
      for (int i = 0; i < n; ++i) {
        const auto length = static_cast<std::size_t>(recvMsgs_[i].msg_len);
        // The datagram must come from the relay address of the allocation that sent it.
        std::uint32_t tag = 0;
        std::uint32_t index = 0;
        if (length >= kPayloadHeader) {
          std::memcpy(&tag, recvBuffers_[i].data(), 4);
          std::memcpy(&index, recvBuffers_[i].data() + 4, 4);
        }
        if (length != options_.size || tag != runTag_ || index >= clients_.size() ||
            !sameAddress(clients_[index].relay, peerNames_[i])) {
          ++relayStats_.peerInvalid;
          continue;
        }
        echoIov_[out] = {recvBuffers_[i].data(), length};
        echoMsgs_[out].msg_hdr = msghdr{};
        echoMsgs_[out].msg_hdr.msg_name = &peerNames_[i];
        echoMsgs_[out].msg_hdr.msg_namelen = sizeof(sockaddr_in);
        echoMsgs_[out].msg_hdr.msg_iov = &echoIov_[out];
        echoMsgs_[out].msg_hdr.msg_iovlen = 1;
        ++out;
      }
      std::size_t done = 0;
      while (done < out) {
        const int sent =
            ::sendmmsg(fd, echoMsgs_.data() + done, static_cast<unsigned>(out - done), 0);
        if (sent <= 0) {
          relayStats_.echoErrors += out - done;
          break;
        }
        done += static_cast<std::size_t>(sent);
      }
      if (static_cast<std::size_t>(n) < kBatch) return;
    }
  }

  void readChannelData(std::uint32_t clientIndex) {
    const int fd = clients_[clientIndex].fd;
    for (int round = 0; round < 16; ++round) {
      for (std::size_t i = 0; i < kBatch; ++i) {
        recvMsgs_[i].msg_hdr = msghdr{};
        recvMsgs_[i].msg_hdr.msg_iov = &recvIov_[i];
        recvMsgs_[i].msg_hdr.msg_iovlen = 1;
      }
      const int n = ::recvmmsg(fd, recvMsgs_.data(), kBatch, MSG_DONTWAIT, nullptr);
      if (n <= 0) return;
      const std::uint64_t now = nowNs();
      for (int i = 0; i < n; ++i) {
        onChannelData(clientIndex, recvBuffers_[i].data(), recvMsgs_[i].msg_len, now);
      }
      if (static_cast<std::size_t>(n) < kBatch) return;
    }
  }

  void onChannelData(std::uint32_t clientIndex, const std::uint8_t* p, std::size_t length,
                     std::uint64_t now) {
    // ChannelData over UDP: channel, length, payload; a server may pad to 4 bytes.
    if (length < kChannelDataHeader + kPayloadHeader ||
        (static_cast<unsigned>(p[0] << 8 | p[1])) != kChannel ||
        (static_cast<std::size_t>(p[2] << 8 | p[3])) != options_.size ||
        length < kChannelDataHeader + options_.size) {
      ++relayStats_.invalid;
      return;
    }
    std::uint32_t tag = 0;
    std::uint32_t index = 0;
    std::uint64_t seq = 0;
    std::memcpy(&tag, p + 4, 4);
    std::memcpy(&index, p + 8, 4);
    std::memcpy(&seq, p + 12, 8);
    if (tag != runTag_ || index != clientIndex) {
      ++relayStats_.invalid;
      return;
    }
    if (seq >= nextSeq_) {
      ++relayStats_.unmatched;
      return;
    }
    Slot& slot = slots_[seq & (kRingSize - 1)];
    if (slot.seq != seq) {
      ++relayStats_.unmatched;
      return;
    }
    slot.seq = kEmpty;
    --outstanding_;
    ++relayStats_.received;
    relayStats_.rtt.add(now - slot.sentNs);
  }

  void expire(std::uint64_t now, std::uint64_t timeoutNs) {
    while (oldest_ < nextSeq_) {
      Slot& slot = slots_[oldest_ & (kRingSize - 1)];
      if (slot.seq == oldest_) {
        if (now - slot.sentNs < timeoutNs) break;
        slot.seq = kEmpty;
        --outstanding_;
        ++relayStats_.timedOut;
      }
      ++oldest_;
    }
  }

  const Options& options_;
  int epoll_;
  std::vector<Client> clients_;
  std::vector<int> peerFds_;
  std::vector<sockaddr_in> peerAddresses_;
  std::vector<std::uint8_t> key_;
  std::minstd_rand rng_{std::random_device{}()};
  std::uint32_t runTag_ = 0;
  // Source addresses 127.x.y.z from a random start, at least 127.2.0.0 and never wrapping into
  // 127.0.0.0/16 or 127.255.255.255 for any bounded run.
  std::uint32_t addressBase_ = 0x020000u + std::random_device{}() % 0xC00000u;
  std::uint32_t addressCount_ = 0;
  bool bigBuffers_ = false;
  bool bind_ = true;
  bool cycling_ = false;
  std::uint64_t cyclesWanted_ = 0;
  std::uint64_t cyclesStarted_ = 0;
  std::uint64_t cyclesCompleted_ = 0;
  std::uint64_t nextRtoScan_ = 0;
  std::size_t inFlight_ = 0;
  SetupStats setup_;

  std::vector<std::size_t> ready_;
  std::vector<Slot> slots_;
  std::uint64_t nextSeq_ = 0;
  std::uint64_t oldest_ = 0;
  std::uint64_t outstanding_ = 0;
  std::uint64_t start_ = 0;
  std::uint64_t sendEndedAt_ = 0;
  std::uint64_t finishedAt_ = 0;
  RelayStats relayStats_;

  std::array<std::uint8_t, 512> requestBuffer_{};
  std::array<std::array<std::uint8_t, kMaxDatagram>, kBatch> sendBuffers_{};
  std::array<std::array<std::uint8_t, kMaxDatagram>, kBatch> recvBuffers_{};
  std::array<sockaddr_in, kBatch> peerNames_{};
  std::array<iovec, kBatch> sendIov_{};
  std::array<iovec, kBatch> recvIov_{};
  std::array<iovec, kBatch> echoIov_{};
  std::array<mmsghdr, kBatch> sendMsgs_{};
  std::array<mmsghdr, kBatch> recvMsgs_{};
  std::array<mmsghdr, kBatch> echoMsgs_{};
};

// ---- reports ----------------------------------------------------------------------------------

std::string setupJson(const SetupStats& s) {
  char text[512];
  std::snprintf(text, sizeof text,
                "\"requests\":%llu,\"retransmissions\":%llu,\"challenges\":%llu,\"stale_nonces\":"
                "%llu,\"failed\":%llu,\"bad_integrity\":%llu,\"strays\":%llu,\"last_error\":\"%s\"",
                static_cast<unsigned long long>(s.requests),
                static_cast<unsigned long long>(s.retransmissions),
                static_cast<unsigned long long>(s.challenges),
                static_cast<unsigned long long>(s.stale), static_cast<unsigned long long>(s.failed),
                static_cast<unsigned long long>(s.badIntegrity),
                static_cast<unsigned long long>(s.strays), s.lastError.c_str());
  return text;
}

// Server CPU over the measured phase, and for judging the measurement: the generator's own
// CPU and everything the host's CPUs did (other processes show as host - server - self).
std::string serverJson(const ServerSample& before, const ServerSample& after) {
  char text[320];
  std::snprintf(text, sizeof text,
                "\"server_cpu_ticks\":%llu,\"server_cpu_ns\":%llu,\"server_rss_kb\":%llu,"
                "\"server_hwm_kb\":%llu,\"load_cpu_ticks\":%llu,\"host_cpu_ticks\":%llu",
                static_cast<unsigned long long>(after.ticks - before.ticks),
                static_cast<unsigned long long>(after.schedNs - before.schedNs),
                static_cast<unsigned long long>(after.rssKb),
                static_cast<unsigned long long>(after.hwmKb),
                static_cast<unsigned long long>(after.selfTicks - before.selfTicks),
                static_cast<unsigned long long>(after.hostTicks - before.hostTicks));
  return text;
}

void fail(const SetupStats& s, const char* what) {
  std::fprintf(stderr, "turn_load: %s: %llu failed, last error: %s\n", what,
               static_cast<unsigned long long>(s.failed), s.lastError.c_str());
}

int runRelay(const Options& options) {
  TurnLoad load(options);
  load.openPeers();
  load.openClients(options.allocations, true);
  const std::uint64_t setupStart = nowNs();
  load.allocateAll(true, setupStart + static_cast<std::uint64_t>(options.setupTimeout * 1e9));
  const double setupSeconds = seconds(nowNs() - setupStart);
  const std::size_t ready = load.readyCount();
  if (load.setupStats().failed > 0) fail(load.setupStats(), "set-up");

  const ServerSample before = sampleServer(options.serverPid);
  const RelayStats& stats = load.relay();
  const ServerSample after = sampleServer(options.serverPid);
  load.releaseAll(nowNs() + 10'000'000'000u);

  const double sendSeconds = load.sendSeconds();
  const std::uint64_t lost = stats.sent - std::min(stats.sent, stats.received);
  const std::uint64_t relayed = stats.peerReceived + stats.received;
  auto perSecond = [&](std::uint64_t n) {
    return sendSeconds > 0 ? static_cast<double>(n) / sendSeconds : 0.0;
  };
  const double mbit = static_cast<double>(options.size) * 8 / 1e6;
  const double lossPercent =
      stats.sent > 0 ? 100.0 * static_cast<double>(lost) / static_cast<double>(stats.sent) : 0;
  if (!options.quiet) {
    std::printf("server %s, %zu allocations (%.2f s to set up), payload %zu bytes, %s\n",
                options.serverText.c_str(), ready, setupSeconds, options.size,
                options.rate > 0
                    ? ("paced " + std::to_string(std::llround(options.rate)) + " pkt/s").c_str()
                    : ("unpaced, window " + std::to_string(options.window)).c_str());
    std::printf("sent       %llu (%.0f pkt/s, %.1f Mbit/s)\n",
                static_cast<unsigned long long>(stats.sent), perSecond(stats.sent),
                perSecond(stats.sent) * mbit);
    std::printf("at peers   %llu, echoed back\n",
                static_cast<unsigned long long>(stats.peerReceived));
    std::printf("received   %llu (%.0f pkt/s, %.1f Mbit/s)\n",
                static_cast<unsigned long long>(stats.received), perSecond(stats.received),
                perSecond(stats.received) * mbit);
    std::printf("relayed    %.0f pkt/s (both directions)\n", perSecond(relayed));
    std::printf("lost       %llu (%.3f%%), invalid %llu, unmatched %llu, peer invalid %llu\n",
                static_cast<unsigned long long>(lost), lossPercent,
                static_cast<unsigned long long>(stats.invalid),
                static_cast<unsigned long long>(stats.unmatched),
                static_cast<unsigned long long>(stats.peerInvalid));
    std::printf("rtt        p50 %.1f us, p99 %.1f us, p99.9 %.1f us\n", stats.rtt.quantileUs(0.5),
                stats.rtt.quantileUs(0.99), stats.rtt.quantileUs(0.999));
  }
  std::printf(
      "{\"mode\":\"relay\",\"server\":\"%s\",\"allocations\":%zu,\"peers\":%d,\"size\":%zu,"
      "\"rate\":%.0f,\"window\":%llu,\"setup_seconds\":%.3f,\"send_seconds\":%.3f,"
      "\"total_seconds\":%.3f,\"sent\":%llu,\"peer_received\":%llu,\"received\":%llu,"
      "\"relayed\":%llu,\"lost\":%llu,\"loss_percent\":%.4f,\"lost_to_peer\":%llu,"
      "\"invalid\":%llu,\"unmatched\":%llu,\"peer_invalid\":%llu,\"send_errors\":%llu,"
      "\"echo_errors\":%llu,\"sent_rate\":%.0f,\"received_rate\":%.0f,\"relayed_rate\":%.0f,"
      "\"sent_mbps\":%.1f,\"received_mbps\":%.1f,\"rtt_p50_us\":%.1f,\"rtt_p99_us\":%.1f,"
      "\"rtt_p999_us\":%.1f,%s,%s}\n",
      options.serverText.c_str(), ready, options.peers, options.size, options.rate,
      static_cast<unsigned long long>(options.window), setupSeconds, sendSeconds,
      load.totalSeconds(), static_cast<unsigned long long>(stats.sent),
      static_cast<unsigned long long>(stats.peerReceived),
      static_cast<unsigned long long>(stats.received), static_cast<unsigned long long>(relayed),
      static_cast<unsigned long long>(lost), lossPercent,
      static_cast<unsigned long long>(stats.sent - std::min(stats.sent, stats.peerReceived)),
      static_cast<unsigned long long>(stats.invalid),
      static_cast<unsigned long long>(stats.unmatched),
      static_cast<unsigned long long>(stats.peerInvalid),
      static_cast<unsigned long long>(stats.sendErrors),
      static_cast<unsigned long long>(stats.echoErrors), perSecond(stats.sent),
      perSecond(stats.received), perSecond(relayed), perSecond(stats.sent) * mbit,
      perSecond(stats.received) * mbit, stats.rtt.quantileUs(0.5), stats.rtt.quantileUs(0.99),
      stats.rtt.quantileUs(0.999), setupJson(load.setupStats()).c_str(),
      serverJson(before, after).c_str());
  return ready > 0 && stats.received > 0 ? 0 : 1;
}

int runAllocs(const Options& options) {
  TurnLoad load(options);
  load.openClients(options.sockets, false);
  const ServerSample before = sampleServer(options.serverPid);
  const double elapsed = load.cycleAllocations(
      options.count, nowNs() + static_cast<std::uint64_t>(options.duration * 1e9));
  const ServerSample after = sampleServer(options.serverPid);
  const SetupStats& s = load.setupStats();
  if (s.failed > 0) fail(s, "allocs");
  const std::uint64_t done = load.cyclesCompleted();
  const double rate = elapsed > 0 ? static_cast<double>(done) / elapsed : 0;
  if (!options.quiet) {
    std::printf("server %s, %d sockets: %llu allocate+delete cycles in %.3f s = %.0f/s\n",
                options.serverText.c_str(), options.sockets, static_cast<unsigned long long>(done),
                elapsed, rate);
    std::printf("cycle time p50 %.1f us, p99 %.1f us; %llu failed\n", s.cycle.quantileUs(0.5),
                s.cycle.quantileUs(0.99), static_cast<unsigned long long>(s.failed));
  }
  std::printf(
      "{\"mode\":\"allocs\",\"server\":\"%s\",\"sockets\":%d,\"count\":%llu,\"completed\":%llu,"
      "\"seconds\":%.3f,\"allocs_per_s\":%.0f,\"cycle_p50_us\":%.1f,\"cycle_p99_us\":%.1f,%s,%s}"
      "\n",
      options.serverText.c_str(), options.sockets, static_cast<unsigned long long>(options.count),
      static_cast<unsigned long long>(done), elapsed, rate, s.cycle.quantileUs(0.5),
      s.cycle.quantileUs(0.99), setupJson(s).c_str(), serverJson(before, after).c_str());
  return done == options.count && s.failed == 0 ? 0 : 1;
}

int runIdle(const Options& options) {
  TurnLoad load(options);
  load.openPeers();
  load.openClients(options.allocations, false);
  // Let the server settle (lazy buffers of a fresh process) before the baseline.
  ::usleep(200'000);
  const ServerSample baseline = sampleServer(options.serverPid);
  const std::uint64_t setupStart = nowNs();
  load.allocateAll(true, setupStart + static_cast<std::uint64_t>(options.setupTimeout * 1e9));
  const double setupSeconds = seconds(nowNs() - setupStart);
  if (load.setupStats().failed > 0) fail(load.setupStats(), "set-up");
  const std::size_t ready = load.readyCount();
  ::usleep(200'000);
  const ServerSample held = sampleServer(options.serverPid);
  ::usleep(static_cast<useconds_t>(options.hold * 1e6));
  const ServerSample afterHold = sampleServer(options.serverPid);
  const std::uint64_t releaseStart = nowNs();
  load.releaseAll(releaseStart + 30'000'000'000u);
  const double releaseSeconds = seconds(nowNs() - releaseStart);
  const double deltaKb = static_cast<double>(held.rssKb) - static_cast<double>(baseline.rssKb);
  const double per1000 = ready > 0 ? deltaKb / static_cast<double>(ready) * 1000 : 0;
  if (!options.quiet) {
    std::printf(
        "server %s: %zu idle allocations in %.2f s; RSS %llu -> %llu KiB, %.0f KiB per "
        "1000 allocations\n",
        options.serverText.c_str(), ready, setupSeconds,
        static_cast<unsigned long long>(baseline.rssKb),
        static_cast<unsigned long long>(held.rssKb), per1000);
  }
  std::printf(
      "{\"mode\":\"idle\",\"server\":\"%s\",\"allocations\":%d,\"ready\":%zu,"
      "\"setup_seconds\":%.3f,\"setup_allocs_per_s\":%.0f,\"rss_before_kb\":%llu,"
      "\"rss_after_kb\":%llu,\"rss_delta_kb\":%.0f,\"rss_per_1000_kb\":%.1f,\"hold_seconds\":%.3f,"
      "\"hold_cpu_ticks\":%llu,\"hold_cpu_ns\":%llu,\"release_seconds\":%.3f,%s}\n",
      options.serverText.c_str(), options.allocations, ready, setupSeconds,
      setupSeconds > 0 ? static_cast<double>(ready) / setupSeconds : 0,
      static_cast<unsigned long long>(baseline.rssKb), static_cast<unsigned long long>(held.rssKb),
      deltaKb, per1000, options.hold, static_cast<unsigned long long>(afterHold.ticks - held.ticks),
      static_cast<unsigned long long>(afterHold.schedNs - held.schedNs), releaseSeconds,
      setupJson(load.setupStats()).c_str());
  return ready == static_cast<std::size_t>(options.allocations) ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  const Options options = parseOptions(argc, argv);
  // Whatever happens, this process ends: the longest legitimate run is set-up + duration +
  // hold + release, all bounded above.
  ::alarm(static_cast<unsigned>(options.setupTimeout + options.duration + options.hold + 60));
  std::signal(SIGPIPE, SIG_IGN);
  switch (options.mode) {
    case Mode::Relay:
      return runRelay(options);
    case Mode::Allocs:
      return runAllocs(options);
    case Mode::Idle:
      return runIdle(options);
  }
  return 2;
}
