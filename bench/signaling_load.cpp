// signaling_load: a load generator for Parley's signaling (docs/api.md, "Signaling"), over
// WSS to `parley serve`, for the interop load test (tests/load/) and bench/signaling_bench.sh.
//
// Set-up over REST: logs in as an advisor (POST /api/v1/session: cookie parley_session and
// csrfToken), creates --rooms rooms and one multi-use invitation per room (X-CSRF-Token and
// the cookie). Then it opens one WebSocket per participant, --concurrency at a time:
//   host   cookie-authenticated, /ws?room=ID, sends join, admits every guest that appears in
//          its welcome's lobby or in a lobby-update;
//   guest  no cookie: hello with the room's invitation token and a name, then join; waits in
//          the lobby until the host admits it (welcome).
// A join lasts from the start of the TCP connect to the welcome; joins per second is joined
// clients over the time from the first connect to the last welcome.
//
// Two modes, each ending with one JSON line on stdout:
//   chat      (default) once everybody is in, every admitted participant sends chat messages
//             for --seconds at --rate per second. Each text carries the sender, a per-sender
//             sequence number and the send time; every receiver checks that each sender's
//             numbers arrive strictly increasing without gaps (the server promises per-sender
//             order to every receiver) and records the fan-out latency. After a bounded drain,
//             lost = expected deliveries - arrivals, reordered = arrivals behind an earlier one.
//             Exit 0 only if every client joined, lost == 0 and reordered == 0.
//   --idle N  N connections (rooms of 1 + --guests, the last one possibly smaller), no chat:
//             once all are welcomed the server's RSS gives the cost per idle connection;
//             held --hold seconds, then closed. Exit 0 only if all N joined.
// With --server-pid the server's VmRSS is sampled from /proc (start, peak, end).
//
// Every phase is bounded in time and every loop in count; alarm() ends the process if the
// whole run overruns its bound. All clients share one process clock, so the send time in a
// chat text is comparable with the receive time.

#include <algorithm>
#include <atomic>
#include <charconv>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <fstream>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <tuple>
#include <unordered_set>
#include <vector>

#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <sys/resource.h>
#include <unistd.h>

#include "load_common.hpp"

namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;
using json = nlohmann::json;
using asio::awaitable;
using parley::bench::die;
using parley::bench::Histogram;
using parley::bench::nowNs;
using parley::bench::parseDouble;
using parley::bench::parseNumber;
using TlsStream = beast::ssl_stream<beast::tcp_stream>;
using WsStream = websocket::stream<TlsStream>;

constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);
// REST set-up runs over this many keep-alive connections at once.
constexpr int kRestConnections = 4;
constexpr auto kIoTimeout = std::chrono::seconds(15);
// A client whose own writes back up this far is broken (the server stopped reading it).
constexpr std::size_t kMaxOutbox = 4096;
// Texts of the first errors are kept for the report; the rest are only counted.
constexpr std::size_t kKeptErrors = 5;
constexpr std::uint64_t kPollNs = 20'000'000;
constexpr std::string_view kChatTag = "load";

double seconds(std::uint64_t ns) {
  return static_cast<double>(ns) / 1e9;
}
double millis(std::uint64_t ns) {
  return static_cast<double>(ns) / 1e6;
}
std::uint64_t toNs(double secs) {
  return static_cast<std::uint64_t>(secs * 1e9);
}
void sleepNs(std::uint64_t ns) {
  std::this_thread::sleep_for(std::chrono::nanoseconds(ns));
}

// ---- options ----------------------------------------------------------------------------------

struct Options {
  tcp::endpoint server{asio::ip::make_address_v4("127.0.0.1"), 443};
  std::string serverText = "127.0.0.1:443";
  std::string hostName = "localhost";  // Host header and SNI; the Origin check wants this name
  std::string username = "load";
  std::string password;
  int rooms = 10;
  int guests = 9;  // per room, besides the host
  double trafficSeconds = 10;
  double rate = 1;  // chat messages per second per participant
  double drainSeconds = 5;
  int idle = 0;  // > 0: idle mode with this many connections
  double holdSeconds = 5;
  int serverPid = 0;
  int threads = 1;
  int concurrency = 64;  // connections being opened at once
  double joinTimeout = 120;
  bool quiet = false;
};

void usage() {
  std::fprintf(
      stderr,
      "usage: signaling_load --server IP:PORT --user NAME [options]\n"
      "  --server        parley serve's HTTPS address, IPv4 (default 127.0.0.1:443)\n"
      "  --host-name     Host header and TLS SNI (default localhost)\n"
      "  --user          advisor username (default load); the password comes from\n"
      "                  --password or the environment variable PARLEY_LOAD_PASSWORD\n"
      "  --rooms         rooms, one host each (default 10)\n"
      "  --guests        guests per room (default 9)\n"
      "  --seconds       chat: seconds of traffic, <= 600 (default 10)\n"
      "  --rate          chat: messages per second per participant, <= 100 (default 1)\n"
      "  --drain         chat: seconds to wait for the last deliveries, <= 60 (default 5)\n"
      "  --idle N        idle mode: N connections in rooms of 1 + guests, no chat\n"
      "  --hold          idle: seconds to hold the connections, <= 600 (default 5)\n"
      "  --server-pid    sample this process's VmRSS (start, peak, end)\n"
      "  --threads       event-loop threads, 1..8 (default 1)\n"
      "  --concurrency   connections being opened at once (default 64)\n"
      "  --join-timeout  seconds for all clients to be welcomed, <= 600 (default 120)\n"
      "  --quiet         print only the JSON line\n");
}

