// The network check's model: verdicts, the grading rules of docs/netcheck.md ("Grade and
// remedies"), the contract a remedy names and the report JSON (docs/netcheck.schema.json).
#include <algorithm>
#include <array>
#include <cmath>
#include <limits>
#include <set>

#include <fmt/format.h>

#include <parley/base/endpoint.hpp>
#include <parley/netcheck/report.hpp>

namespace parley::netcheck {

std::string_view toString(Verdict verdict) {
  switch (verdict) {
    case Verdict::Pass:
      return "pass";
    case Verdict::Warn:
      return "warn";
    case Verdict::Fail:
      return "fail";
    case Verdict::Skipped:
      return "skipped";
  }
  return "skipped";
}

std::optional<Verdict> parseVerdict(std::string_view text) {
  for (const Verdict verdict : {Verdict::Pass, Verdict::Warn, Verdict::Fail, Verdict::Skipped}) {
    if (text == toString(verdict)) return verdict;
  }
  return std::nullopt;
}

std::string_view toString(Grade grade) {
  switch (grade) {
    case Grade::Best:
      return "best";
    case Grade::Works:
      return "works";
    case Grade::Reduced:
      return "reduced";
    case Grade::Blocked:
      return "blocked";
  }
  return "blocked";
}

std::string_view gradeTitle(Grade grade) {
  switch (grade) {
    case Grade::Best:
      return "Best experience";
    case Grade::Works:
      return "Works";
    case Grade::Reduced:
      return "Works with reduced quality";
    case Grade::Blocked:
      return "Blocked";
  }
  return "Blocked";
}

std::optional<Grade> parseGrade(std::string_view text) {
  for (const Grade grade : {Grade::Best, Grade::Works, Grade::Reduced, Grade::Blocked}) {
    if (text == toString(grade)) return grade;
  }
  return std::nullopt;
}

unsigned streamsCarried(double kbps) {
  if (!(kbps >= 0)) return 0;  // negative or NaN
  const double streams = std::floor(kbps / kStreamKbps);
  if (streams >= static_cast<double>(std::numeric_limits<unsigned>::max())) {
    return std::numeric_limits<unsigned>::max();
  }
  return static_cast<unsigned>(streams);
}

// ---------------------------------------------------------------------------------------------
// The contract

namespace {

// "https://host[:port][/...]" -> host (without brackets for IPv6); "" when not an https URL.
std::string hostOfUrl(std::string_view url) {
  constexpr std::string_view kScheme = "https://";
  if (url.substr(0, kScheme.size()) != kScheme) return {};
  std::string_view rest = url.substr(kScheme.size());
  rest = rest.substr(0, rest.find_first_of("/?#"));
  if (const auto at = rest.rfind('@'); at != std::string_view::npos) rest = rest.substr(at + 1);
  if (!rest.empty() && rest.front() == '[') {
    const auto close = rest.find(']');
    if (close == std::string_view::npos) return {};
    return std::string(rest.substr(1, close - 1));
  }
  return std::string(rest.substr(0, rest.find(':')));
}

bool isAddress(std::string_view host) {
  return IpAddress::parse(host).has_value();
}

// A single host is written as its address: "203.0.113.10/32" -> "203.0.113.10".
std::string withoutHostLength(std::string_view address) {
  const auto slash = address.find('/');
  if (slash == std::string_view::npos) return std::string(address);
  const std::string_view length = address.substr(slash + 1);
  const bool v6 = address.substr(0, slash).find(':') != std::string_view::npos;
  if ((v6 && length == "128") || (!v6 && length == "32")) {
    return std::string(address.substr(0, slash));
  }
  return std::string(address);
}

std::optional<std::uint16_t> portNumber(const nlohmann::json& value) {
  if (!value.is_number_integer()) return std::nullopt;
  if (value.is_number_unsigned()) {
    const auto port = value.get<std::uint64_t>();
    if (port > 65535) return std::nullopt;
    return static_cast<std::uint16_t>(port);
  }
  const auto port = value.get<std::int64_t>();
  if (port < 0 || port > 65535) return std::nullopt;
  return static_cast<std::uint16_t>(port);
}

}  // namespace

tl::expected<Contract, std::string> contractFromRequirements(const nlohmann::json& requirements) {
  if (!requirements.is_object())
    return tl::unexpected(std::string("the requirements must be a JSON object"));
  Contract contract;
  if (const auto it = requirements.find("version"); it != requirements.end()) {
    if (!it->is_number_integer() || it->get<std::int64_t>() != 1) {
      return tl::unexpected(std::string("requirements version is not 1, the version understood"));
    }
  }
  if (const auto it = requirements.find("url"); it != requirements.end()) {
    if (!it->is_string() || hostOfUrl(it->get_ref<const std::string&>()).empty()) {
      return tl::unexpected(std::string("url must be an https URL of a host"));
    }
    contract.url = it->get<std::string>();
  }
  if (const auto it = requirements.find("domain"); it != requirements.end() && !it->is_null()) {
    if (!it->is_string()) return tl::unexpected(std::string("domain must be a string or null"));
    contract.domain = it->get<std::string>();
  } else if (it == requirements.end()) {
    // An older or hand-written document: the URL's host, unless it is an address.
    const std::string host = hostOfUrl(contract.url);
    if (!isAddress(host)) contract.domain = host;
  }

  if (const auto it = requirements.find("ports"); it != requirements.end()) {
    if (!it->is_array()) return tl::unexpected(std::string("ports must be an array"));
    std::optional<std::uint16_t> stunUdp, stunTcp, turnTls, turnDtls;
    for (std::size_t i = 0; i < it->size(); ++i) {
      const nlohmann::json& port = (*it)[i];
      const auto id = port.find("id");
      const auto number = port.is_object() ? port.find("port") : port.end();
      if (!port.is_object() || id == port.end() || !id->is_string()) {
        return tl::unexpected(fmt::format("ports[{}].id must be a string", i));
      }
      if (number == port.end() || !portNumber(*number)) {
        return tl::unexpected(fmt::format("ports[{}].port must be a port number", i));
      }
      const std::string& name = id->get_ref<const std::string&>();
      const std::uint16_t value = *portNumber(*number);
      if (name == "https") {
        contract.httpsPort = value;
      } else if (name == "stun-udp") {
        stunUdp = value;
      } else if (name == "stun-tcp") {
        stunTcp = value;
      } else if (name == "turn-tls") {
        turnTls = value;
      } else if (name == "turn-dtls") {
        turnDtls = value;
      } else if (name == "turn-relay") {
        std::optional<std::uint16_t> end;
        if (const auto last = port.find("endPort"); last != port.end()) {
          end = portNumber(*last);
          if (!end)
            return tl::unexpected(fmt::format("ports[{}].endPort must be a port number", i));
        }
        contract.relayPorts =
            end && *end != value ? fmt::format("{}-{}", value, *end) : std::to_string(value);
      }
    }
    // UDP is what the STUN checks use first; TLS what the 5349 checks name first.
    if (const auto stun = stunUdp ? stunUdp : stunTcp) contract.stunPort = *stun;
    if (const auto tls = turnTls ? turnTls : turnDtls) contract.tlsPort = *tls;
  }

  if (const auto it = requirements.find("nodes"); it != requirements.end()) {
    if (!it->is_array()) return tl::unexpected(std::string("nodes must be an array"));
    for (std::size_t i = 0; i < it->size(); ++i) {
      const nlohmann::json& node = (*it)[i];
      if (!node.is_object()) return tl::unexpected(fmt::format("nodes[{}] must be an object", i));
      const auto role = node.find("role");
      if (role == node.end() || !role->is_string()) {
        return tl::unexpected(fmt::format("nodes[{}].role must be a string", i));
      }
      // Media nodes are reached by the media server's own ports, not by the check's ones.
      const std::string& name = role->get_ref<const std::string&>();
      if (name != "main" && name != "failover" && name != "turn") continue;
      const auto addresses = node.find("addresses");
      if (addresses == node.end()) continue;
      if (!addresses->is_array()) {
        return tl::unexpected(fmt::format("nodes[{}].addresses must be an array", i));
      }
      for (std::size_t j = 0; j < addresses->size(); ++j) {
        const nlohmann::json& address = (*addresses)[j];
        if (!address.is_string()) {
          return tl::unexpected(fmt::format("nodes[{}].addresses[{}] must be a string", i, j));
        }
        std::string text = withoutHostLength(address.get_ref<const std::string&>());
        if (std::find(contract.addresses.begin(), contract.addresses.end(), text) ==
            contract.addresses.end()) {
          contract.addresses.push_back(std::move(text));
        }
      }
    }
  }
  return contract;
}

// ---------------------------------------------------------------------------------------------
// Grading

namespace {

bool isOk(const CheckResult* check) {
  return check != nullptr && (check->verdict == Verdict::Pass || check->verdict == Verdict::Warn);
}
bool isFailed(const CheckResult* check) {
  return check != nullptr && check->verdict == Verdict::Fail;
}
bool isFlagged(const CheckResult* check) {
  return check != nullptr && (check->verdict == Verdict::Warn || check->verdict == Verdict::Fail);
}

std::optional<double> number(const nlohmann::json& details, std::string_view key) {
  if (!details.is_object()) return std::nullopt;
  const auto it = details.find(key);
  if (it == details.end() || !it->is_number()) return std::nullopt;
  const double value = it->get<double>();
  if (!std::isfinite(value)) return std::nullopt;
  return value;
}

std::string text(const nlohmann::json& details, std::string_view key) {
  if (!details.is_object()) return {};
  const auto it = details.find(key);
  if (it == details.end() || !it->is_string()) return {};
  return it->get<std::string>();
}

// "1 234.5" -> "1235"; numbers as people read them in a remedy.
std::string rounded(double value) {
  return fmt::format("{:.0f}", value);
}

std::string streamsPhrase(unsigned streams) {
  if (streams == 0) return fmt::format("less than one video stream of {} kbit/s", kStreamKbps);
  if (streams == 1) return fmt::format("one video stream of {} kbit/s", kStreamKbps);
  return fmt::format("{} video streams of {} kbit/s", streams, kStreamKbps);
}

// A bandwidth measurement: what the details say, or else what the verdict implies.
struct Rate {
  std::optional<double> kbps;
  unsigned streams = 0;
};

class Grader {
 public:
  Grader(const std::vector<CheckResult>& checks, const Contract& contract)
      : checks_(checks), contract_(contract) {}

