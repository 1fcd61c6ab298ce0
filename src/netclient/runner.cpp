// The checks of `parley netcheck URL` (docs/netcheck.md): the order, the deadlines, which run
// at once, and what each verdict means. The network work itself is in transport, media and web.
#include <algorithm>
#include <array>
#include <atomic>
#include <cctype>
#include <charconv>
#include <condition_variable>
#include <cstdlib>
#include <ctime>
#include <functional>
#include <future>
#include <mutex>
#include <thread>
#include <vector>

#include <fmt/format.h>
#include <netdb.h>
#include <nlohmann/json.hpp>
#include <sys/socket.h>

#include <parley/base/cidr.hpp>
#include <parley/netclient/media.hpp>
#include <parley/netclient/runner.hpp>
#include <parley/netclient/web.hpp>

namespace parley::netclient {

using netcheck::CheckResult;
using netcheck::Verdict;
using std::chrono::milliseconds;
using namespace std::chrono_literals;

namespace {

// Deadlines per step (docs/netcheck.md: the whole run stays under a minute even when every
// step times out: 5 + 4 + 5 + 6 before the session, 6 for everything at once after it, 3 + 3 +
// 5 + 6 + 6 for the media path).
constexpr milliseconds kResolveTimeout = 4s;
constexpr milliseconds kConnectTimeout = 4s;
constexpr milliseconds kProxyTimeout = 5s;
constexpr milliseconds kHandshakeTimeout = 5s;
constexpr milliseconds kHttpsTimeout = 6s;
constexpr milliseconds kParallelCheckTimeout = 6s;
constexpr milliseconds kBindTimeout = 3s;
constexpr milliseconds kMeasureSlack = 3s;  // beyond a measurement's own length
constexpr unsigned kWebSocketEchoes = 5;
constexpr unsigned kPathEchoes = 50;
constexpr milliseconds kPathEchoInterval = 20ms;
constexpr std::uint32_t kBandwidthSeconds = 3;

constexpr std::string_view kRequirementsPath = "/.well-known/parley/requirements.json";
constexpr std::string_view kSessionPath = "/api/v1/netcheck";

struct CheckInfo {
  std::string_view id;
  std::string_view title;
};
// docs/netcheck.md's order.
constexpr std::array<CheckInfo, 20> kChecks{{
    {"url", "URL"},
    {"proxy", "Proxy"},
    {"dns", "DNS"},
    {"tcp_443", "TCP to the HTTPS port"},
    {"tls_443", "TLS and the server's certificate"},
    {"https", "HTTPS"},
    {"wss_direct", "WebSocket, direct"},
    {"wss_proxy", "WebSocket through the proxy"},
    {"stun_udp", "STUN over UDP"},
    {"stun_tcp", "STUN over TCP"},
    {"nat_behaviour", "NAT behaviour"},
    {"turn_udp", "TURN over UDP"},
    {"turn_tcp", "TURN over TCP"},
    {"turn_tls", "TURN over TLS"},
    {"turn_dtls", "TURN over DTLS"},
    {"turn_tls_443", "TURN over TLS on the HTTPS port"},
    {"turn_tls_443_proxy", "TURN over TLS through the proxy"},
    {"path_quality", "Path quality"},
    {"bandwidth_up", "Bandwidth up"},
    {"bandwidth_down", "Bandwidth down"},
}};
// The media paths in order of preference: the first that allocates carries the measurements.
constexpr std::array<std::string_view, 6> kTurnChecks{
    "turn_udp", "turn_tcp", "turn_tls", "turn_dtls", "turn_tls_443", "turn_tls_443_proxy"};

std::size_t indexOf(std::string_view id) {
  for (std::size_t i = 0; i < kChecks.size(); ++i)
    if (kChecks[i].id == id) return i;
  return kChecks.size();  // unreachable for the ids above
}

std::string lower(std::string_view text) {
  std::string out(text);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

bool startsWithNoCase(std::string_view text, std::string_view prefix) {
  return text.size() >= prefix.size() && lower(text.substr(0, prefix.size())) == prefix;
}

std::optional<std::uint16_t> parsePort(std::string_view text) {
  unsigned port = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), port);
  if (error != std::errc() || end != text.data() + text.size() || port == 0 || port > 65535)
    return std::nullopt;
  return static_cast<std::uint16_t>(port);
}

// "host[:port]" or "[v6][:port]" into host (no brackets) and port text ("" when none).
bool splitHostPort(std::string_view authority, std::string& host, std::string_view& port) {
  port = {};
  if (authority.starts_with('[')) {
    const auto close = authority.find(']');
    if (close == std::string_view::npos) return false;
    host = std::string(authority.substr(1, close - 1));
    const auto rest = authority.substr(close + 1);
    if (!rest.empty()) {
      if (!rest.starts_with(':')) return false;
      port = rest.substr(1);
    }
    return IpAddress::parse(host).has_value() && !IpAddress::parse(host)->isV4();
  }
  const auto colon = authority.rfind(':');
  host = std::string(authority.substr(0, colon));
  if (colon != std::string_view::npos) port = authority.substr(colon + 1);
  return host.find(':') == std::string::npos;
}

bool validHostName(std::string_view host) {
  if (host.empty() || host.size() > 253) return false;
  return std::all_of(host.begin(), host.end(), [](unsigned char c) {
    return std::isalnum(c) != 0 || c == '-' || c == '.' || c == '_';
  });
}

std::string percentDecode(std::string_view text) {
  std::string out;
  for (std::size_t i = 0; i < text.size(); ++i) {
    unsigned value = 0;
    if (text[i] == '%' && i + 2 < text.size() &&
        std::from_chars(text.data() + i + 1, text.data() + i + 3, value, 16).ptr ==
            text.data() + i + 3) {
      out.push_back(static_cast<char>(value));
      i += 2;
    } else {
      out.push_back(text[i]);
    }
  }
  return out;
}

std::optional<Endpoint> parseEndpoint(std::string_view text) {
  std::string host;
  std::string_view port;
  if (!splitHostPort(text, host, port)) return std::nullopt;
  const auto address = IpAddress::parse(host);
  const auto number = parsePort(port);
  if (!address || !number) return std::nullopt;
  return Endpoint{*address, *number};
}

std::string rfc3339Now() {
  const std::time_t now = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  std::tm utc{};
  gmtime_r(&now, &utc);
  char text[32];
  std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", &utc);
  return text;
}

std::string formatMs(double ms) {
  return ms < 10 ? fmt::format("{:.1f} ms", ms) : fmt::format("{:.0f} ms", ms);
}

double toMs(std::chrono::microseconds us) {
  return static_cast<double>(us.count()) / 1000.0;
}

// getaddrinfo cannot be cancelled: it runs on a thread of its own that may outlive the wait,
// sharing only this state with the caller.
struct Resolution {
  std::mutex mutex;
  std::condition_variable done;
  bool finished = false;
  int error = 0;
  std::vector<IpAddress> addresses;
};

Result<std::vector<IpAddress>> resolve(const std::string& host, Deadline deadline) {
  if (const auto literal = IpAddress::parse(host)) return std::vector<IpAddress>{*literal};
  auto state = std::make_shared<Resolution>();
  std::thread([state, host] {
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* list = nullptr;
    const int error = ::getaddrinfo(host.c_str(), nullptr, &hints, &list);
    std::vector<IpAddress> addresses;
    for (const addrinfo* a = list; error == 0 && a != nullptr; a = a->ai_next) {
      std::optional<IpAddress> address;
      if (a->ai_family == AF_INET) {
        const auto* in = reinterpret_cast<const sockaddr_in*>(a->ai_addr);
        address = IpAddress::v4(std::span<const std::uint8_t, 4>(
            reinterpret_cast<const std::uint8_t*>(&in->sin_addr), 4));
      } else if (a->ai_family == AF_INET6) {
        const auto* in6 = reinterpret_cast<const sockaddr_in6*>(a->ai_addr);
        address = IpAddress::v6(std::span<const std::uint8_t, 16>(
            reinterpret_cast<const std::uint8_t*>(&in6->sin6_addr), 16));
      }
      if (address && std::find(addresses.begin(), addresses.end(), *address) == addresses.end())
        addresses.push_back(*address);
    }
    if (list != nullptr) ::freeaddrinfo(list);
    std::lock_guard lock(state->mutex);
    state->error = error;
    state->addresses = std::move(addresses);
    state->finished = true;
    state->done.notify_all();
  }).detach();

  std::unique_lock lock(state->mutex);
  if (!state->done.wait_until(lock, deadline, [&] { return state->finished; })) {
    return tl::unexpected(Failure{"dns", fmt::format("{} did not resolve: no answer from DNS in "
                                                     "time",
                                                     host)});
  }
  if (state->error != 0 || state->addresses.empty()) {
    return tl::unexpected(Failure{
        "dns", fmt::format("{} did not resolve: {}", host,
                           state->error != 0 ? ::gai_strerror(state->error) : "no address")});
  }
  return state->addresses;
}

// What POST /api/v1/netcheck handed out (docs/netcheck.md).
struct TestSession {
  std::string id;
  std::vector<std::string> certificateSha256;
  std::string turnHost;
  std::uint16_t udpPort = 0, tcpPort = 0, tlsPort = 0, dtlsPort = 0, httpsPort = 0;
  TurnCredentials credentials;
  ProbeSession probe;
  std::string echoPath;
};

Result<TestSession> parseSession(const std::string& body) {
  const auto json = nlohmann::json::parse(body, nullptr, false);
  if (json.is_discarded() || !json.is_object())
    return tl::unexpected(Failure{"not_parley", "the test session is not JSON"});
  try {
    TestSession session;
    session.id = json.at("id").get<std::string>();
    for (const auto& fingerprint : json.at("tls").at("certificateSha256"))
      session.certificateSha256.push_back(lower(fingerprint.get<std::string>()));
    const auto& turn = json.at("turn");
    session.turnHost = turn.at("host").get<std::string>();
    session.udpPort = turn.value("udpPort", std::uint16_t{0});
    session.tcpPort = turn.value("tcpPort", std::uint16_t{0});
    session.tlsPort = turn.value("tlsPort", std::uint16_t{0});
    session.dtlsPort = turn.value("dtlsPort", std::uint16_t{0});
    session.httpsPort = turn.value("httpsPort", std::uint16_t{0});
    session.credentials.username = turn.at("username").get<std::string>();
    session.credentials.password = turn.at("credential").get<std::string>();
    const auto& probe = json.at("probe");
    session.probe.ticket = probe.at("ticket").get<std::string>();
    const auto peer = parseEndpoint(probe.at("peer").get<std::string>());
    if (!peer) return tl::unexpected(Failure{"protocol", "the session's probe.peer is no address"});
    session.probe.peer = *peer;
    session.probe.maxKbps = probe.at("maxKbps").get<std::uint32_t>();
    session.probe.maxSeconds = probe.at("maxSeconds").get<std::uint32_t>();
    session.probe.maxEchoPackets = probe.at("maxEchoPackets").get<std::uint32_t>();
    std::uint64_t id = 0;
    const auto parsed =
        std::from_chars(session.id.data(), session.id.data() + session.id.size(), id, 16);
    if (parsed.ec != std::errc() || parsed.ptr != session.id.data() + session.id.size())
      return tl::unexpected(Failure{"protocol", "the session id is not 16 hex digits"});
    session.probe.sessionId = id;
    session.echoPath = json.at("echo").at("path").get<std::string>();
    if (!session.echoPath.starts_with('/'))
      return tl::unexpected(Failure{"protocol", "the session's echo.path is no path"});
    return session;
  } catch (const nlohmann::json::exception& error) {
    return tl::unexpected(
        Failure{"not_parley", fmt::format("the test session lacks a field: {}", error.what())});
  }
}

class Runner {
 public:
  Runner(const RunOptions& options, const Progress& progress)
      : options_(options),
        progress_(progress),
        started_(Clock::now()),
        end_(started_ + options.budget) {
    for (std::size_t i = 0; i < kChecks.size(); ++i) {
      slots_[i].result.id = kChecks[i].id;
      slots_[i].result.title = kChecks[i].title;
    }
  }