Options parseOptions(int argc, char** argv) {
  Options options;
  if (const char* password = std::getenv("PARLEY_LOAD_PASSWORD")) options.password = password;
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
    if (i + 1 >= argc) die(std::string(arg) + " needs a value (--help lists the options)");
    const std::string_view value = argv[++i];
    if (arg == "--server") {
      const sockaddr_in address = parley::bench::parseServer(std::string(value));
      options.server = tcp::endpoint(asio::ip::address_v4(ntohl(address.sin_addr.s_addr)),
                                     ntohs(address.sin_port));
      options.serverText = std::string(value);
    } else if (arg == "--host-name") {
      options.hostName = std::string(value);
    } else if (arg == "--user") {
      options.username = std::string(value);
    } else if (arg == "--password") {
      options.password = std::string(value);
    } else if (arg == "--rooms") {
      options.rooms = parseNumber<int>(arg, value);
    } else if (arg == "--guests") {
      options.guests = parseNumber<int>(arg, value);
    } else if (arg == "--seconds") {
      options.trafficSeconds = parseDouble(arg, value);
    } else if (arg == "--rate") {
      options.rate = parseDouble(arg, value);
    } else if (arg == "--drain") {
      options.drainSeconds = parseDouble(arg, value);
    } else if (arg == "--idle") {
      options.idle = parseNumber<int>(arg, value);
    } else if (arg == "--hold") {
      options.holdSeconds = parseDouble(arg, value);
    } else if (arg == "--server-pid") {
      options.serverPid = parseNumber<int>(arg, value);
    } else if (arg == "--threads") {
      options.threads = parseNumber<int>(arg, value);
    } else if (arg == "--concurrency") {
      options.concurrency = parseNumber<int>(arg, value);
    } else if (arg == "--join-timeout") {
      options.joinTimeout = parseDouble(arg, value);
    } else {
      die("unknown option " + std::string(arg) + " (--help lists the options)");
    }
  }
  if (options.password.empty()) die("no password: --password or PARLEY_LOAD_PASSWORD");
  if (options.rooms < 1 || options.rooms > 10'000) die("--rooms must be in [1, 10000]");
  if (options.guests < 0 || options.guests > 99) die("--guests must be in [0, 99]");
  if (options.trafficSeconds <= 0 || options.trafficSeconds > 600) {
    die("--seconds must be in (0, 600]");
  }
  if (options.rate <= 0 || options.rate > 100) die("--rate must be in (0, 100]");
  if (options.drainSeconds < 0 || options.drainSeconds > 60) die("--drain must be in [0, 60]");
  if (options.idle < 0 || options.idle > 100'000) {
    die("--idle must be in [0, 100000] (0: chat mode)");
  }
  if (options.holdSeconds < 0 || options.holdSeconds > 600) die("--hold must be in [0, 600]");
  if (options.threads < 1 || options.threads > 8) die("--threads must be in [1, 8]");
  if (options.concurrency < 1 || options.concurrency > 4096) {
    die("--concurrency must be in [1, 4096]");
  }
  if (options.joinTimeout <= 0 || options.joinTimeout > 600) {
    die("--join-timeout must be in (0, 600]");
  }
  if (options.idle > 0) {
    const int perRoom = options.guests + 1;
    options.rooms = (options.idle + perRoom - 1) / perRoom;
  }
  return options;
}

// 10,000 connections need more descriptors than the usual soft limit of 1024.
void raiseFileLimit() {
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) != 0) return;
  if (limit.rlim_cur < limit.rlim_max) {
    limit.rlim_cur = limit.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &limit);
  }
}

// VmRSS and VmHWM of a process in KiB, 0 if unreadable (or pid 0).
struct Rss {
  std::uint64_t rssKb = 0;
  std::uint64_t hwmKb = 0;
};
Rss readRss(int pid) {
  Rss rss;
  if (pid <= 0) return rss;
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmRSS:", 0) == 0) rss.rssKb = std::strtoull(line.c_str() + 6, nullptr, 10);
    if (line.rfind("VmHWM:", 0) == 0) rss.hwmKb = std::strtoull(line.c_str() + 6, nullptr, 10);
  }
  return rss;
}

