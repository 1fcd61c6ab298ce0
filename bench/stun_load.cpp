// stun_load: a STUN Binding load generator over UDP for benchmarking `parley turn` and others.
//
// Sends RFC 8489 Binding requests (with FINGERPRINT) from several client sockets, either paced
// at a fixed rate or as fast as a window of outstanding requests allows, matches responses by
// transaction ID and reports loss and round-trip times. The last line of output is one JSON
// object so scripts need not scrape the human-readable lines.
//
// Always bounded: sending stops after --duration seconds (at most 120) or --max-requests,
// then responses are awaited for at most --timeout-ms.

#include <algorithm>
#include <array>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <parley/stun/builder.hpp>
#include <parley/stun/message.hpp>

#include "load_common.hpp"

namespace {

namespace stun = parley::stun;
using parley::bench::die;
using parley::bench::Histogram;
using parley::bench::nowNs;
using parley::bench::parseDouble;
using parley::bench::parseNumber;

constexpr std::size_t kBatch = 64;
constexpr std::size_t kMaxDatagram = 2048;
constexpr double kMaxDurationSeconds = 120.0;
// Outstanding requests live in a ring indexed by sequence number. 4 Mi slots hold more than
// a second of traffic at any rate a loopback test reaches, so a slot is only reused after its
// request has timed out.
constexpr std::uint64_t kRingSize = std::uint64_t{1} << 22;
constexpr std::uint64_t kEmpty = ~std::uint64_t{0};
constexpr int kSocketBufferBytes = 4 << 20;

struct Options {
  sockaddr_in server{};
  std::string serverText = "127.0.0.1:3478";
  double rate = 0;  // requests/s; 0 = unpaced, limited by `window`
  double duration = 10;
  std::uint64_t maxRequests = 0;  // 0 = only the duration bounds the run
  std::uint64_t window = 256;
  int sockets = 1;
  int timeoutMs = 1000;
  bool quiet = false;
};

void usage() {
  std::fprintf(stderr,
               "usage: stun_load [--server IP:PORT] [--rate N] [--duration S] [--max-requests N]\n"
               "                 [--window N] [--sockets N] [--timeout-ms MS] [--quiet]\n"
               "  --server        IPv4 server address (default 127.0.0.1:3478)\n"
               "  --rate          requests/s, paced; 0 = as fast as the window allows (default 0)\n"
               "  --duration      seconds of sending, 0 < S <= 120 (default 10)\n"
               "  --max-requests  stop sending after N requests (default: no limit)\n"
               "  --window        max outstanding requests in unpaced mode (default 256)\n"
               "  --sockets       client sockets, each with its own source port (default 1)\n"
               "  --timeout-ms    a request unanswered this long counts as lost (default 1000)\n"
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
    if (arg == "--server") {
      options.serverText = std::string(value);
    } else if (arg == "--rate") {
      options.rate = parseDouble(arg, value);
    } else if (arg == "--duration") {
      options.duration = parseDouble(arg, value);
    } else if (arg == "--max-requests") {
      options.maxRequests = parseNumber<std::uint64_t>(arg, value);
    } else if (arg == "--window") {
      options.window = parseNumber<std::uint64_t>(arg, value);
    } else if (arg == "--sockets") {
      options.sockets = parseNumber<int>(arg, value);
    } else if (arg == "--timeout-ms") {
      options.timeoutMs = parseNumber<int>(arg, value);
    } else {
      usage();
      die("unknown option " + std::string(arg));
    }
  }
  if (options.rate < 0) die("--rate must be >= 0");
  if (!(options.duration > 0 && options.duration <= kMaxDurationSeconds)) {
    die("--duration must be in (0, 120]");
  }
  if (options.window < 1 || options.window > kRingSize / 2) die("--window out of range");
  if (options.sockets < 1 || options.sockets > 1024) die("--sockets must be in [1, 1024]");
  if (options.timeoutMs < 1 || options.timeoutMs > 10'000)
    die("--timeout-ms must be in [1, 10000]");

  options.server = parley::bench::parseServer(options.serverText);
  return options;
}

struct Stats {
  std::uint64_t sent = 0;
  std::uint64_t received = 0;   // valid Binding success responses matching a live request
  std::uint64_t invalid = 0;    // not a Binding success with a correct XOR-MAPPED-ADDRESS
  std::uint64_t unmatched = 0;  // late (already counted lost), duplicate or unknown ID
  std::uint64_t sendErrors = 0;
  std::uint64_t timedOut = 0;
  Histogram rtt;
};

struct ClientSocket {
  int fd = -1;
  std::uint16_t localPort = 0;  // network order, as XOR-MAPPED-ADDRESS must reflect it
};

class LoadGenerator {
 public:
  explicit LoadGenerator(const Options& options) : options_(options), slots_(kRingSize) {
    std::random_device device;
    runTag_ = device();
    for (int i = 0; i < options_.sockets; ++i)
      sockets_.push_back(openSocket());
    polls_.resize(sockets_.size());
    for (std::size_t i = 0; i < sockets_.size(); ++i)
      polls_[i] = pollfd{sockets_[i].fd, POLLIN, 0};
    for (std::size_t i = 0; i < kBatch; ++i) {
      recvIov_[i] = {recvBuffers_[i].data(), recvBuffers_[i].size()};
      sendIov_[i] = {sendBuffers_[i].data(), 0};
    }
  }

  ~LoadGenerator() {
    for (const ClientSocket& socket : sockets_)
      ::close(socket.fd);
  }

  const Stats& run() {
    const std::uint64_t timeoutNs = static_cast<std::uint64_t>(options_.timeoutMs) * 1'000'000u;
    start_ = nowNs();
    const std::uint64_t sendEnd = start_ + static_cast<std::uint64_t>(options_.duration * 1e9);
    const double nsPerRequest = options_.rate > 0 ? 1e9 / options_.rate : 0;
    std::size_t nextSocket = 0;

    // Sending phase.
    while (true) {
      const std::uint64_t now = nowNs();
      if (now >= sendEnd) break;
      if (options_.maxRequests != 0 && stats_.sent >= options_.maxRequests) break;
      expire(now, timeoutNs);

      std::uint64_t due;
      if (options_.rate > 0) {
        // Paced: the schedule is absolute, so a late wake-up sends a catch-up burst rather
        // than silently lowering the offered rate; the report shows if we fell behind.
        const auto scheduled =
            static_cast<std::uint64_t>(static_cast<double>(now - start_) / nsPerRequest) + 1;
        due = scheduled > stats_.sent ? scheduled - stats_.sent : 0;
      } else {
        due = outstanding_ < options_.window ? options_.window - outstanding_ : 0;
      }
      if (options_.maxRequests != 0) due = std::min(due, options_.maxRequests - stats_.sent);
      due = std::min<std::uint64_t>(due, kBatch);
      if (due > 0) {
        sendBatch(sockets_[nextSocket], static_cast<std::size_t>(due), now);
        nextSocket = (nextSocket + 1) % sockets_.size();
      }
      const bool gotAny = receiveAll();
      if (due == 0 && !gotAny) {
        // Nothing to do until a response arrives or the next request is due.
        std::uint64_t waitNs = 1'000'000;  // 1 ms keeps expiry and the deadline responsive
        if (options_.rate > 0) {
          const auto nextAt =
              start_ + static_cast<std::uint64_t>(static_cast<double>(stats_.sent) * nsPerRequest);
          waitNs = nextAt > now ? std::min(waitNs, nextAt - now) : 0;
        }
        waitReadable(waitNs);
      }
    }
    sendEndedAt_ = nowNs();

    // Drain phase: wait for stragglers, bounded by the loss timeout.
    const std::uint64_t drainEnd = sendEndedAt_ + timeoutNs;
    while (outstanding_ > 0) {
      const std::uint64_t now = nowNs();
      if (now >= drainEnd) break;
      expire(now, timeoutNs);
      if (!receiveAll()) waitReadable(std::min<std::uint64_t>(drainEnd - now, 1'000'000));
    }
    // Whatever is still outstanding is lost.
    stats_.timedOut += outstanding_;
    outstanding_ = 0;
    finishedAt_ = nowNs();
    return stats_;
  }

  double sendSeconds() const { return static_cast<double>(sendEndedAt_ - start_) / 1e9; }
  double totalSeconds() const { return static_cast<double>(finishedAt_ - start_) / 1e9; }

 private:
  struct Slot {
    std::uint64_t seq = kEmpty;
    std::uint64_t sentNs = 0;
  };

  ClientSocket openSocket() {
    const int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) die(std::string("socket: ") + std::strerror(errno));
    // Large buffers so a burst of responses is not dropped by our own socket before we read
    // it: loss should reflect the server, not the client.
    if (::setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &kSocketBufferBytes, sizeof(int)) != 0) {
      ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &kSocketBufferBytes, sizeof(int));
    }
    if (::setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &kSocketBufferBytes, sizeof(int)) != 0) {
      ::setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &kSocketBufferBytes, sizeof(int));
    }
    // connect() fixes the peer, so the kernel filters foreign datagrams and picks an
    // ephemeral source port: each socket is a distinct 4-tuple for SO_REUSEPORT hashing.
    if (::connect(fd, reinterpret_cast<const sockaddr*>(&options_.server),
                  sizeof(options_.server)) != 0) {
      die(std::string("connect: ") + std::strerror(errno));
    }
    sockaddr_in local{};
    socklen_t length = sizeof(local);
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&local), &length);
    return ClientSocket{fd, local.sin_port};
  }

  // Transaction ID: 4 bytes identifying this run, then the 64-bit sequence number.
  void makeTransactionId(std::uint64_t seq, std::array<std::uint8_t, 12>& id) const {
    std::memcpy(id.data(), &runTag_, 4);
    std::memcpy(id.data() + 4, &seq, 8);
  }

  void sendBatch(const ClientSocket& socket, std::size_t count, std::uint64_t now) {
    std::array<std::uint8_t, 12> id{};
    for (std::size_t i = 0; i < count; ++i) {
      const std::uint64_t seq = nextSeq_ + i;
      makeTransactionId(seq, id);
      stun::MessageBuilder builder(
          sendBuffers_[i], stun::messageType(stun::method::kBinding, stun::MessageClass::Request),
          id);
      builder.addFingerprint();
      const auto bytes = builder.finish();
      if (!bytes) die("cannot build a Binding request");
      sendIov_[i].iov_len = bytes->size();
      sendMsgs_[i].msg_hdr = msghdr{};
      sendMsgs_[i].msg_hdr.msg_iov = &sendIov_[i];
      sendMsgs_[i].msg_hdr.msg_iovlen = 1;
    }
    const int n = ::sendmmsg(socket.fd, sendMsgs_.data(), static_cast<unsigned>(count), 0);
    if (n <= 0) {
      // ENOBUFS/EAGAIN: our own send path is full. Nothing left; the pacer retries.
      ++stats_.sendErrors;
      return;
    }
    for (int i = 0; i < n; ++i) {
      const std::uint64_t seq = nextSeq_++;
      Slot& slot = slots_[seq & (kRingSize - 1)];
      if (slot.seq != kEmpty) {
        // The ring wrapped onto a request still outstanding: it is far past any sane
        // timeout, so count it lost rather than overwrite it silently.
        ++stats_.timedOut;
        --outstanding_;
      }
      slot = Slot{seq, now};
      ++outstanding_;
    }
    stats_.sent += static_cast<std::uint64_t>(n);
  }

  // Reads every socket until it would block (bounded per call); true if anything arrived.
  bool receiveAll() {
    bool any = false;
    for (const ClientSocket& socket : sockets_) {
      for (int round = 0; round < 16; ++round) {
        for (std::size_t i = 0; i < kBatch; ++i) {
          recvMsgs_[i].msg_hdr = msghdr{};
          recvMsgs_[i].msg_hdr.msg_iov = &recvIov_[i];
          recvMsgs_[i].msg_hdr.msg_iovlen = 1;
        }
        const int n = ::recvmmsg(socket.fd, recvMsgs_.data(), kBatch, MSG_DONTWAIT, nullptr);
        if (n <= 0) break;
        any = true;
        const std::uint64_t now = nowNs();
        for (int i = 0; i < n; ++i)
          onResponse(socket, stun::Bytes(recvBuffers_[i].data(), recvMsgs_[i].msg_len), now);
        if (static_cast<std::size_t>(n) < kBatch) break;
      }
    }
    return any;
  }

  void onResponse(const ClientSocket& socket, stun::Bytes bytes, std::uint64_t now) {
    const auto message = stun::Message::parse(bytes);
    if (!message || message->isClassic()) {
      ++stats_.invalid;
      return;
    }
    const auto id = message->transactionId();
    std::uint32_t tag = 0;
    std::uint64_t seq = 0;
    std::memcpy(&tag, id.data(), 4);
    std::memcpy(&seq, id.data() + 4, 8);
    if (tag != runTag_ || seq >= nextSeq_) {
      ++stats_.unmatched;
      return;
    }
    Slot& slot = slots_[seq & (kRingSize - 1)];
    if (slot.seq != seq) {
      ++stats_.unmatched;  // answered already, or counted lost before it came back
      return;
    }
    // Only a Binding success carrying our own address counts: an error or a wrong mapping
    // answered quickly would flatter the server.
    bool valid = message->type() ==
                 stun::messageType(stun::method::kBinding, stun::MessageClass::SuccessResponse);
    if (valid) {
      const auto attribute = message->find(stun::attr::kXorMappedAddress);
      valid = false;
      if (attribute) {
        const auto mapped = message->decodeXorAddress(*attribute);
        valid = mapped && mapped->address.isV4() && htons(mapped->port) == socket.localPort &&
                std::memcmp(mapped->address.bytes().data(), &options_.server.sin_addr, 4) == 0;
      }
    }
    slot.seq = kEmpty;
    --outstanding_;
    if (!valid) {
      ++stats_.invalid;
      return;
    }
    ++stats_.received;
    stats_.rtt.add(now - slot.sentNs);
  }

  // Counts requests older than the timeout as lost, oldest first, freeing window space.
  void expire(std::uint64_t now, std::uint64_t timeoutNs) {
    while (oldest_ < nextSeq_) {
      Slot& slot = slots_[oldest_ & (kRingSize - 1)];
      if (slot.seq == oldest_) {
        if (now - slot.sentNs < timeoutNs) break;
        slot.seq = kEmpty;
        --outstanding_;
        ++stats_.timedOut;
      }
      ++oldest_;
    }
  }

  void waitReadable(std::uint64_t ns) {
    if (ns == 0) return;
    const timespec timeout{static_cast<time_t>(ns / 1'000'000'000u),
                           static_cast<long>(ns % 1'000'000'000u)};
    ::ppoll(polls_.data(), polls_.size(), &timeout, nullptr);
  }

  const Options& options_;
  std::vector<ClientSocket> sockets_;
  std::vector<pollfd> polls_;
  std::vector<Slot> slots_;
  std::uint32_t runTag_ = 0;
  std::uint64_t nextSeq_ = 0;
  std::uint64_t oldest_ = 0;
  std::uint64_t outstanding_ = 0;
  std::uint64_t start_ = 0;
  std::uint64_t sendEndedAt_ = 0;
  std::uint64_t finishedAt_ = 0;
  Stats stats_;

  std::array<std::array<std::uint8_t, 64>, kBatch> sendBuffers_{};
  std::array<std::array<std::uint8_t, kMaxDatagram>, kBatch> recvBuffers_{};
  std::array<iovec, kBatch> sendIov_{};
  std::array<iovec, kBatch> recvIov_{};
  std::array<mmsghdr, kBatch> sendMsgs_{};
  std::array<mmsghdr, kBatch> recvMsgs_{};
};

}  // namespace

int main(int argc, char** argv) {
  const Options options = parseOptions(argc, argv);
  LoadGenerator generator(options);
  const Stats& stats = generator.run();

  const std::uint64_t lost = stats.sent - stats.received;
  const double sendSeconds = generator.sendSeconds();
  const double sentRate = sendSeconds > 0 ? static_cast<double>(stats.sent) / sendSeconds : 0;
  const double answeredRate =
      sendSeconds > 0 ? static_cast<double>(stats.received) / sendSeconds : 0;
  const double lossPercent =
      stats.sent > 0 ? 100.0 * static_cast<double>(lost) / static_cast<double>(stats.sent) : 0;
  const double p50 = static_cast<double>(stats.rtt.quantile(0.50)) / 1000.0;
  const double p99 = static_cast<double>(stats.rtt.quantile(0.99)) / 1000.0;
  const double p999 = static_cast<double>(stats.rtt.quantile(0.999)) / 1000.0;

  if (!options.quiet) {
    std::printf("server %s, %s, %d socket(s), %.1f s sending\n", options.serverText.c_str(),
                options.rate > 0
                    ? ("paced " + std::to_string(std::llround(options.rate)) + " req/s").c_str()
                    : ("unpaced, window " + std::to_string(options.window)).c_str(),
                options.sockets, sendSeconds);
    std::printf("sent      %llu (%.0f req/s)\n", static_cast<unsigned long long>(stats.sent),
                sentRate);
    std::printf("received  %llu (%.0f resp/s)\n", static_cast<unsigned long long>(stats.received),
                answeredRate);
    std::printf("lost      %llu (%.3f%%), invalid %llu, unmatched %llu, send errors %llu\n",
                static_cast<unsigned long long>(lost), lossPercent,
                static_cast<unsigned long long>(stats.invalid),
                static_cast<unsigned long long>(stats.unmatched),
                static_cast<unsigned long long>(stats.sendErrors));
    std::printf("rtt       p50 %.1f us, p99 %.1f us, p99.9 %.1f us\n", p50, p99, p999);
  }
  std::printf(
      "{\"server\":\"%s\",\"rate\":%.0f,\"window\":%llu,\"sockets\":%d,\"send_seconds\":%.3f,"
      "\"total_seconds\":%.3f,\"sent\":%llu,\"received\":%llu,\"lost\":%llu,\"invalid\":%llu,"
      "\"unmatched\":%llu,\"send_errors\":%llu,\"sent_rate\":%.0f,\"achieved_rate\":%.0f,"
      "\"loss_percent\":%.4f,\"rtt_p50_us\":%.1f,\"rtt_p99_us\":%.1f,\"rtt_p999_us\":%.1f}\n",
      options.serverText.c_str(), options.rate, static_cast<unsigned long long>(options.window),
      options.sockets, sendSeconds, generator.totalSeconds(),
      static_cast<unsigned long long>(stats.sent), static_cast<unsigned long long>(stats.received),
      static_cast<unsigned long long>(lost), static_cast<unsigned long long>(stats.invalid),
      static_cast<unsigned long long>(stats.unmatched),
      static_cast<unsigned long long>(stats.sendErrors), sentRate, answeredRate, lossPercent, p50,
      p99, p999);
  return stats.sent > 0 && stats.received > 0 ? 0 : 1;
}