  netcheck::Report run();

 private:
  struct Slot {
    CheckResult result;
    Clock::time_point started;
  };

  // --- bookkeeping ----------------------------------------------------------------------------
  CheckResult& begin(std::string_view id, std::string target = {}) {
    Slot& slot = slots_[indexOf(id)];
    slot.started = Clock::now();
    slot.result.target = std::move(target);
    report(slot.result, false);
    return slot.result;
  }
  void end(std::string_view id, Verdict verdict, std::string summary, std::string failure = {}) {
    Slot& slot = slots_[indexOf(id)];
    if (slot.started == Clock::time_point{}) begin(id, slot.result.target);
    slot.result.verdict = verdict;
    slot.result.summary = std::move(summary);
    slot.result.failure = verdict == Verdict::Pass || verdict == Verdict::Skipped
                              ? std::string()
                              : std::move(failure);
    slot.result.duration = std::chrono::duration_cast<milliseconds>(Clock::now() - slot.started);
    report(slot.result, true);
  }
  void fail(std::string_view id, const Failure& failure) {
    end(id, Verdict::Fail, failure.message, failure.code);
  }
  void skip(std::string_view id, std::string summary) {
    begin(id);
    end(id, Verdict::Skipped, std::move(summary));
  }
  // A check that cannot be tried because an earlier one failed: it fails for the same reason.
  void notTried(std::string_view id, const Failure& cause, std::string_view because) {
    begin(id);
    result(id).details["notTried"] = true;
    end(id, Verdict::Fail, fmt::format("not tried: {}", because), cause.code);
  }
  // A check whose own path was never tested because something it needs is missing (TURN
  // credentials after the HTTPS check failed; STUN over UDP for the NAT tests): skipped, not
  // failed, so a report never blames UDP for a proxy's 407. The cause stays in the details.
  void skipBecause(std::string_view id, const Failure& cause, std::string_view because) {
    begin(id);
    result(id).details["notTried"] = true;
    result(id).details["cause"] = cause.code;
    end(id, Verdict::Skipped, fmt::format("not tried: {}", because));
  }
  CheckResult& result(std::string_view id) { return slots_[indexOf(id)].result; }
  void report(const CheckResult& check, bool finished) {
    if (!progress_) return;
    std::lock_guard lock(progressMutex_);
    progress_(check, finished);
  }
  Deadline deadlineIn(milliseconds timeout) const { return std::min(Clock::now() + timeout, end_); }