// utime + stime of all of a process's threads, in seconds (0 if unreadable or pid 0).
double cpuSeconds(int pid) {
  if (pid <= 0) return 0;
  std::ifstream file("/proc/" + std::to_string(pid) + "/stat");
  const std::string text((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
  const auto close = text.rfind(')');
  if (close == std::string::npos) return 0;
  // After "pid (comm) ": field 3 is the state; utime and stime are fields 14 and 15.
  std::istringstream rest(text.substr(close + 2));
  std::string field;
  std::uint64_t ticks = 0;
  for (int i = 3; i <= 15 && rest >> field; ++i) {
    if (i == 14 || i == 15) ticks += std::strtoull(field.c_str(), nullptr, 10);
  }
  return static_cast<double>(ticks) / static_cast<double>(::sysconf(_SC_CLK_TCK));
}

// ---- shared state -------------------------------------------------------------------------

// Counters every event-loop thread updates; read by the controlling main thread.
struct Shared {
  std::atomic<std::uint64_t> firstConnectNs{0};
  std::atomic<std::uint64_t> lastWelcomeNs{0};
  std::atomic<std::uint64_t> welcomed{0};
  std::atomic<std::uint64_t> joinFailed{0};
  std::atomic<std::uint64_t> opened{0};  // WebSocket handshakes completed
  std::atomic<std::uint64_t> ended{0};   // of those, read loops that have ended
  std::atomic<std::uint64_t> arrivals{0};
  std::atomic<std::uint64_t> reordered{0};
  std::atomic<std::uint64_t> selfEchoes{0};
  std::atomic<std::uint64_t> errors{0};
  std::atomic<bool> closing{false};  // our own close phase: closes are not errors now
  bool quiet = false;

  std::mutex errorMutex;
  std::vector<std::string> firstErrors;

  void error(std::string what) {
    errors.fetch_add(1, std::memory_order_relaxed);
    const std::lock_guard lock(errorMutex);
    if (firstErrors.size() >= kKeptErrors) return;
    if (!quiet) std::fprintf(stderr, "signaling_load: %s\n", what.c_str());
    firstErrors.push_back(std::move(what));
  }
  void noteMax(std::atomic<std::uint64_t>& target, std::uint64_t value) {
    std::uint64_t seen = target.load(std::memory_order_relaxed);
    while (value > seen && !target.compare_exchange_weak(seen, value)) {
    }
  }
};

// Latencies from every event-loop thread; the lock is uncontended with one thread.
struct Latencies {
  std::mutex mutex;
  Histogram fanOut;
  Histogram join;
  std::uint64_t fanOutMaxNs = 0;
  std::uint64_t joinMaxNs = 0;

  void addFanOut(std::uint64_t ns) {
    const std::lock_guard lock(mutex);
    fanOut.add(ns);
    fanOutMaxNs = std::max(fanOutMaxNs, ns);
  }
  void addJoin(std::uint64_t ns) {
    const std::lock_guard lock(mutex);
    join.add(ns);
    joinMaxNs = std::max(joinMaxNs, ns);
  }
};

struct RoomTicket {
  std::string id;
  std::string token;  // a multi-use invitation for guests
};

struct Session {
  std::string cookie;  // value of parley_session; never printed
  std::string csrf;
};

// One participant's WebSocket. Everything but the atomics is touched only on its own
// event-loop thread.
struct Client {
  Client(asio::io_context& io, ssl::context& tls) : ws(io, tls) {}

  std::size_t index = 0;  // global, encoded in chat texts
  std::size_t room = 0;
  std::size_t slot = 0;  // position in its room; 0 = host
  bool host = false;
  std::size_t roomSize = 0;
  WsStream ws;

  std::deque<std::string> outbox;
  bool writing = false;
  bool open = false;
  std::uint64_t connectStartNs = 0;
  std::unordered_set<std::string> admitRequested;  // host: guests already admitted
  std::vector<std::uint64_t> nextSeq;              // per sender slot: next expected number
  std::vector<std::uint64_t> arrivalsFrom;         // per sender slot

  std::atomic<bool> welcomed{false};
  std::atomic<bool> joinSettled{false};  // welcomed or failed: counted once
  std::atomic<bool> inTraffic{false};    // admitted when the chat phase began
  std::atomic<std::uint64_t> sent{0};
};

// ---- REST set-up ----------------------------------------------------------------------------

struct HttpReply {
  unsigned status = 0;
  std::string body;
  std::vector<std::string> setCookies;
};

// One keep-alive HTTPS connection for the set-up requests; reconnects once if the server
// closed it between requests.
class RestConnection {
 public:
  RestConnection(const Options& options, ssl::context& tls) : options_(options), tls_(tls) {}

  awaitable<HttpReply> request(http::verb method, std::string target, std::string body,
                               const Session* session) {
    for (int attempt = 0; attempt < 2; ++attempt) {
      const bool reused = stream_.has_value();
      if (!stream_) co_await connect();
      http::request<http::string_body> request{method, target, 11};
      request.set(http::field::host, hostHeader());
      request.set(http::field::user_agent, "parley-signaling-load");
      request.set(http::field::content_type, "application/json");
      request.keep_alive(true);
      if (session) {
        request.set(http::field::cookie, "parley_session=" + session->cookie);
        request.set("X-CSRF-Token", session->csrf);
      }
      request.body() = body;
      request.prepare_payload();
      beast::get_lowest_layer(*stream_).expires_after(kIoTimeout);
      auto [writeError, written] = co_await http::async_write(*stream_, request, kTuple);
      http::response<http::string_body> response;
      beast::error_code readError;
      if (!writeError) {
        std::tie(readError, std::ignore) =
            co_await http::async_read(*stream_, buffer_, response, kTuple);
      }
      const beast::error_code error = writeError ? writeError : readError;
      if (error) {
        stream_.reset();
        buffer_.clear();
        if (reused) continue;  // the server may close an idle keep-alive connection
        throw std::runtime_error(
            fmt::format("{} {}: {}", http::to_string(method), target, error.message()));
      }
      HttpReply reply;
      reply.status = response.result_int();
      reply.body = std::move(response.body());
      for (const auto& field : response) {
        if (field.name() == http::field::set_cookie) reply.setCookies.emplace_back(field.value());
      }
      if (!response.keep_alive()) stream_.reset();
      co_return reply;
    }
    throw std::runtime_error(
        fmt::format("{} {}: connection closed", http::to_string(method), target));
  }

 private:
  std::string hostHeader() const {
    return fmt::format("{}:{}", options_.hostName, options_.server.port());
  }

  awaitable<void> connect() {
    stream_.emplace(co_await asio::this_coro::executor, tls_);
    buffer_.clear();
    auto& layer = beast::get_lowest_layer(*stream_);
    layer.expires_after(kIoTimeout);
    auto [connectError] = co_await layer.async_connect(options_.server, kTuple);
    if (connectError) {
      throw std::runtime_error(
          fmt::format("connect to {}: {}", options_.serverText, connectError.message()));
    }
    ::SSL_set_tlsext_host_name(stream_->native_handle(), options_.hostName.c_str());
    auto [tlsError] = co_await stream_->async_handshake(ssl::stream_base::client, kTuple);
    if (tlsError) throw std::runtime_error("TLS handshake: " + tlsError.message());
  }

  const Options& options_;
  ssl::context& tls_;
  std::optional<TlsStream> stream_;
  beast::flat_buffer buffer_;
};

// "code: message" of an API error body, for set-up failures.
std::string apiError(const HttpReply& reply) {
  const json body = json::parse(reply.body, nullptr, false);
  if (body.is_object() && body.contains("error") && body["error"].is_object()) {
    return fmt::format("{} {}: {}", reply.status, body["error"].value("code", ""),
                       body["error"].value("message", ""));
  }
  return fmt::format("HTTP {}", reply.status);
}

json parseObject(const HttpReply& reply, std::string_view what) {
  json body = json::parse(reply.body, nullptr, false);
  if (!body.is_object()) throw std::runtime_error(std::string(what) + ": reply is not JSON");
  return body;
}

std::string stringField(const json& object, const char* key, std::string_view what) {
  const auto found = object.find(key);
  if (found == object.end() || !found->is_string()) {
    throw std::runtime_error(fmt::format("{}: reply has no string '{}'", what, key));
  }
  return found->get<std::string>();
}

awaitable<Session> logIn(RestConnection& rest, const Options& options) {
  const json body = {{"username", options.username}, {"password", options.password}};
  const HttpReply reply =
      co_await rest.request(http::verb::post, "/api/v1/session", body.dump(), nullptr);
  if (reply.status != 200) throw std::runtime_error("log-in: " + apiError(reply));
  Session session;
  session.csrf = stringField(parseObject(reply, "log-in"), "csrfToken", "log-in");
  constexpr std::string_view kCookie = "parley_session=";
  for (const auto& cookie : reply.setCookies) {
    if (cookie.rfind(kCookie, 0) != 0) continue;
    session.cookie = cookie.substr(kCookie.size(), cookie.find(';') - kCookie.size());
  }
  if (session.cookie.empty()) throw std::runtime_error("log-in: no parley_session cookie");
  co_return session;
}

// Creates rooms [next, count) together with other workers sharing `next` (one thread).
awaitable<void> createRooms(RestConnection& rest, const Session& session, std::size_t& next,
                            std::vector<RoomTicket>& rooms) {
  for (std::size_t i = next++; i < rooms.size(); i = next++) {
    const json roomBody = {{"name", fmt::format("load room {}", i + 1)}};
    const HttpReply room =
        co_await rest.request(http::verb::post, "/api/v1/rooms", roomBody.dump(), &session);
    if (room.status != 201) throw std::runtime_error("create room: " + apiError(room));
    rooms[i].id = stringField(parseObject(room, "create room"), "id", "create room");
    // Multi-use and valid well past the run: every guest of the room says hello with it.
    const json inviteBody = {{"expiresInSeconds", 86'400}, {"singleUse", false}};
    const HttpReply invitation =
        co_await rest.request(http::verb::post, "/api/v1/rooms/" + rooms[i].id + "/invitations",
                              inviteBody.dump(), &session);
    if (invitation.status != 201) throw std::runtime_error("invite: " + apiError(invitation));
    rooms[i].token = stringField(parseObject(invitation, "invite"), "token", "invite");
  }
}

struct SetupResult {
  Session session;
  std::vector<RoomTicket> rooms;
};

awaitable<SetupResult> setUp(const Options& options, ssl::context& tls) {
  SetupResult result;
  std::vector<std::unique_ptr<RestConnection>> connections;
  for (int i = 0; i < kRestConnections; ++i)
    connections.push_back(std::make_unique<RestConnection>(options, tls));
  result.session = co_await logIn(*connections[0], options);
  result.rooms.resize(static_cast<std::size_t>(options.rooms));
  std::size_t next = 0;
  // The workers run side by side on this thread; the first failure ends the set-up.
  const auto executor = co_await asio::this_coro::executor;
  std::vector<std::future<void>> workers;
  for (auto& connection : connections) {
    workers.push_back(asio::co_spawn(
        executor, createRooms(*connection, result.session, next, result.rooms), asio::use_future));
  }
  // All of them finish (each ends at its first failure) before this frame, which they use,
  // goes away; then the first failure is rethrown.
  asio::steady_timer timer(executor);
  for (auto& worker : workers) {
    while (worker.wait_for(std::chrono::seconds(0)) != std::future_status::ready) {
      timer.expires_after(std::chrono::milliseconds(5));
      co_await timer.async_wait(kTuple);
    }
  }
  for (auto& worker : workers)
    worker.get();
  co_return result;
}

// ---- WebSocket clients ------------------------------------------------------------------------

class SignalingLoad {
 public:
  SignalingLoad(const Options& options, ssl::context& tls, std::vector<RoomTicket> rooms,
                Session session, std::vector<asio::io_context*> loops)
      : options_(options),
        rooms_(std::move(rooms)),
        session_(std::move(session)),
        loops_(std::move(loops)) {
    shared_.quiet = options.quiet;
    const std::size_t perRoom = static_cast<std::size_t>(options.guests) + 1;
    const std::size_t total =
        options.idle > 0 ? static_cast<std::size_t>(options.idle) : rooms_.size() * perRoom;
    byThread_.resize(loops_.size());
    for (std::size_t i = 0; i < total; ++i) {
      const std::size_t thread = i % loops_.size();
      auto client = std::make_unique<Client>(*loops_[thread], tls);
      client->index = i;
      client->room = i / perRoom;
      client->slot = i % perRoom;
      client->host = client->slot == 0;
      client->roomSize = std::min(perRoom, total - client->room * perRoom);
      client->nextSeq.assign(client->roomSize, 0);
      client->arrivalsFrom.assign(client->roomSize, 0);
      byThread_[thread].push_back(client.get());
      clients_.push_back(std::move(client));
    }
  }

  std::size_t total() const { return clients_.size(); }
  Shared& shared() { return shared_; }
  Latencies& latencies() { return latencies_; }
  const std::vector<std::unique_ptr<Client>>& clients() const { return clients_; }

  // Opens every connection, --concurrency at a time; returns at once.
  void startJoining() {
    const std::size_t perThread =
        (static_cast<std::size_t>(options_.concurrency) + loops_.size() - 1) / loops_.size();
    for (std::size_t thread = 0; thread < loops_.size(); ++thread) {
      nextToOpen_.push_back(std::make_unique<std::size_t>(0));
      for (std::size_t worker = 0; worker < perThread; ++worker) {
        asio::co_spawn(*loops_[thread], openWorker(thread), asio::detached);
      }
    }
  }

  bool allJoinsSettled() const {
    return shared_.welcomed.load() + shared_.joinFailed.load() >= clients_.size();
  }

  // Chat phase: every client welcomed by now sends until `endNs`; the others are closed and
  // counted as failed joins, so that nobody enters a room halfway through the traffic.
  void startTraffic(std::uint64_t startNs, std::uint64_t endNs) {
    for (std::size_t thread = 0; thread < loops_.size(); ++thread) {
      asio::post(*loops_[thread], [this, thread, startNs, endNs] {
        for (Client* client : byThread_[thread]) {
          if (client->welcomed.load()) {
            client->inTraffic.store(true);
            asio::co_spawn(*loops_[thread], sendChats(*client, startNs, endNs), asio::detached);
          } else {
            settleJoin(*client, false, "not welcomed before the traffic started");
            if (client->open) client->ws.next_layer().next_layer().close();
          }
        }
      });
    }
  }

  // Expected deliveries so far: each message reaches the other participants of its room
  // that were admitted when the traffic began.
  std::uint64_t expectedDeliveries() const {
    std::vector<std::uint64_t> admitted(rooms_.size(), 0);
    for (const auto& client : clients_)
      admitted[client->room] += client->inTraffic.load();
    std::uint64_t expected = 0;
    for (const auto& client : clients_) {
      if (client->inTraffic.load()) expected += client->sent.load() * (admitted[client->room] - 1);
    }
    return expected;
  }

  // Close handshakes for every open socket (bounded by the WebSocket close timeout).
  void closeAll() {
    shared_.closing.store(true);
    for (std::size_t thread = 0; thread < loops_.size(); ++thread) {
      asio::post(*loops_[thread], [this, thread] {
        for (Client* client : byThread_[thread]) {
          if (!client->open) continue;
          client->ws.async_close(websocket::close_code::normal, [](beast::error_code) {});
        }
      });
    }
  }

 private:
  std::string hostHeader() const {
    return fmt::format("{}:{}", options_.hostName, options_.server.port());
  }

  void settleJoin(Client& client, bool welcomed, std::string_view why) {
    if (client.joinSettled.exchange(true)) return;
    if (welcomed) {
      const std::uint64_t now = nowNs();
      const std::uint64_t took = now - client.connectStartNs;
      latencies_.addJoin(took);
      client.welcomed.store(true);
      shared_.noteMax(shared_.lastWelcomeNs, now);
      shared_.welcomed.fetch_add(1);
    } else {
      shared_.joinFailed.fetch_add(1);
      shared_.error(fmt::format("client {} ({} of room {}) did not join: {}", client.index,
                                client.host ? "host" : "guest", client.room + 1, why));
    }
  }

  awaitable<void> openWorker(std::size_t thread) {
    std::vector<Client*>& mine = byThread_[thread];
    std::size_t& next = *nextToOpen_[thread];
    for (std::size_t i = next++; i < mine.size(); i = next++) {
      Client& client = *mine[i];
      if (co_await open(client)) {
        asio::co_spawn(*loops_[thread], readLoop(client), asio::detached);
      }
    }
  }

  // TCP, TLS and WebSocket handshakes, then hello (guests) and join. False on failure.
  awaitable<bool> open(Client& client) {
    client.connectStartNs = nowNs();
    std::uint64_t unset = 0;
    shared_.firstConnectNs.compare_exchange_strong(unset, client.connectStartNs);
    const RoomTicket& room = rooms_[client.room];
    auto& layer = beast::get_lowest_layer(client.ws);
    layer.expires_after(kIoTimeout);
    auto [connectError] = co_await layer.async_connect(options_.server, kTuple);
    if (connectError) {
      settleJoin(client, false, "connect: " + connectError.message());
      co_return false;
    }
    ::SSL_set_tlsext_host_name(client.ws.next_layer().native_handle(), options_.hostName.c_str());
    auto [tlsError] =
        co_await client.ws.next_layer().async_handshake(ssl::stream_base::client, kTuple);
    if (tlsError) {
      settleJoin(client, false, "TLS handshake: " + tlsError.message());
      co_return false;
    }
    // From here on the WebSocket's own timeouts apply (the server pings; we answer).
    layer.expires_never();
    websocket::stream_base::timeout timeouts{};
    timeouts.handshake_timeout = kIoTimeout;
    timeouts.idle_timeout = websocket::stream_base::none();
    timeouts.keep_alive_pings = false;
    client.ws.set_option(timeouts);
    client.ws.read_message_max(1 << 20);
    const std::string cookie = client.host ? "parley_session=" + session_.cookie : std::string();
    client.ws.set_option(websocket::stream_base::decorator([cookie](websocket::request_type& req) {
      req.set(http::field::user_agent, "parley-signaling-load");
      // No Origin: a non-browser client (docs/api.md). Hosts authenticate by cookie.
      if (!cookie.empty()) req.set(http::field::cookie, cookie);
    }));
    websocket::response_type response;
    auto [wsError] =
        co_await client.ws.async_handshake(response, hostHeader(), "/ws?room=" + room.id, kTuple);
    if (wsError) {
      settleJoin(
          client, false,
          fmt::format("WebSocket upgrade: {} (HTTP {})", wsError.message(), response.result_int()));
      co_return false;
    }
    client.ws.text(true);
    client.open = true;
    shared_.opened.fetch_add(1);
    if (!client.host) {
      send(client, json{{"v", 1},
                        {"type", "hello"},
                        {"token", room.token},
                        {"name", fmt::format("guest {}", client.index)}}
                       .dump());
    }
    send(client, R"({"v":1,"type":"join","media":{"audio":false,"video":false}})");
    co_return true;
  }

  // One write in flight, the rest queued behind it (a WebSocket allows one writer).
  void send(Client& client, std::string text) {
    if (!client.open) return;
    if (client.outbox.size() >= kMaxOutbox) {
      shared_.error(fmt::format("client {}: {} messages queued, closing", client.index,
                                client.outbox.size()));
      client.ws.next_layer().next_layer().close();
      return;
    }
    client.outbox.push_back(std::move(text));
    if (!client.writing) writeNext(client);
  }

  void writeNext(Client& client) {
    client.writing = true;
    client.ws.async_write(
        asio::buffer(client.outbox.front()), [this, &client](beast::error_code error, std::size_t) {
          client.outbox.pop_front();
          if (error) {
            client.writing = false;
            client.outbox.clear();
            if (!shared_.closing.load()) {
              shared_.error(fmt::format("client {}: write: {}", client.index, error.message()));
            }
            return;
          }
          if (client.outbox.empty()) {
            client.writing = false;
          } else {
            writeNext(client);
          }
        });
  }

  awaitable<void> readLoop(Client& client) {
    beast::flat_buffer buffer;
    // Ends when the socket closes: by us at the end, by the server, or by the process's alarm.
    for (;;) {
      auto [error, bytes] = co_await client.ws.async_read(buffer, kTuple);
      if (error) {
        client.open = false;
        if (!client.joinSettled.load()) {
          settleJoin(
              client, false,
              fmt::format("closed: {} (close code {})", error.message(), client.ws.reason().code));
        } else if (!shared_.closing.load()) {
          shared_.error(fmt::format("client {} closed early: {} (close code {} {})", client.index,
                                    error.message(), client.ws.reason().code,
                                    std::string(client.ws.reason().reason.c_str())));
        }
        shared_.ended.fetch_add(1);
        co_return;
      }
      const auto data = buffer.cdata();
      try {
        onMessage(client, std::string_view(static_cast<const char*>(data.data()), data.size()));
      } catch (const json::exception& badField) {
        // A field of an unexpected type: the server broke the protocol; count it, read on.
        shared_.error(
            fmt::format("client {}: malformed message: {}", client.index, badField.what()));
      }
      buffer.consume(bytes);
    }
  }

  void onMessage(Client& client, std::string_view text) {
    const json message = json::parse(text, nullptr, false);
    if (!message.is_object() || !message.contains("type") || !message["type"].is_string()) {
      shared_.error(fmt::format("client {}: not a signaling message", client.index));
      return;
    }
    const std::string& type = message["type"].get_ref<const std::string&>();
    if (type == "chat") {
      onChat(client, message);
    } else if (type == "welcome") {
      settleJoin(client, true, {});
      if (client.host) admitWaiting(client, message);
    } else if (type == "lobby-update") {
      if (client.host) admitWaiting(client, message);
    } else if (type == "error") {
      shared_.error(fmt::format("client {}: server error {}: {} (ref {})", client.index,
                                message.value("code", ""), message.value("message", ""),
                                message.value("ref", "")));
    } else if (type == "rejected" || type == "removed" || type == "ended" || type == "shutdown") {
      shared_.error(fmt::format("client {}: unexpected {}", client.index, type));
    }
    // lobby, participant-*, pong, signal and muted need no answer from a load client.
  }

  // The host admits everyone listed in `lobby` (welcome or lobby-update) once.
  void admitWaiting(Client& client, const json& message) {
    const auto lobby = message.find("lobby");
    if (lobby == message.end() || !lobby->is_array()) return;
    for (const auto& participant : *lobby) {
      if (!participant.is_object() || !participant.contains("id") ||
          !participant["id"].is_string()) {
        continue;
      }
      const std::string& id = participant["id"].get_ref<const std::string&>();
      if (!client.admitRequested.insert(id).second) continue;
      send(client, json{{"v", 1}, {"type", "admit"}, {"id", id}}.dump());
    }
  }

  // Text "load SENDER SEQ SENT_NS"; the ChatMessage fields sit at the top level.
  void onChat(Client& client, const json& message) {
    const auto text = message.find("text");
    if (text == message.end() || !text->is_string()) {
      shared_.error(fmt::format("client {}: chat without text", client.index));
      return;
    }
    const auto fields = parseChatText(text->get_ref<const std::string&>());
    if (!fields) {
      shared_.error(fmt::format("client {}: foreign chat text", client.index));
      return;
    }
    const auto [sender, seq, sentNs] = *fields;
    if (sender >= clients_.size() || clients_[sender]->room != client.room) {
      shared_.error(
          fmt::format("client {}: chat from client {} of another room", client.index, sender));
      return;
    }
    if (sender == client.index) {
      shared_.selfEchoes.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    const std::uint64_t now = nowNs();
    const std::uint64_t latency = now > sentNs ? now - sentNs : 0;
    latencies_.addFanOut(latency);
    const std::size_t from = clients_[sender]->slot;
    ++client.arrivalsFrom[from];
    shared_.arrivals.fetch_add(1, std::memory_order_relaxed);
    std::uint64_t& expected = client.nextSeq[from];
    if (seq < expected) {
      // Behind one already seen: reordered (or duplicated).
      shared_.reordered.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    // seq > expected leaves a gap; the missing ones count as lost unless they turn up later
    // (then they count as reordered).
    expected = seq + 1;
  }

  struct ChatFields {
    std::size_t sender;
    std::uint64_t seq;
    std::uint64_t sentNs;
  };
  static std::optional<ChatFields> parseChatText(std::string_view text) {
    if (text.substr(0, kChatTag.size()) != kChatTag) return std::nullopt;
    text.remove_prefix(kChatTag.size());
    std::uint64_t values[3] = {};
    for (std::uint64_t& value : values) {
      if (text.empty() || text.front() != ' ') return std::nullopt;
      text.remove_prefix(1);
      const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
      if (error != std::errc{}) return std::nullopt;
      text.remove_prefix(static_cast<std::size_t>(end - text.data()));
    }
    if (!text.empty()) return std::nullopt;
    return ChatFields{static_cast<std::size_t>(values[0]), values[1], values[2]};
  }

  // Paced sends: message k at start + offset + k / rate; the offsets spread the senders
  // evenly over one interval so that they do not all send at the same instant.
  awaitable<void> sendChats(Client& client, std::uint64_t startNs, std::uint64_t endNs) {
    asio::steady_timer timer(co_await asio::this_coro::executor);
    const double intervalNs = 1e9 / options_.rate;
    const double offsetNs =
        intervalNs * static_cast<double>(client.index) / static_cast<double>(clients_.size());
    const auto most = static_cast<std::uint64_t>(options_.rate * options_.trafficSeconds) + 1;
    for (std::uint64_t seq = 0; seq < most; ++seq) {
      const auto dueNs =
          startNs + static_cast<std::uint64_t>(offsetNs + intervalNs * static_cast<double>(seq));
      if (dueNs >= endNs) break;
      const std::uint64_t now = nowNs();
      if (dueNs > now) {
        timer.expires_after(std::chrono::nanoseconds(dueNs - now));
        co_await timer.async_wait(kTuple);
      }
      if (!client.open) break;
      send(client, fmt::format(R"({{"v":1,"type":"chat","text":"{} {} {} {}"}})", kChatTag,
                               client.index, seq, nowNs()));
      client.sent.fetch_add(1, std::memory_order_relaxed);
    }
  }

  const Options& options_;
  const std::vector<RoomTicket> rooms_;
  const Session session_;
  const std::vector<asio::io_context*> loops_;
  std::vector<std::unique_ptr<Client>> clients_;
  std::vector<std::vector<Client*>> byThread_;
  std::vector<std::unique_ptr<std::size_t>> nextToOpen_;  // per thread, touched on it only
  Shared shared_;
  Latencies latencies_;
};

// ---- the run ----------------------------------------------------------------------------------

// Samples the server's RSS, keeping the peak.
class RssWatch {
 public:
  explicit RssWatch(int pid) : pid_(pid) {}
  Rss sample() {
    const Rss now = readRss(pid_);
    peakKb_ = std::max(peakKb_, now.rssKb);
    hwmKb_ = std::max(hwmKb_, now.hwmKb);
    return now;
  }
  std::uint64_t peakKb() const { return peakKb_; }
  std::uint64_t hwmKb() const { return hwmKb_; }

 private:
  int pid_;
  std::uint64_t peakKb_ = 0;
  std::uint64_t hwmKb_ = 0;
};

// Polls `done` every 20 ms until it holds or `deadlineNs` passes; samples RSS meanwhile.
bool waitUntil(const std::function<bool()>& done, std::uint64_t deadlineNs, RssWatch& rss) {
  while (!done()) {
    rss.sample();
    if (nowNs() >= deadlineNs) return false;
    sleepNs(kPollNs);
  }
  return true;
}

struct Percentiles {
  double p50 = 0;
  double p99 = 0;
  double max = 0;
};
Percentiles millisOf(const Histogram& histogram, std::uint64_t maxNs) {
  return {millis(histogram.quantile(0.5)), millis(histogram.quantile(0.99)), millis(maxNs)};
}
double round3(double value) {
  return static_cast<double>(static_cast<std::int64_t>(value * 1000 + 0.5)) / 1000;
}

int run(const Options& options) {
  ssl::context tls(ssl::context::tls_client);
  // The server's certificate is self-signed (tests, benchmarks): not verified.
  tls.set_verify_mode(ssl::verify_none);
  // Frees OpenSSL's buffers of idle connections: 10,000 of them would otherwise hold ~34 KiB
  // each in this process.
  ::SSL_CTX_set_mode(tls.native_handle(), SSL_MODE_RELEASE_BUFFERS);

  std::vector<std::unique_ptr<asio::io_context>> loops;
  std::vector<asio::io_context*> loopPointers;
  std::vector<asio::executor_work_guard<asio::io_context::executor_type>> guards;
  for (int i = 0; i < options.threads; ++i) {
    loops.push_back(std::make_unique<asio::io_context>(1));
    loopPointers.push_back(loops.back().get());
    guards.push_back(asio::make_work_guard(*loops.back()));
  }
  std::vector<std::thread> threads;
  for (auto& loop : loops)
    threads.emplace_back([&loop] { loop->run(); });

  RssWatch rss(options.serverPid);
  const Rss atStart = rss.sample();
  const std::uint64_t setupStart = nowNs();
  SetupResult setup;
  try {
    setup = asio::co_spawn(*loops[0], setUp(options, tls), asio::use_future).get();
  } catch (const std::exception& error) {
    die(std::string("set-up failed: ") + error.what());
  }
  const double setupSeconds = seconds(nowNs() - setupStart);
  if (!options.quiet) {
    std::fprintf(stderr, "signaling_load: logged in, %zu rooms with invitations in %.2f s\n",
                 setup.rooms.size(), setupSeconds);
  }

  SignalingLoad load(options, tls, std::move(setup.rooms), std::move(setup.session), loopPointers);
  Shared& shared = load.shared();
  const Rss beforeJoins = rss.sample();
  const double cpuBeforeJoins = cpuSeconds(options.serverPid);
  load.startJoining();
  const bool joinedInTime =
      waitUntil([&] { return load.allJoinsSettled(); }, nowNs() + toNs(options.joinTimeout), rss);
  const double joinCpu = cpuSeconds(options.serverPid) - cpuBeforeJoins;
  const std::uint64_t joined = shared.welcomed.load();
  const std::uint64_t firstConnect = shared.firstConnectNs.load();
  const std::uint64_t lastWelcome = shared.lastWelcomeNs.load();
  const double joinSeconds = lastWelcome > firstConnect ? seconds(lastWelcome - firstConnect) : 0;
  const double joinsPerSecond = joinSeconds > 0 ? static_cast<double>(joined) / joinSeconds : 0;
  if (!options.quiet) {
    std::fprintf(stderr, "signaling_load: %llu of %zu clients joined in %.2f s (%.0f/s)%s\n",
                 static_cast<unsigned long long>(joined), load.total(), joinSeconds, joinsPerSecond,
                 joinedInTime ? "" : ", join time-out");
  }

  json report = json::object();
  const bool idle = options.idle > 0;
  bool ok = joined == load.total();
  Rss held;
  Rss afterTraffic;
  double trafficSeconds = 0;
  double trafficCpu = 0;
  double holdCpu = 0;  // idle: server CPU while the connections only exist (pings, timers)
  std::uint64_t expected = 0;
  if (idle) {
    // Let the server settle (lazy allocations, queued audit writes) before measuring.
    sleepNs(1'000'000'000);
    held = rss.sample();
    const double cpuBeforeHold = cpuSeconds(options.serverPid);
    waitUntil([] { return false; }, nowNs() + toNs(options.holdSeconds), rss);
    holdCpu = cpuSeconds(options.serverPid) - cpuBeforeHold;
  } else {
    const std::uint64_t start = nowNs() + 100'000'000;
    const std::uint64_t end = start + toNs(options.trafficSeconds);
    const double cpuBeforeTraffic = cpuSeconds(options.serverPid);
    load.startTraffic(start, end);
    waitUntil([] { return false; }, end, rss);
    trafficSeconds = seconds(nowNs() - start);
    // Drain: done once everything expected arrived (senders stop at `end`).
    waitUntil(
        [&] {
          expected = load.expectedDeliveries();
          return shared.arrivals.load() >= expected;
        },
        nowNs() + toNs(options.drainSeconds), rss);
    expected = load.expectedDeliveries();
    trafficCpu = cpuSeconds(options.serverPid) - cpuBeforeTraffic;
    afterTraffic = rss.sample();
  }

  load.closeAll();
  waitUntil([&] { return shared.ended.load() >= shared.opened.load(); }, nowNs() + toNs(10), rss);
  const Rss atEnd = rss.sample();

  for (auto& loop : loops)
    loop->stop();
  for (auto& thread : threads)
    thread.join();

  const Latencies& latencies = load.latencies();
  const Percentiles joinMs = millisOf(latencies.join, latencies.joinMaxNs);

  report["mode"] = idle ? "idle" : "chat";
  report["server"] = options.serverText;
  report["clients"] = load.total();
  report["rooms"] = options.rooms;
  report["guests_per_room"] = options.guests;
  report["joined"] = joined;
  report["join_failures"] = load.total() - joined;
  report["setup_seconds"] = round3(setupSeconds);
  report["join_seconds"] = round3(joinSeconds);
  report["joins_per_second"] = round3(joinsPerSecond);
  report["join_ms_p50"] = round3(joinMs.p50);
  report["join_ms_p99"] = round3(joinMs.p99);
  report["join_ms_max"] = round3(joinMs.max);
  if (options.serverPid > 0) {
    // Server CPU while the clients joined (TLS handshakes, upgrades, SQLite writes).
    report["server_cpu_join_seconds"] = round3(joinCpu);
    report["server_cpu_ms_per_join"] =
        joined > 0 ? round3(joinCpu * 1000 / static_cast<double>(joined)) : 0.0;
  }
  if (idle) {
    const double deltaKb = static_cast<double>(held.rssKb) - static_cast<double>(beforeJoins.rssKb);
    report["hold_seconds"] = options.holdSeconds;
    if (options.serverPid > 0) {
      report["server_rss_before_kb"] = beforeJoins.rssKb;
      report["server_rss_idle_kb"] = held.rssKb;
      report["rss_delta_kb"] = deltaKb;
      report["rss_per_connection_kb"] =
          joined > 0 ? round3(deltaKb / static_cast<double>(joined)) : 0.0;
      report["server_cpu_hold_seconds"] = round3(holdCpu);
    }
  } else {
    std::uint64_t sent = 0;
    std::uint64_t lost = 0;
    // Per (receiver, sender) pair: what the sender sent minus what arrived at the receiver.
    const auto& clients = load.clients();
    for (const auto& client : clients)
      sent += client->inTraffic.load() ? client->sent.load() : 0;
    for (const auto& receiver : clients) {
      if (!receiver->inTraffic.load()) continue;
      const std::size_t base = receiver->room * (static_cast<std::size_t>(options.guests) + 1);
      for (std::size_t slot = 0; slot < receiver->roomSize; ++slot) {
        const Client& sender = *clients[base + slot];
        if (&sender == receiver.get() || !sender.inTraffic.load()) continue;
        const std::uint64_t from = sender.sent.load();
        lost += from - std::min(from, receiver->arrivalsFrom[slot]);
      }
    }
    const std::uint64_t reordered = shared.reordered.load();
    const Percentiles latency = millisOf(latencies.fanOut, latencies.fanOutMaxNs);
    report["traffic_seconds"] = round3(trafficSeconds);
    report["rate_per_client"] = options.rate;
    report["messages_sent"] = sent;
    report["messages_per_second"] =
        trafficSeconds > 0 ? round3(static_cast<double>(sent) / trafficSeconds) : 0.0;
    report["expected_deliveries"] = expected;
    report["delivered"] = shared.arrivals.load();
    report["deliveries_per_second"] =
        trafficSeconds > 0 ? round3(static_cast<double>(shared.arrivals.load()) / trafficSeconds)
                           : 0.0;
    report["lost"] = lost;
    report["reordered"] = reordered;
    report["self_echoes"] = shared.selfEchoes.load();
    report["latency_ms_p50"] = round3(latency.p50);
    report["latency_ms_p99"] = round3(latency.p99);
    report["latency_ms_max"] = round3(latency.max);
    if (options.serverPid > 0) {
      // Server CPU from the first chat message to the end of the drain, per delivery to
      // another participant (the echo to the sender and reading the message included).
      const auto delivered = shared.arrivals.load();
      report["server_cpu_traffic_seconds"] = round3(trafficCpu);
      report["server_cpu_us_per_delivery"] =
          delivered > 0 ? round3(trafficCpu * 1e6 / static_cast<double>(delivered)) : 0.0;
    }
    ok = ok && lost == 0 && reordered == 0;
  }
  report["errors"] = shared.errors.load();
  {
    const std::lock_guard lock(shared.errorMutex);
    report["first_errors"] = shared.firstErrors;
  }
  if (options.serverPid > 0) {
    report["server_rss_start_kb"] = atStart.rssKb;
    report["server_rss_peak_kb"] = rss.peakKb();
    report["server_rss_end_kb"] = atEnd.rssKb;
    report["server_hwm_kb"] = rss.hwmKb();
    if (!idle) report["server_rss_after_traffic_kb"] = afterTraffic.rssKb;
  }
  report["ok"] = ok;

  if (!options.quiet) {
    if (idle) {
      std::printf("%llu idle connections; server RSS %llu -> %llu KiB\n",
                  static_cast<unsigned long long>(joined),
                  static_cast<unsigned long long>(beforeJoins.rssKb),
                  static_cast<unsigned long long>(held.rssKb));
    } else {
      std::printf(
          "sent %llu, delivered %llu of %llu, lost %llu, reordered %llu; latency p50 "
          "%.2f ms p99 %.2f ms\n",
          report["messages_sent"].get<unsigned long long>(),
          report["delivered"].get<unsigned long long>(), static_cast<unsigned long long>(expected),
          report["lost"].get<unsigned long long>(), report["reordered"].get<unsigned long long>(),
          report["latency_ms_p50"].get<double>(), report["latency_ms_p99"].get<double>());
    }
  }
  std::printf("%s\n", report.dump().c_str());
  std::fflush(stdout);
  std::fflush(stderr);
  // The event loops are stopped with handlers still queued on 10,000 sockets; tearing those
  // down in order buys nothing for a process that ends here, and the kernel closes the rest.
  std::_Exit(ok ? 0 : 1);
}

}  // namespace

int main(int argc, char** argv) {
  const Options options = parseOptions(argc, argv);
  raiseFileLimit();
  std::signal(SIGPIPE, SIG_IGN);
  // Whatever happens, this process ends: set-up, joins, traffic or hold, drain and close are
  // each bounded; this is their sum plus slack.
  const double bound = 120 + options.joinTimeout +
                       (options.idle > 0 ? options.holdSeconds + 2
                                         : options.trafficSeconds + options.drainSeconds + 1) +
                       10 + 30;
  ::alarm(static_cast<unsigned>(bound));
  return run(options);
}