  Assessment run();

 private:
  const CheckResult* find(std::string_view id) const {
    for (const CheckResult& check : checks_) {
      if (check.id == id) return &check;
    }
    return nullptr;
  }
  bool ok(std::string_view id) const { return isOk(find(id)); }
  bool failed(std::string_view id) const { return isFailed(find(id)); }
  const CheckResult* failedWith(std::string_view failure) const {
    for (const CheckResult& check : checks_) {
      if (check.verdict == Verdict::Fail && check.failure == failure) return &check;
    }
    return nullptr;
  }

  // What a remedy names.
  std::string domain() const;
  std::string addresses() const;
  std::string proxyOf(const CheckResult& check) const;
  std::string issuerOf(const CheckResult& check) const;

  bool superseded(const CheckResult& check) const;
  bool matters(const CheckResult& check) const;
  std::optional<Rate> rate(const CheckResult& check, std::string_view key) const;
  void addRemedy(const std::string& key, std::string text);
  void remedyFor(const CheckResult& check);
  std::string blockedHeadline() const;

  const std::vector<CheckResult>& checks_;
  const Contract& contract_;
  std::vector<std::string> remedies_;
  std::set<std::string> remedyKeys_;
};

std::string Grader::domain() const {
  if (!contract_.domain.empty()) return contract_.domain;
  if (std::string host = hostOfUrl(contract_.url); !host.empty()) return host;
  if (!contract_.addresses.empty()) return contract_.addresses.front();
  return "the server";
}

// "203.0.113.10", "203.0.113.10 and 198.51.100.0/28", "a, b and c"; the domain without any.
std::string Grader::addresses() const {
  const auto& list = contract_.addresses;
  if (list.empty()) return domain();
  std::string out;
  for (std::size_t i = 0; i < list.size(); ++i) {
    if (i > 0) out += i + 1 == list.size() ? " and " : ", ";
    out += list[i];
  }
  return out;
}

std::string Grader::proxyOf(const CheckResult& check) const {
  if (std::string proxy = text(check.details, "proxy"); !proxy.empty()) return proxy;
  if (const CheckResult* proxyCheck = find("proxy")) {
    if (std::string proxy = text(proxyCheck->details, "proxy"); !proxy.empty()) return proxy;
    if (!proxyCheck->target.empty()) return proxyCheck->target;
  }
  if (!check.target.empty()) return check.target;
  return "in use";
}

std::string Grader::issuerOf(const CheckResult& check) const {
  if (std::string issuer = text(check.details, "issuer"); !issuer.empty()) return issuer;
  if (const CheckResult* tls = find("tls_443")) {
    if (std::string issuer = text(tls->details, "issuer"); !issuer.empty()) return issuer;
  }
  return "an unknown issuer";
}

// A failure that does not matter because another path does what it would: in a network whose
// only way out is the proxy the direct attempts fail, and browsers use the proxy too.
bool Grader::superseded(const CheckResult& check) const {
  if (check.id == "wss_direct") return ok("wss_proxy");
  if (check.id == "turn_tls_443") return ok("turn_tls_443_proxy");
  if (check.id == "tcp_443") return ok("wss_proxy");
  return false;
}

bool isBandwidth(std::string_view id) {
  return id == "bandwidth_up" || id == "bandwidth_down" || id == "bandwidth";
}

// Whether a check calls for a remedy and keeps the grade from best. A bandwidth figure outranks
// the client's verdict: the rules count streams, and both clients must grade alike.
bool Grader::matters(const CheckResult& check) const {
  if (isBandwidth(check.id)) {
    if (check.verdict == Verdict::Skipped) return false;
    for (const std::string_view key : {"kbps", "upKbps", "downKbps"}) {
      const auto measured = rate(check, key);
      if (measured && measured->streams < 2) return true;
    }
    return false;
  }
  return isFlagged(&check) && !superseded(check);
}

std::optional<Rate> Grader::rate(const CheckResult& check, std::string_view key) const {
  if (check.verdict == Verdict::Skipped) return std::nullopt;
  Rate rate;
  rate.kbps = number(check.details, key);
  if (!rate.kbps && key != "kbps") rate.kbps = number(check.details, "kbps");
  if (rate.kbps) {
    rate.streams = streamsCarried(*rate.kbps);
  } else {
    // No figure: the client's own verdict (fail < 1 stream, warn < 2, docs/netcheck.md).
    rate.streams = check.verdict == Verdict::Fail ? 0 : check.verdict == Verdict::Warn ? 1 : 2;
  }
  return rate;
}

void Grader::addRemedy(const std::string& key, std::string text) {
  if (remedyKeys_.insert(key).second) remedies_.push_back(std::move(text));
}

void Grader::remedyFor(const CheckResult& check) {
  const std::string& id = check.id;
  const std::string& failure = check.failure;
  const std::string host = domain();
  const std::string to = addresses();
  const std::string summary = check.summary.empty() ? std::string() : " (" + check.summary + ")";
  const unsigned https = contract_.httpsPort;
  const unsigned stun = contract_.stunPort;
  const unsigned tls = contract_.tlsPort;

  // Failures that name their cause, whichever check met them.
  if (failure == "proxy_auth_required") {
    return addRemedy("proxy_auth", fmt::format("The proxy {} requires authentication (407): exempt "
                                               "{} (TCP {}) from proxy authentication.",
                                               proxyOf(check), host, https));
  }
  if (failure == "proxy_refused") {
    return addRemedy(
        "proxy_refused",
        fmt::format("The proxy {} refuses CONNECT to {}: allow CONNECT to {} on TCP {} (and to {} "
                    "on TCP {} for TURN over TLS).",
                    proxyOf(check), host, host, https, to, https));
  }
  if (failure == "intercepted" ||
      (id == "turn_tls_443" && find("tls_443") && find("tls_443")->failure == "intercepted")) {
    return addRemedy("intercepted",
                     fmt::format("Exempt {} from TLS inspection: the certificate seen "
                                 "was issued by '{}' instead of the server's own.",
                                 host, issuerOf(check)));
  }
  if (failure == "dns" || id == "dns") {
    return addRemedy("dns", fmt::format("{} does not resolve on this network{}: let the DNS "
                                        "resolvers answer for {} (it must give {}).",
                                        host, summary, host, to));
  }
  if (failure == "rate_limited") {
    return addRemedy("rate_limited",
                     fmt::format("{} limited how often this network may run the check: wait a "
                                 "minute and run it again.",
                                 host));
  }
  if (failure == "auth_failed") {
    return addRemedy("auth_failed",
                     fmt::format("The TURN server at {} refused the check's own credential: a "
                                 "server problem, not the network's; report it to the operator of "
                                 "{}.",
                                 to, host));
  }

  // A failure that follows from an earlier one adds nothing to that one's remedy: with TCP 443
  // closed, TLS, HTTPS and the WebSocket fail too.
  const bool tcpClosed = isFailed(find("tcp_443")) && !superseded(*find("tcp_443"));
  if ((id == "tls_443" && tcpClosed) ||
      ((id == "https" || id == "wss_direct") && (tcpClosed || failed("tls_443")))) {
    return;
  }

  if (id == "stun_udp" || id == "turn_udp" || id == "srflx_candidates") {
    return addRemedy("udp_stun", fmt::format("Allow UDP {} out to {} (STUN/TURN): calls then use "
                                             "UDP, which is faster than TCP.",
                                             stun, to));
  }
  if (id == "stun_tcp" || id == "turn_tcp") {
    return addRemedy("tcp_stun", fmt::format("Allow TCP {} out to {} (TURN over TCP): calls then "
                                             "relay media over TCP where UDP is blocked.",
                                             stun, to));
  }
  if (id == "turn_tls") {
    return addRemedy("tcp_tls", fmt::format("Allow TCP {} out to {} (TURN over TLS): media then "
                                            "passes as TLS where plain TURN is blocked.",
                                            tls, to));
  }
  if (id == "turn_dtls") {
    return addRemedy("udp_tls", fmt::format("Allow UDP {} out to {} (TURN over DTLS): media then "
                                            "passes encrypted over UDP.",
                                            tls, to));
  }
  if (id == "tcp_443" || (id == "turn_tls_443" && !ok("tcp_443") && !ok("tls_443"))) {
    return addRemedy("tcp_443", fmt::format("Allow TCP {} out to {} ({}): the web app, signaling "
                                            "and TURN over TLS use it; calls cannot do without it.",
                                            https, host, to));
  }
  if (id == "turn_tls_443") {
    return addRemedy("turn_tls_443",
                     fmt::format("Allow TLS on TCP {} to {} also when it carries TURN rather than "
                                 "HTTP{}: TURN over TLS {} is how media passes networks that allow "
                                 "nothing else.",
                                 https, to, summary, https));
  }
  if (id == "turn_tls_443_proxy") {
    return addRemedy("turn_tls_443_proxy",
                     fmt::format("Let the proxy {} CONNECT to {} on TCP {} (TURN over TLS){}: "
                                 "media then passes the proxy when nothing else gets through.",
                                 proxyOf(check), to, https, summary));
  }
  if (id == "tls_443") {
    return addRemedy("tls_443",
                     fmt::format("The TLS handshake with {} on TCP {} fails{}: allow TLS "
                                 "to {} ({}) on TCP {} unmodified.",
                                 host, https, summary, host, to, https));
  }
  if (id == "https") {
    if (failure == "not_parley") {
      return addRemedy("not_parley",
                       fmt::format("{} does not answer as Parley{}: check the "
                                   "address, and that nothing in between (a proxy, a "
                                   "captive portal, a web filter) answers in its place.",
                                   contract_.url.empty() ? host : contract_.url, summary));
    }
    return addRemedy("https", fmt::format("HTTPS to {} on TCP {} fails{}: allow HTTPS to {} (the "
                                          "web app and its API), in the firewall and in any proxy "
                                          "or web filter.",
                                          host, https, summary, host));
  }
  if (id == "wss_direct" || id == "wss_proxy") {
    return addRemedy("wss", fmt::format("Allow WebSocket upgrades (Upgrade: websocket) to {} on "
                                        "TCP {}{}: the call's signaling runs over a WebSocket.",
                                        host, https, id == "wss_proxy" ? " in the proxy" : ""));
  }
  if (id == "proxy") {
    return addRemedy("proxy", fmt::format("The proxy {} does not work{}: fix the proxy setting "
                                          "(HTTPS_PROXY, PAC) or allow TCP {} out to {} directly.",
                                          proxyOf(check), summary, https, host));
  }
  if (id == "nat_behaviour" || id == "host_candidates") {
    const std::string relay = contract_.relayPorts.empty()
                                  ? fmt::format("UDP {}", stun)
                                  : fmt::format("UDP {} and UDP {}", stun, contract_.relayPorts);
    return addRemedy(id,
                     fmt::format("{}{}: participants cannot exchange media directly and go "
                                 "through the relay; allow {} out to {} so the relay is "
                                 "reached over UDP.",
                                 id == "nat_behaviour" ? "The NAT limits direct connections"
                                                       : "The browser offers no local addresses",
                                 summary, relay, to));
  }
  if (id == "path_quality") {
    const auto rtt = number(check.details, "rttMs");
    const auto jitter = number(check.details, "jitterMs");
    const auto loss = number(check.details, "lossPercent");
    std::string measured;
    if (rtt) measured += fmt::format("round trip {} ms", rounded(*rtt));
    if (jitter)
      measured += fmt::format("{}jitter {} ms", measured.empty() ? "" : ", ", rounded(*jitter));
    if (loss) measured += fmt::format("{}loss {:.1f} %", measured.empty() ? "" : ", ", *loss);
    if (measured.empty()) measured = check.summary;
    return addRemedy(
        "path_quality",
        fmt::format("The path to the server is poor ({}; calls need under 150 ms, 30 ms and 1 "
                    "%): give traffic to {} on UDP {}{} priority (QoS) and keep it off VPNs and "
                    "saturated links.",
                    measured, to, stun,
                    contract_.relayPorts.empty() ? "" : " and UDP " + contract_.relayPorts));
  }
  if (isBandwidth(id)) {
    for (const auto& [key, direction] :
         std::array<std::pair<std::string_view, std::string_view>, 3>{
             {{"upKbps", "up (to the server)"},
              {"downKbps", "down (from the server)"},
              {"kbps", ""}}}) {
      if (id == "bandwidth_up" && key != "upKbps") continue;
      if (id == "bandwidth_down" && key != "downKbps") continue;
      if (id == "bandwidth" && key == "kbps" &&
          (number(check.details, "upKbps") || number(check.details, "downKbps"))) {
        continue;
      }
      const auto measured = rate(check, key);
      if (!measured || measured->streams >= 2) continue;
      const std::string_view way = id == "bandwidth_up" ? "up (to the server)"
                                   : id == "bandwidth_down"
                                       ? "down (from the server)"
                                       : (direction.empty() ? "through the relay" : direction);
      const std::string figure =
          measured->kbps ? fmt::format("{} kbit/s", rounded(*measured->kbps)) : "a rate";
      addRemedy(fmt::format("{}:{}", id, key),
                fmt::format("Only {} get through {}, enough for {}; a video call needs at least "
                            "two each way: raise the bandwidth for traffic to {} or exempt it from "
                            "shaping.",
                            figure, way, streamsPhrase(measured->streams), to));
    }
    return;
  }
  if (id == "camera" || id == "microphone") {
    const bool camera = id == "camera";
    return addRemedy(
        id, fmt::format("The browser may not use the {}{}: allow {} to use it in the "
                        "browser's site settings, or by the policy {} "
                        "(https://{}).",
                        camera ? "camera" : "microphone", summary, host,
                        camera ? "VideoCaptureAllowedUrls" : "AudioCaptureAllowedUrls", host));
  }
  if (id == "browser" || id == "codecs") {
    return addRemedy("browser",
                     fmt::format("This browser cannot take part in calls{}: use a current Chrome, "
                                 "Edge, Firefox or Safari.",
                                 summary));
  }
  if (id == "url") return;  // the headline says it; nothing for an IT admin to open
  const std::string& title = check.title.empty() ? check.id : check.title;
  addRemedy(id, fmt::format("Check '{}' {}{}.", title,
                            check.verdict == Verdict::Fail ? "failed" : "warned", summary));
}

std::string Grader::blockedHeadline() const {
  const std::string host = domain();
  if (const CheckResult* url = find("url"); isFailed(url)) {
    return url->summary.empty() ? "The address is not an https URL of a host."
                                : fmt::format("The address is not usable: {}.", url->summary);
  }
  if (const CheckResult* https = find("https"); isFailed(https) && https->failure == "not_parley") {
    return fmt::format("{} does not answer as Parley, so calls cannot be checked there.",
                       contract_.url.empty() ? host : contract_.url);
  }
  if (failed("dns")) return fmt::format("{} does not resolve on this network.", host);
  if (const CheckResult* check = failedWith("proxy_auth_required")) {
    return fmt::format("The proxy {} requires authentication (407), so calls cannot connect.",
                       proxyOf(*check));
  }
  if (const CheckResult* check = failedWith("proxy_refused")) {
    return fmt::format("The proxy {} refuses to connect to {}, so calls cannot connect.",
                       proxyOf(*check), host);
  }
  if (failed("https")) {
    return fmt::format("{} cannot be reached over HTTPS (TCP {}), so calls cannot connect.", host,
                       contract_.httpsPort);
  }
  if (failed("wss_direct") || failed("wss_proxy")) {
    return fmt::format("The signaling WebSocket to {} is blocked, so calls cannot connect.", host);
  }
  return "Signaling works, but no media can pass: every STUN and TURN transport is blocked.";
}

Assessment Grader::run() {
  Assessment result;
  for (const CheckResult& check : checks_) {
    if (matters(check)) remedyFor(check);
  }
  result.remedies = remedies_;

  // Blocked: a usage error, no signaling, or no media path.
  const bool wssOk = ok("wss_direct") || ok("wss_proxy");
  const bool wssFailed = !wssOk && (failed("wss_direct") || failed("wss_proxy"));
  constexpr std::array kMediaIds{"turn_udp",  "turn_tcp",        "turn_tls",
                                 "turn_dtls", "turn_tls_443",    "turn_tls_443_proxy",
                                 "stun_udp",  "srflx_candidates"};
  bool mediaOk = false;
  bool mediaFailed = false;
  for (const char* id : kMediaIds) {
    mediaOk = mediaOk || ok(id);
    mediaFailed = mediaFailed || failed(id);
  }
  if (failed("url") || failed("https") || wssFailed || (!mediaOk && mediaFailed)) {
    result.grade = Grade::Blocked;
    result.headline = blockedHeadline();
    return result;
  }
  if (!mediaOk) {
    result.grade = Grade::Works;
    result.headline = "Signaling works; no media path was tested, so calls may still fail.";
    return result;
  }

  // Reduced: less than one stream either way, or a failed path quality.
  std::optional<Rate> up, down;
  if (const CheckResult* check = find("bandwidth_up")) up = rate(*check, "upKbps");
  if (const CheckResult* check = find("bandwidth_down")) down = rate(*check, "downKbps");
  if (const CheckResult* check = find("bandwidth")) {
    if (!up) up = rate(*check, "upKbps");
    if (!down) down = rate(*check, "downKbps");
  }
  const auto lowest = [&]() -> std::optional<Rate> {
    if (up && down) return up->streams <= down->streams ? up : down;
    return up ? up : down;
  }();
  const CheckResult* path = find("path_quality");
  if (lowest && lowest->streams < 1) {
    result.grade = Grade::Reduced;
    const bool upIsLow = up && up->streams < 1;
    const Rate& low = upIsLow ? *up : *down;
    if (low.kbps) {
      result.headline = fmt::format(
          "Calls work with reduced quality: only {} kbit/s get through {}, less than "
          "one video stream of {} kbit/s.",
          rounded(*low.kbps), upIsLow ? "up" : "down", kStreamKbps);
    } else {
      result.headline = fmt::format(
          "Calls work with reduced quality: the way {} carries less than one video stream of {} "
          "kbit/s.",
          upIsLow ? "up" : "down", kStreamKbps);
    }
    return result;
  }
  if (isFailed(path)) {
    result.grade = Grade::Reduced;
    result.headline =
        fmt::format("Calls work with reduced quality: the path to the server is poor ({}).",
                    path->summary.empty() ? "too much delay or loss" : path->summary);
    return result;
  }

  // Works: media only over TCP/TLS, or anything else flagged, or not enough measured for best.
  const bool udp = ok("turn_udp") || ok("stun_udp") || ok("srflx_candidates") || ok("turn_dtls");
  if (!udp) {
    result.grade = Grade::Works;
    const bool plainTcp = ok("turn_tcp") || ok("turn_tls");
    if (plainTcp) {
      result.headline =
          "Calls work, but only over TCP: media is relayed over TCP, which adds delay "
          "under packet loss.";
    } else {
      result.headline = fmt::format(
          "Calls work, but only over TLS on port {}{}: media is relayed over TCP, which adds delay "
          "under packet loss.",
          contract_.httpsPort,
          ok("turn_tls_443") || !ok("turn_tls_443_proxy") ? "" : " through the proxy");
    }
    return result;
  }
  bool flagged = false;
  for (const CheckResult& check : checks_) {
    flagged = flagged || matters(check);
  }
  if (flagged) {
    result.grade = Grade::Works;
    if (const CheckResult* tls = find("tls_443"); isFailed(tls) && tls->failure == "intercepted") {
      result.headline =
          fmt::format("Calls work, but TLS to {} is inspected (certificate issued by '{}').",
                      domain(), issuerOf(*tls));
    } else if (lowest && lowest->streams < 2) {
      result.headline = fmt::format(
          "Calls work, but the bandwidth carries only one video stream of {} kbit/s in one "
          "direction.",
          kStreamKbps);
    } else if (isFlagged(path)) {
      result.headline =
          "Calls work, but the path to the server has noticeable delay, jitter or "
          "loss.";
    } else {
      result.headline = "Calls work over UDP, but some checks failed: see the remedies.";
    }
    return result;
  }
  if (!up || !down) {
    result.grade = Grade::Works;
    result.headline = "Calls work over UDP; the bandwidth was not measured.";
    return result;
  }
  result.grade = Grade::Best;
  result.headline =
      "Calls work with the best experience: media flows over UDP, the path is good "
      "and there is room for at least two video streams each way.";
  return result;
}

}  // namespace

Assessment assess(const std::vector<CheckResult>& checks, const Contract& contract) {
  return Grader(checks, contract).run();
}

// ---------------------------------------------------------------------------------------------
// JSON

nlohmann::json toJson(const CheckResult& check) {
  return {
      {"id", check.id},
      {"title", check.title},
      {"verdict", toString(check.verdict)},
      {"durationMs", check.duration.count()},
      {"summary", check.summary},
      {"failure", check.failure},
      {"target", check.target},
      {"details", check.details.is_object() ? check.details : nlohmann::json::object()},
  };
}

nlohmann::json toJson(const Report& report) {
  nlohmann::json checks = nlohmann::json::array();
  for (const CheckResult& check : report.checks)
    checks.push_back(toJson(check));
  return {
      {"version", kReportVersion},
      {"url", report.url},
      {"client", report.client},
      {"startedAt", report.startedAt},
      {"durationMs", report.duration.count()},
      {"proxy", report.proxy ? nlohmann::json(*report.proxy) : nlohmann::json(nullptr)},
      {"grade", toString(report.assessment.grade)},
      {"gradeTitle", gradeTitle(report.assessment.grade)},
      {"headline", report.assessment.headline},
      {"remedies", report.assessment.remedies},
      {"checks", std::move(checks)},
  };
}

namespace {

constexpr std::size_t kMaxIdBytes = 40;
constexpr std::size_t kMaxTitleBytes = 200;
constexpr std::size_t kMaxSummaryBytes = 500;
constexpr std::size_t kMaxFailureBytes = 40;
constexpr std::size_t kMaxTargetBytes = 200;
constexpr std::size_t kMaxDetailsBytes = 4096;
constexpr double kMaxDurationMs = 24.0 * 3600 * 1000;

bool isCheckId(std::string_view id) {
  if (id.empty() || id.size() > kMaxIdBytes) return false;
  return std::all_of(id.begin(), id.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
  });
}

// Reads an optional bounded string member; an error names it.
tl::expected<std::string, std::string> boundedString(const nlohmann::json& check,
                                                     std::string_view key, std::size_t limit,
                                                     const std::string& where) {
  const auto it = check.find(key);
  if (it == check.end() || it->is_null()) return std::string();
  if (!it->is_string()) return tl::unexpected(fmt::format("{}.{} must be a string", where, key));
  const std::string& value = it->get_ref<const std::string&>();
  if (value.size() > limit) {
    return tl::unexpected(fmt::format("{}.{} must be at most {} bytes", where, key, limit));
  }
  return value;
}

tl::expected<CheckResult, std::string> checkFromJson(const nlohmann::json& json,
                                                     const std::string& where) {
  if (!json.is_object()) return tl::unexpected(where + " must be an object");
  CheckResult check;
  const auto id = json.find("id");
  if (id == json.end() || !id->is_string() || !isCheckId(id->get_ref<const std::string&>())) {
    return tl::unexpected(where + ".id must be 1 to 40 of a-z, 0-9 and _");
  }
  check.id = id->get<std::string>();
  const auto verdict = json.find("verdict");
  const auto parsed = verdict != json.end() && verdict->is_string()
                          ? parseVerdict(verdict->get_ref<const std::string&>())
                          : std::nullopt;
  if (!parsed) return tl::unexpected(where + ".verdict must be one of pass, warn, fail, skipped");
  check.verdict = *parsed;
  if (const auto duration = json.find("durationMs"); duration != json.end()) {
    const double ms = duration->is_number() ? duration->get<double>() : -1;
    if (!(ms >= 0 && ms <= kMaxDurationMs)) {
      return tl::unexpected(where + ".durationMs must be a number from 0 to 86400000");
    }
    check.duration = std::chrono::milliseconds(static_cast<std::int64_t>(std::llround(ms)));
  }
  for (const auto& [key, limit, field] :
       std::array<std::tuple<std::string_view, std::size_t, std::string CheckResult::*>, 4>{{
           {"title", kMaxTitleBytes, &CheckResult::title},
           {"summary", kMaxSummaryBytes, &CheckResult::summary},
           {"failure", kMaxFailureBytes, &CheckResult::failure},
           {"target", kMaxTargetBytes, &CheckResult::target},
       }}) {
    auto value = boundedString(json, key, limit, where);
    if (!value) return tl::unexpected(value.error());
    check.*field = std::move(*value);
  }
  if (const auto details = json.find("details"); details != json.end() && !details->is_null()) {
    if (!details->is_object()) return tl::unexpected(where + ".details must be an object");
    // Strings built in C++ may hold invalid UTF-8; replacing keeps dump() from throwing.
    const std::string dumped =
        details->dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    if (dumped.size() > kMaxDetailsBytes) {
      return tl::unexpected(
          fmt::format("{}.details must be at most {} bytes as JSON", where, kMaxDetailsBytes));
    }
    check.details = *details;
  }
  return check;
}

}  // namespace

tl::expected<std::vector<CheckResult>, std::string> checksFromJson(const nlohmann::json& report) {
  if (!report.is_object()) return tl::unexpected(std::string("the report must be a JSON object"));
  const auto checks = report.find("checks");
  if (checks == report.end() || !checks->is_array()) {
    return tl::unexpected(std::string("checks must be an array"));
  }
  if (checks->size() > kMaxPostedChecks) {
    return tl::unexpected(fmt::format("checks must hold at most {} checks", kMaxPostedChecks));
  }
  std::vector<CheckResult> result;
  result.reserve(checks->size());
  for (std::size_t i = 0; i < checks->size(); ++i) {
    auto check = checkFromJson((*checks)[i], fmt::format("checks[{}]", i));
    if (!check) return tl::unexpected(check.error());
    for (const CheckResult& earlier : result) {
      if (earlier.id == check->id) {
        return tl::unexpected(fmt::format("checks[{}].id '{}' appears twice", i, check->id));
      }
    }
    result.push_back(std::move(*check));
  }
  return result;
}

}  // namespace parley::netcheck