  // Runs the jobs at once and waits for all; a job that throws fails its own check.
  void together(std::vector<std::pair<std::string_view, std::function<void()>>> jobs) {
    std::vector<std::jthread> threads;
    threads.reserve(jobs.size());
    for (auto& [id, job] : jobs) {
      threads.emplace_back([this, id = id, job = std::move(job)] {
        try {
          job();
        } catch (const std::exception& error) {
          end(id, Verdict::Fail, fmt::format("internal error: {}", error.what()), "protocol");
        }
      });
    }
  }

  // --- the steps ------------------------------------------------------------------------------
  void checkProxy();
  void checkDns();
  void checkTcp();
  void checkTlsAndHttps();
  void checkWebSocket(std::string_view id, bool viaProxy);
  void failWebSocket(std::string_view id, const Failure& failure);
  void checkStunUdpAndNat(const Endpoint& server);
  void checkStunTcp(const Endpoint& server);
  void checkTurn(std::string_view id, const Endpoint& turnServer);
  void checkMediaPath();
  netcheck::Contract contract() const;

  Result<std::unique_ptr<Stream>> openHttps(Deadline deadline, TlsFacts* facts);
  Result<HttpResponse> request(const HttpRequest& request, Deadline deadline);
  std::optional<Failure> directUnavailable() const;

  const RunOptions& options_;
  const Progress& progress_;
  std::mutex progressMutex_;
  const Clock::time_point started_;
  const Clock::time_point end_;
  std::array<Slot, kChecks.size()> slots_;

  ServerUrl url_;
  std::vector<IpAddress> addresses_;  // what DNS gave
  std::optional<Failure> dnsFailure_;
  std::optional<IpAddress> server_;      // the address direct connections use
  std::optional<Failure> httpsFailure_;  // why there is no session
  std::optional<nlohmann::json> requirements_;
  std::optional<TestSession> session_;
  std::string httpsPeer_;  // "tcp 127.0.0.1:443" or "... via proxy"

  std::promise<Verdict> wssProxyDone_;
  std::shared_future<Verdict> wssProxyVerdict_ = wssProxyDone_.get_future().share();

  std::mutex allocationsMutex_;
  std::array<std::unique_ptr<TurnAllocation>, kTurnChecks.size()> allocations_;
};

void Runner::checkProxy() {
  if (!options_.proxy) {
    skip("proxy",
         "no proxy: HTTPS_PROXY is not set, NO_PROXY exempts the server, or "
         "--no-proxy was given");
    return;
  }
  const Proxy& proxy = *options_.proxy;
  CheckResult& check = begin("proxy", fmt::format("tcp {} (proxy)", proxy.display()));
  check.details["proxy"] = proxy.display();
  check.details["authentication"] = !proxy.userColonPassword.empty();
  auto tunnel = connectViaProxy(proxy, url_.host, url_.port, deadlineIn(kProxyTimeout));
  if (!tunnel) {
    fail("proxy", tunnel.error());
    return;
  }
  end("proxy", Verdict::Pass,
      fmt::format("the proxy {} opens a tunnel to {} (CONNECT)", proxy.display(),
                  url_.hostHeader()));
}

void Runner::checkDns() {
  CheckResult& check = begin("dns", url_.host);
  auto addresses = resolve(url_.host, deadlineIn(kResolveTimeout));
  if (!addresses) {
    dnsFailure_ = addresses.error();
    if (options_.proxy) {
      end("dns", Verdict::Warn,
          fmt::format("{} (the proxy resolves names for HTTPS; direct connections cannot be "
                      "tried)",
                      addresses.error().message),
          "dns");
    } else {
      fail("dns", addresses.error());
    }
    return;
  }
  addresses_ = *addresses;
  server_ = addresses_.front();
  nlohmann::json list = nlohmann::json::array();
  for (const auto& address : addresses_)
    list.push_back(address.toString());
  check.details["addresses"] = list;
  std::string shown;
  for (const auto& address : addresses_)
    shown += (shown.empty() ? "" : ", ") + address.toString();
  end("dns", Verdict::Pass,
      IpAddress::parse(url_.host) ? fmt::format("{} is an address: nothing to look up", url_.host)
                                  : fmt::format("{} resolves to {}", url_.host, shown));
}

std::optional<Failure> Runner::directUnavailable() const {
  if (server_) return std::nullopt;
  return dnsFailure_ ? *dnsFailure_ : Failure{"dns", url_.host + " did not resolve"};
}

void Runner::checkTcp() {
  if (options_.proxy) {
    skip("tcp_443",
         fmt::format("a proxy is used: HTTPS goes through {}", options_.proxy->display()));
    return;
  }
  if (!server_) {
    notTried("tcp_443", *directUnavailable(), "the name did not resolve");
    return;
  }
  begin("tcp_443");
  const Deadline deadline = deadlineIn(kConnectTimeout);
  Failure last;
  for (const auto& address : addresses_) {
    const Endpoint endpoint{address, url_.port};
    result("tcp_443").target = "tcp " + endpoint.toString();
    auto connected = connectTcp(endpoint, deadline);
    if (connected) {
      server_ = address;
      end("tcp_443", Verdict::Pass, fmt::format("connected to {}", endpoint.toString()));
      return;
    }
    last = connected.error();
    if (last.code == "timeout" || Clock::now() >= deadline) break;
  }
  fail("tcp_443", last);
}

Result<std::unique_ptr<Stream>> Runner::openHttps(Deadline deadline, TlsFacts* facts) {
  Result<std::unique_ptr<Stream>> stream =
      options_.proxy ? connectViaProxy(*options_.proxy, url_.host, url_.port, deadline)
      : server_      ? connectTcp(Endpoint{*server_, url_.port}, deadline)
                     : Result<std::unique_ptr<Stream>>(tl::unexpected(*directUnavailable()));
  if (!stream) return stream;
  httpsPeer_ = (*stream)->describe();
  const std::string sni = IpAddress::parse(url_.host) ? std::string() : url_.host;
  return startTls(std::move(*stream), sni, "http/1.1", deadline, facts);
}

Result<HttpResponse> Runner::request(const HttpRequest& http, Deadline deadline) {
  auto stream = openHttps(deadline, nullptr);
  if (!stream) return tl::unexpected(stream.error());
  return httpRequest(**stream, http, deadline);
}

void Runner::checkTlsAndHttps() {
  // tls_443: the handshake now, the certificate's verdict once the session says which is the
  // server's own.
  const bool tcpFailed = result("tcp_443").verdict == Verdict::Fail;
  if (tcpFailed) {
    const Failure cause{result("tcp_443").failure, result("tcp_443").summary};
    notTried("tls_443", cause, "no TCP connection");
    notTried("https", cause, "no TCP connection");
    httpsFailure_ = cause;
    return;
  }
  CheckResult& tls = begin(
      "tls_443",
      options_.proxy
          ? fmt::format("tls {} via proxy {}", url_.hostHeader(), options_.proxy->display())
          : fmt::format("tls {}", Endpoint{server_.value_or(IpAddress{}), url_.port}.toString()));
  TlsFacts facts;
  auto stream = openHttps(deadlineIn(kHandshakeTimeout), &facts);
  const auto handshake =
      std::chrono::duration_cast<milliseconds>(Clock::now() - slots_[indexOf("tls_443")].started);
  if (!stream) {
    fail("tls_443", stream.error());
    notTried("https", stream.error(), "no TLS connection");
    httpsFailure_ = stream.error();
    return;
  }
  tls.target = httpsPeer_;
  tls.details["protocol"] = facts.protocol;
  tls.details["issuer"] = facts.issuer;
  tls.details["subject"] = facts.subject;
  tls.details["certificateSha256"] = facts.leafSha256;

  // https: the requirements and a test session.
  CheckResult& https = begin("https", "https://" + url_.hostHeader());
  const Deadline deadline = deadlineIn(kHttpsTimeout);
  auto notParley = [&](unsigned status, std::string_view path) {
    return Failure{"not_parley",
                   fmt::format("{} answered {} to {}: it is not a Parley server, or something in "
                               "between answered for it",
                               url_.origin(), status, path)};
  };
  std::optional<Failure> failure;
  auto answer = httpRequest(
      **stream, {"GET", url_.hostHeader(), std::string(kRequirementsPath), {}}, deadline);
  if (!answer) {
    failure = answer.error();
  } else if (answer->status != 200) {
    failure = notParley(answer->status, kRequirementsPath);
  } else {
    auto json = nlohmann::json::parse(answer->body, nullptr, false);
    if (json.is_discarded() || !json.is_object() || !json.contains("version") ||
        !json.contains("ports")) {
      failure = Failure{"not_parley",
                        fmt::format("{} answered {} with something that is not Parley's "
                                    "requirements: it is not a Parley server, or something in "
                                    "between answered for it",
                                    url_.origin(), kRequirementsPath)};
    } else {
      requirements_ = std::move(json);
      https.details["requirementsVersion"] = (*requirements_)["version"];
    }
  }
  if (!failure) {
    const HttpRequest post{"POST", url_.hostHeader(), std::string(kSessionPath), "{}"};
    // The server may close after the first answer: a new connection then.
    auto created = httpRequest(**stream, post, deadline);
    if (!created && created.error().code != "timeout") created = request(post, deadline);
    if (!created) {
      failure = created.error();
    } else if (created->status == 429) {
      failure = Failure{"rate_limited",
                        fmt::format("{} refused a test session: too many checks from this "
                                    "address in the last minute (429); try again in a minute",
                                    url_.origin())};
    } else if (created->status == 404) {
      failure = Failure{"http_status",
                        fmt::format("{} answered 404 to POST {}: network checks are disabled on "
                                    "this server (netcheck.enabled)",
                                    url_.origin(), kSessionPath)};
    } else if (created->status != 201) {
      failure = Failure{"http_status", fmt::format("{} answered {} {} to POST {}", url_.origin(),
                                                   created->status, created->reason, kSessionPath)};
    } else if (auto session = parseSession(created->body); !session) {
      failure = session.error();
      failure->message = fmt::format("{} answered POST {} with no usable test session: {}",
                                     url_.origin(), kSessionPath, failure->message);
    } else {
      session_ = std::move(*session);
      https.details["session"] = session_->id;
    }
  }

  // The certificate's verdict (its duration is the handshake's).
  const auto finishTls = [&](Verdict verdict, std::string summary, std::string code) {
    end("tls_443", verdict, std::move(summary), std::move(code));
    slots_[indexOf("tls_443")].result.duration = handshake;
  };
  if (!session_) {
    tls.details["certificateChecked"] = false;
    finishTls(Verdict::Pass,
              fmt::format("{} handshake; certificate issued by '{}' (not compared: no test "
                          "session)",
                          facts.protocol, facts.issuer),
              {});
  } else if (std::find(session_->certificateSha256.begin(), session_->certificateSha256.end(),
                       lower(facts.leafSha256)) == session_->certificateSha256.end()) {
    tls.details["certificateChecked"] = true;
    finishTls(Verdict::Fail,
              fmt::format("the certificate was issued by '{}', not the server's own: TLS is "
                          "inspected on the way",
                          facts.issuer),
              "intercepted");
  } else {
    tls.details["certificateChecked"] = true;
    finishTls(Verdict::Pass,
              fmt::format("{}, the server's own certificate (issued by '{}')", facts.protocol,
                          facts.issuer),
              {});
  }

  if (failure) {
    httpsFailure_ = failure;
    fail("https", *failure);
    return;
  }
  end("https", Verdict::Pass,
      fmt::format("requirements (version {}) and a test session",
                  (*requirements_)["version"].dump()));
}

void Runner::checkWebSocket(std::string_view id, bool viaProxy) {
  if (viaProxy && !options_.proxy) {
    skip(id, "no proxy");
    return;
  }
  if (!session_) {
    notTried(id, *httpsFailure_, "no echo ticket (the HTTPS check failed)");
    return;
  }
  if (!viaProxy && !server_) {
    notTried(id, *directUnavailable(), "the name did not resolve here");
    return;
  }
  CheckResult& check = begin(
      id, viaProxy
              ? fmt::format("wss {} via proxy {}", url_.hostHeader(), options_.proxy->display())
              : fmt::format("wss {}", Endpoint{*server_, url_.port}.toString()));
  const Deadline deadline = deadlineIn(kParallelCheckTimeout);
  auto stream = viaProxy ? connectViaProxy(*options_.proxy, url_.host, url_.port, deadline)
                         : connectTcp(Endpoint{*server_, url_.port}, deadline);
  if (stream) {
    const std::string sni = IpAddress::parse(url_.host) ? std::string() : url_.host;
    stream = startTls(std::move(*stream), sni, "http/1.1", deadline, nullptr);
  }
  if (!stream) {
    failWebSocket(id, stream.error());
    return;
  }
  // The server accepts its own origin only: its public URL, which may differ from the URL
  // given (an address, another port behind a load balancer).
  std::string origin = url_.origin();
  if (requirements_ && (*requirements_)["url"].is_string())
    origin = (*requirements_)["url"].get<std::string>();
  while (origin.ends_with('/'))
    origin.pop_back();
  check.details["origin"] = origin;
  auto echo = websocketEcho(std::move(*stream), url_.hostHeader(), origin, session_->echoPath,
                            kWebSocketEchoes, deadline);
  if (!echo) {
    failWebSocket(id, echo.error());
    return;
  }
  check.details["messages"] = echo->messages;
  check.details["rttMs"] = toMs(echo->medianRoundTrip);
  end(id, Verdict::Pass,
      fmt::format("{} echoes, median round trip {}", echo->messages,
                  formatMs(toMs(echo->medianRoundTrip))));
}

void Runner::failWebSocket(std::string_view id, const Failure& failure) {
  // A browser may bypass the proxy for the server; when it cannot but the proxy carries the
  // WebSocket, calls still work: a warning, not a failure.
  if (id == "wss_direct" && options_.proxy && wssProxyVerdict_.get() == Verdict::Pass) {
    end(id, Verdict::Warn, fmt::format("{} (through the proxy it works)", failure.message),
        failure.code);
    return;
  }
  fail(id, failure);
}

void Runner::checkStunUdpAndNat(const Endpoint& server) {
  CheckResult& check = begin("stun_udp", "udp " + server.toString());
  std::optional<Endpoint> otherAddress;
  auto transport = openUdp(server);
  auto binding = transport ? stunBinding(**transport, deadlineIn(kParallelCheckTimeout))
                           : Result<BindingOutcome>(tl::unexpected(transport.error()));
  if (!binding) {
    fail("stun_udp", binding.error());
  } else {
    check.details["mapped"] = binding->mapped.toString();
    check.details["rttMs"] = binding->rtt.count();
    if (binding->otherAddress) check.details["otherAddress"] = binding->otherAddress->toString();
    otherAddress = binding->otherAddress;
    end("stun_udp", Verdict::Pass,
        fmt::format("public address {} (round trip {} ms)", binding->mapped.toString(),
                    binding->rtt.count()));
  }
  if (!binding) {
    skipBecause("nat_behaviour", binding.error(), "STUN over UDP failed");
    return;
  }
  if (!otherAddress) {
    skip("nat_behaviour", "the server has no second address (no OTHER-ADDRESS)");
    return;
  }
  CheckResult& nat =
      begin("nat_behaviour", "udp " + server.toString() + " and " + otherAddress->toString());
  auto behaviour = natBehaviour(server, *otherAddress, deadlineIn(kParallelCheckTimeout));
  if (!behaviour) {
    fail("nat_behaviour", behaviour.error());
    return;
  }
  nat.details["mapping"] = behaviour->mapping;
  nat.details["filtering"] = behaviour->filtering;
  end("nat_behaviour", Verdict::Pass,
      fmt::format("mapping {}, filtering {}", behaviour->mapping, behaviour->filtering));
}

void Runner::checkStunTcp(const Endpoint& server) {
  CheckResult& check = begin("stun_tcp", "tcp " + server.toString());
  const Deadline deadline = deadlineIn(kParallelCheckTimeout);
  auto stream = connectTcp(server, deadline);
  if (!stream) {
    fail("stun_tcp", stream.error());
    return;
  }
  auto transport = framed(std::move(*stream));
  auto binding = stunBinding(*transport, deadline);
  if (!binding) {
    fail("stun_tcp", binding.error());
    return;
  }
  check.details["mapped"] = binding->mapped.toString();
  check.details["rttMs"] = binding->rtt.count();
  end("stun_tcp", Verdict::Pass, fmt::format("public address {}", binding->mapped.toString()));
}

void Runner::checkTurn(std::string_view id, const Endpoint& turnServer) {
  const TestSession& session = *session_;
  const bool viaProxy = id == "turn_tls_443_proxy";
  if (viaProxy && !options_.proxy) {
    skip(id, "no proxy");
    return;
  }
  const std::uint16_t port = id == "turn_udp"    ? session.udpPort
                             : id == "turn_tcp"  ? session.tcpPort
                             : id == "turn_tls"  ? session.tlsPort
                             : id == "turn_dtls" ? session.dtlsPort
                                                 : session.httpsPort;
  if (port == 0) {
    skip(id, "not offered by this server");
    return;
  }
  const Endpoint server{turnServer.address, port};
  const std::string protocol = id == "turn_udp"    ? "udp"
                               : id == "turn_tcp"  ? "tcp"
                               : id == "turn_dtls" ? "dtls"
                                                   : "tls";
  CheckResult& check = begin(id, viaProxy ? fmt::format("tls {}:{} via proxy {}", session.turnHost,
                                                        port, options_.proxy->display())
                                          : fmt::format("{} {}", protocol, server.toString()));
  const Deadline deadline = deadlineIn(kParallelCheckTimeout);
  const std::string sni = IpAddress::parse(session.turnHost) ? std::string() : session.turnHost;
  TlsFacts facts;
  Result<std::unique_ptr<MessageTransport>> transport = tl::unexpected(Failure{});
  if (id == "turn_udp") {
    transport = openUdp(server);
  } else if (id == "turn_dtls") {
    transport = openDtls(sni, server, deadline, &facts);
  } else {
    auto stream = viaProxy ? connectViaProxy(*options_.proxy, session.turnHost, port, deadline)
                           : connectTcp(server, deadline);
    if (stream && protocol == "tls")
      stream = startTls(std::move(*stream), sni, "", deadline, &facts);
    if (stream) {
      transport = framed(std::move(*stream));
    } else {
      transport = tl::unexpected(stream.error());
    }
  }
  if (!transport) {
    fail(id, transport.error());
    return;
  }
  auto allocation = allocate(std::move(*transport), session.credentials, deadline);
  if (!allocation) {
    fail(id, allocation.error());
    return;
  }
  check.details["relayed"] = (*allocation)->relayed().toString();
  check.details["mapped"] = (*allocation)->mapped().toString();
  if (!facts.leafSha256.empty()) {
    check.details["certificateMatches"] =
        std::find(session.certificateSha256.begin(), session.certificateSha256.end(),
                  lower(facts.leafSha256)) != session.certificateSha256.end();
  }
  const std::string relayed = (*allocation)->relayed().toString();
  {
    std::lock_guard lock(allocationsMutex_);
    const auto slot = std::find(kTurnChecks.begin(), kTurnChecks.end(), id) - kTurnChecks.begin();
    allocations_[static_cast<std::size_t>(slot)] = std::move(*allocation);
  }
  end(id, Verdict::Pass, fmt::format("relayed address {}", relayed));
}

void Runner::checkMediaPath() {
  // The first allocation whose relay reaches the probe peer carries the measurements.
  TurnAllocation* best = nullptr;
  std::string via;
  std::optional<Failure> bindFailure;
  for (std::size_t i = 0; i < kTurnChecks.size() && best == nullptr; ++i) {
    if (!allocations_[i]) continue;
    auto bound = allocations_[i]->bindPeer(session_->probe.peer, deadlineIn(kBindTimeout));
    if (bound) {
      best = allocations_[i].get();
      via = kTurnChecks[i];
    } else if (!bindFailure) {
      bindFailure = bound.error();
      bindFailure->message = fmt::format("{} (over {})", bound.error().message, kTurnChecks[i]);
    }
  }
  if (best == nullptr) {
    const Failure cause =
        bindFailure ? *bindFailure : Failure{"unreachable", "no TURN allocation succeeded"};
    for (const auto id : {"path_quality", "bandwidth_up", "bandwidth_down"}) {
      if (bindFailure) {
        notTried(id, cause,
                 fmt::format("the relay could not reach the probe peer: {}", cause.message));
      } else {
        skip(id, "no media path: every TURN allocation failed");
      }
    }
    return;
  }
  const ProbeSession& probe = session_->probe;
  const std::string target = fmt::format("{} via {}", probe.peer.toString(), best->describe());

  CheckResult& path = begin("path_quality", target);
  path.details["via"] = via;
  const unsigned echoes = std::min<unsigned>(
      kPathEchoes, probe.maxEchoPackets == 0 ? kPathEchoes : probe.maxEchoPackets);
  auto quality = measurePath(*best, probe, echoes, kPathEchoInterval,
                             deadlineIn(echoes * kPathEchoInterval + kMeasureSlack));
  if (!quality) {
    fail("path_quality", quality.error());
  } else {
    path.details["rttMs"] = quality->rttMs;
    path.details["jitterMs"] = quality->jitterMs;
    path.details["lossPercent"] = quality->lossPercent;
    path.details["sent"] = quality->sent;
    path.details["received"] = quality->received;
    const std::string summary = fmt::format(
        "round trip {}, jitter {}, loss {:.1f} % ({} of {} echoes)", formatMs(quality->rttMs),
        formatMs(quality->jitterMs), quality->lossPercent, quality->received, quality->sent);
    // docs/netcheck.md: warn RTT > 150 ms, jitter > 30 ms or loss > 1 %; fail RTT > 400 ms or
    // loss > 5 %.
    if (quality->rttMs > 400 || quality->lossPercent > 5) {
      end("path_quality", Verdict::Fail, summary, quality->received == 0 ? "timeout" : "poor_path");
    } else if (quality->rttMs > 150 || quality->jitterMs > 30 || quality->lossPercent > 1) {
      end("path_quality", Verdict::Warn, summary, "poor_path");
    } else {
      end("path_quality", Verdict::Pass, summary);
    }
  }

  const std::uint32_t seconds =
      std::min(kBandwidthSeconds, probe.maxSeconds == 0 ? kBandwidthSeconds : probe.maxSeconds);
  const milliseconds duration{seconds * 1000};
  for (const bool up : {true, false}) {
    const std::string_view id = up ? "bandwidth_up" : "bandwidth_down";
    CheckResult& check = begin(id, target);
    check.details["via"] = via;
    const Deadline deadline = deadlineIn(duration + kMeasureSlack);
    auto measured = up ? measureUp(*best, probe, probe.maxKbps, duration, deadline)
                       : measureDown(*best, probe, probe.maxKbps, duration, deadline);
    if (!measured) {
      fail(id, measured.error());
      continue;
    }
    const unsigned streams = netcheck::streamsCarried(measured->kbps);
    check.details["kbps"] = measured->kbps;
    check.details["offeredKbps"] = measured->offeredKbps;
    check.details["streams"] = streams;
    check.details["lossPercent"] = measured->lossPercent;
    check.details["seconds"] = measured->seconds;
    // Nearly all of what was offered arrived: the path may carry more than the test offers.
    const bool atCeiling = measured->kbps >= 0.95 * measured->offeredKbps;
    check.details["atCeiling"] = atCeiling;
    const std::string summary =
        fmt::format("{:.0f} kbit/s {} (offered {:.0f}): {}{} stream{} of {} kbit/s, loss {:.1f} %",
                    measured->kbps, up ? "sent" : "received", measured->offeredKbps,
                    atCeiling ? "at least " : "", streams, streams == 1 ? "" : "s",
                    netcheck::kStreamKbps, measured->lossPercent);
    // docs/netcheck.md: warn below two streams, fail below one.
    if (streams < 1) {
      end(id, Verdict::Fail, summary, "low_bandwidth");
    } else if (streams < 2) {
      end(id, Verdict::Warn, summary, "low_bandwidth");
    } else {
      end(id, Verdict::Pass, summary);
    }
  }
}

netcheck::Contract Runner::contract() const {
  netcheck::Contract contract;
  if (requirements_) {
    if (auto published = netcheck::contractFromRequirements(*requirements_)) contract = *published;
  }
  if (contract.url.empty()) contract.url = url_.origin();
  if (contract.domain.empty() && !IpAddress::parse(url_.host)) contract.domain = url_.host;
  if (contract.addresses.empty()) {
    for (const auto& address : addresses_)
      contract.addresses.push_back(address.toString());
  }
  if (!requirements_) contract.httpsPort = url_.port;
  return contract;
}

netcheck::Report Runner::run() {
  netcheck::Report report;
  report.url = options_.url;
  report.client = options_.client;
  report.startedAt = rfc3339Now();
  if (options_.proxy) report.proxy = "http://" + options_.proxy->display();

  begin("url", options_.url);
  auto url = parseServerUrl(options_.url);
  if (!url) {
    fail("url", url.error());
    report.checks.push_back(result("url"));
    report.duration = std::chrono::duration_cast<milliseconds>(Clock::now() - started_);
    netcheck::Contract fallback;
    fallback.url = options_.url;
    report.assessment = netcheck::assess(report.checks, fallback);
    return report;
  }
  url_ = *url;
  end("url", Verdict::Pass, url_.origin());

  together({{"proxy", [this] { checkProxy(); }}, {"dns", [this] { checkDns(); }}});
  checkTcp();
  checkTlsAndHttps();

  // Everything else at once: the WebSockets, STUN and each TURN transport.
  std::vector<std::pair<std::string_view, std::function<void()>>> jobs{
      {"wss_direct", [this] { checkWebSocket("wss_direct", false); }},
      {"wss_proxy",
       [this] {
         // wss_direct's verdict waits for this one's, whatever happens here.
         struct Announce {
           Runner& runner;
           ~Announce() { runner.wssProxyDone_.set_value(runner.result("wss_proxy").verdict); }
         } announce{*this};
         checkWebSocket("wss_proxy", true);
       }},
  };
  // The STUN/TURN server: the session's TURN host (the URL's, without a session).
  std::optional<Endpoint> turnServer;
  std::optional<Failure> turnFailure;
  const std::string turnHost = session_ ? session_->turnHost : url_.host;
  if (lower(turnHost) == lower(url_.host)) {
    if (server_) {
      turnServer = Endpoint{*server_, 0};
    } else {
      turnFailure = *directUnavailable();
    }
  } else if (auto addresses = resolve(turnHost, deadlineIn(kResolveTimeout)); addresses) {
    const auto v4 = std::find_if(addresses->begin(), addresses->end(),
                                 [](const IpAddress& a) { return a.isV4(); });
    turnServer = Endpoint{v4 != addresses->end() ? *v4 : addresses->front(), 0};
  } else {
    turnFailure = addresses.error();
  }
  // STUN needs no credentials: without a session it uses the published (or default) port.
  std::uint16_t stunUdpPort = 3478, stunTcpPort = 3478;
  if (session_) {
    stunUdpPort = session_->udpPort;
    stunTcpPort = session_->tcpPort;
  } else if (requirements_) {
    stunUdpPort = stunTcpPort = contract().stunPort;
  }
  if (!turnServer) {
    for (const auto id : {"stun_udp", "stun_tcp", "nat_behaviour"})
      notTried(id, *turnFailure, fmt::format("{} did not resolve", turnHost));
  } else {
    if (stunUdpPort == 0) {
      skip("stun_udp", "not offered by this server");
      skip("nat_behaviour", "no STUN over UDP");
    } else {
      jobs.emplace_back("stun_udp", [this, server = Endpoint{turnServer->address, stunUdpPort}] {
        checkStunUdpAndNat(server);
      });
    }
    if (stunTcpPort == 0) {
      skip("stun_tcp", "not offered by this server");
    } else {
      jobs.emplace_back("stun_tcp", [this, server = Endpoint{turnServer->address, stunTcpPort}] {
        checkStunTcp(server);
      });
    }
  }
  for (const auto id : kTurnChecks) {
    if (id == "turn_tls_443_proxy" && !options_.proxy) {
      skip(id, "no proxy");
    } else if (!session_) {
      skipBecause(id, *httpsFailure_, "no TURN credentials (the HTTPS check failed)");
    } else if (!turnServer && id != "turn_tls_443_proxy") {
      notTried(id, *turnFailure, fmt::format("{} did not resolve", turnHost));
    } else {
      jobs.emplace_back(
          id, [this, id, server = turnServer.value_or(Endpoint{})] { checkTurn(id, server); });
    }
  }
  together(std::move(jobs));

  if (session_) {
    checkMediaPath();
  } else {
    for (const auto id : {"path_quality", "bandwidth_up", "bandwidth_down"})
      skip(id, "no media path: no test session");
  }
  // Allocations are released (their sockets closed) before the report is made.
  for (auto& allocation : allocations_)
    allocation.reset();

  for (const auto& slot : slots_)
    report.checks.push_back(slot.result);
  report.assessment = netcheck::assess(report.checks, contract());
  report.duration = std::chrono::duration_cast<milliseconds>(Clock::now() - started_);
  return report;
}

}  // namespace

std::string ServerUrl::origin() const {
  return "https://" + hostHeader();
}

std::string ServerUrl::hostHeader() const {
  const std::string shown = host.find(':') != std::string::npos ? "[" + host + "]" : host;
  return port == 443 ? shown : fmt::format("{}:{}", shown, port);
}

Result<ServerUrl> parseServerUrl(std::string_view url) {
  // Credentials in the URL are never repeated back.
  std::string shown(url);
  if (const auto scheme = shown.find("://"); scheme != std::string::npos) {
    const auto authorityEnd = shown.find_first_of("/?#", scheme + 3);
    const auto at = shown.rfind('@', authorityEnd);
    if (at != std::string::npos && at > scheme) shown.replace(scheme + 3, at - scheme - 3, "…");
  }
  const auto bad = [&](std::string_view why) {
    return tl::unexpected(Failure{
        "unsupported", fmt::format("'{}' is not a server's address: {} (expected "
                                   "https://HOST[:PORT], for example https://parley.example.com)",
                                   shown, why)});
  };
  if (url.empty()) return bad("it is empty");
  if (url.find_first_of(" \t\r\n") != std::string_view::npos) return bad("it contains spaces");
  if (!startsWithNoCase(url, "https://")) {
    const auto scheme = url.find("://");
    return bad(scheme == std::string_view::npos
                   ? std::string("it does not start with https://")
                   : fmt::format("{} is not https", url.substr(0, scheme)));
  }
  std::string_view rest = url.substr(8);
  const std::string_view authority = rest.substr(0, rest.find_first_of("/?#"));
  if (authority.find('@') != std::string_view::npos)
    return bad("it holds credentials, which the check neither needs nor sends");
  ServerUrl parsed;
  std::string_view port;
  if (!splitHostPort(authority, parsed.host, port)) return bad("the host is not valid");
  if (!port.empty()) {
    const auto number = parsePort(port);
    if (!number) return bad("the port is not a number from 1 to 65535");
    parsed.port = *number;
  }
  if (!IpAddress::parse(parsed.host) && !validHostName(parsed.host))
    return bad("the host is not valid");
  parsed.host = lower(parsed.host);
  if (parsed.host.ends_with('.')) parsed.host.pop_back();
  if (parsed.host.empty()) return bad("the host is missing");
  return parsed;
}

Result<Proxy> parseProxyUrl(std::string_view url) {
  const auto bad = [](std::string_view why) {
    return tl::unexpected(Failure{"usage", fmt::format("bad proxy URL: {} (expected "
                                                       "http://[USER:PASSWORD@]HOST[:PORT])",
                                                       why)});
  };
  std::string_view rest = url;
  if (const auto scheme = rest.find("://"); scheme != std::string_view::npos) {
    if (lower(rest.substr(0, scheme)) != "http")
      return bad(fmt::format("the scheme {} is not supported, only http", rest.substr(0, scheme)));
    rest.remove_prefix(scheme + 3);
  }
  rest = rest.substr(0, rest.find_first_of("/?#"));
  Proxy proxy;
  if (const auto at = rest.rfind('@'); at != std::string_view::npos) {
    proxy.userColonPassword = percentDecode(rest.substr(0, at));
    rest.remove_prefix(at + 1);
  }
  std::string_view port;
  if (!splitHostPort(rest, proxy.host, port) || proxy.host.empty()) return bad("no host");
  if (!IpAddress::parse(proxy.host) && !validHostName(proxy.host))
    return bad("the host is not valid");
  if (!port.empty()) {
    const auto number = parsePort(port);
    if (!number) return bad("the port is not a number from 1 to 65535");
    proxy.port = *number;
  }
  return proxy;
}

bool noProxyMatches(std::string_view noProxy, std::string_view host) {
  const std::string name = lower(host);
  const auto address = IpAddress::parse(name);
  std::size_t start = 0;
  while (start <= noProxy.size()) {
    auto stop = noProxy.find_first_of(", \t", start);
    if (stop == std::string_view::npos) stop = noProxy.size();
    std::string entry = lower(noProxy.substr(start, stop - start));
    start = stop + 1;
    if (entry.empty()) continue;
    if (entry == "*") return true;
    if (address) {
      if (entry.starts_with('[') && entry.ends_with(']')) entry = entry.substr(1, entry.size() - 2);
      if (const auto listed = IpAddress::parse(entry); listed && *listed == *address) return true;
      if (const auto range = Cidr::parse(entry); range && range->contains(*address)) return true;
      continue;
    }
    if (entry.starts_with('.')) entry.erase(0, 1);
    if (entry.starts_with("*.")) entry.erase(0, 2);
    if (name == entry || (name.size() > entry.size() && name.ends_with(entry) &&
                          name[name.size() - entry.size() - 1] == '.'))
      return true;
  }
  return false;
}

std::string proxyUrlFromEnvironment(std::string_view host) {
  const auto variable = [](const char* lowerName, const char* upperName) {
    const char* value = std::getenv(lowerName);
    if (value == nullptr || *value == '\0') value = std::getenv(upperName);
    return std::string(value == nullptr ? "" : value);
  };
  const std::string proxy = variable("https_proxy", "HTTPS_PROXY");
  if (proxy.empty()) return {};
  if (noProxyMatches(variable("no_proxy", "NO_PROXY"), host)) return {};
  return proxy;
}

netcheck::Report runChecks(const RunOptions& options, const Progress& progress) {
  Runner runner(options, progress);
  return runner.run();
}

}  // namespace parley::netclient
