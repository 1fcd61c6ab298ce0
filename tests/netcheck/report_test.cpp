// Grading and remedies for every network-lab scenario, the contract read from real
// `parley requirements --format json` output, and the report JSON both ways.
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <stdlib.h>
#include <sys/wait.h>

#include <parley/netcheck/report.hpp>

namespace parley::netcheck {
namespace {

using nlohmann::json;
using ::testing::AllOf;
using ::testing::Contains;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;

CheckResult check(std::string id, Verdict verdict, std::string failure = "",
                  json details = json::object()) {
  CheckResult result;
  result.id = std::move(id);
  result.title = result.id;
  result.verdict = verdict;
  result.failure = std::move(failure);
  result.details = std::move(details);
  return result;
}

// What `parley netcheck` reports on an open network (lab scenario 1): everything passes; what
// needs a proxy or a second server address is skipped.
std::vector<CheckResult> openNetwork() {
  return {
      check("url", Verdict::Pass),
      check("proxy", Verdict::Skipped),
      check("dns", Verdict::Pass),
      check("tcp_443", Verdict::Pass),
      check("tls_443", Verdict::Pass),
      check("https", Verdict::Pass),
      check("wss_direct", Verdict::Pass),
      check("wss_proxy", Verdict::Skipped),
      check("stun_udp", Verdict::Pass),
      check("stun_tcp", Verdict::Pass),
      check("nat_behaviour", Verdict::Skipped),
      check("turn_udp", Verdict::Pass),
      check("turn_tcp", Verdict::Pass),
      check("turn_tls", Verdict::Pass),
      check("turn_dtls", Verdict::Skipped),
      check("turn_tls_443", Verdict::Pass),
      check("turn_tls_443_proxy", Verdict::Skipped),
      check("path_quality", Verdict::Pass, "",
            {{"rttMs", 3.2}, {"jitterMs", 0.4}, {"lossPercent", 0}}),
      check("bandwidth_up", Verdict::Pass, "", {{"kbps", 9500}}),
      check("bandwidth_down", Verdict::Pass, "", {{"kbps", 9800}}),
  };
}

void set(std::vector<CheckResult>& checks, const std::string& id, Verdict verdict,
         std::string failure = "", json details = json::object(), std::string target = "") {
  for (auto& c : checks) {
    if (c.id == id) {
      c.verdict = verdict;
      c.failure = std::move(failure);
      c.details = std::move(details);
      c.target = std::move(target);
      return;
    }
  }
  ADD_FAILURE() << "no check " << id;
}

Contract singleNode() {
  Contract contract;
  contract.url = "https://parley.example.com";
  contract.domain = "parley.example.com";
  contract.addresses = {"203.0.113.10"};
  contract.relayPorts = "49152-65535";
  return contract;
}

json sampleRequirements() {
  std::ifstream in(std::string(PARLEY_NETCHECK_TEST_DIR) + "/requirements_sample.json");
  return json::parse(in);
}

std::string joined(const std::vector<std::string>& lines) {
  std::string out;
  for (const auto& line : lines)
    out += line + "\n";
  return out;
}

TEST(Verdicts, NamesRoundTrip) {
  for (const Verdict v : {Verdict::Pass, Verdict::Warn, Verdict::Fail, Verdict::Skipped}) {
    EXPECT_EQ(parseVerdict(toString(v)), v);
  }
  for (const Grade g : {Grade::Best, Grade::Works, Grade::Reduced, Grade::Blocked}) {
    EXPECT_EQ(parseGrade(toString(g)), g);
  }
  EXPECT_EQ(parseVerdict("PASS"), std::nullopt);
  EXPECT_EQ(parseGrade(""), std::nullopt);
  EXPECT_EQ(gradeTitle(Grade::Best), "Best experience");
  EXPECT_EQ(gradeTitle(Grade::Works), "Works");
  EXPECT_EQ(gradeTitle(Grade::Reduced), "Works with reduced quality");
  EXPECT_EQ(gradeTitle(Grade::Blocked), "Blocked");
}

TEST(StreamsCarried, FloorsAndRejectsNonsense) {
  EXPECT_EQ(streamsCarried(0), 0u);
  EXPECT_EQ(streamsCarried(999.9), 0u);
  EXPECT_EQ(streamsCarried(1000), 1u);
  EXPECT_EQ(streamsCarried(2999), 2u);
  EXPECT_EQ(streamsCarried(-5000), 0u);
  EXPECT_EQ(streamsCarried(std::nan("")), 0u);
  EXPECT_EQ(streamsCarried(std::numeric_limits<double>::infinity()),
            std::numeric_limits<unsigned>::max());
}

// Scenario 1: open networks.
TEST(Assess, OpenNetworkIsBest) {
  const Assessment a = assess(openNetwork(), singleNode());
  EXPECT_EQ(a.grade, Grade::Best);
  EXPECT_THAT(a.remedies, IsEmpty());
  EXPECT_THAT(a.headline, HasSubstr("UDP"));
}

// Scenario 2: UDP blocked, TCP open.
TEST(Assess, UdpBlockedWithTcp3478Works) {
  auto checks = openNetwork();
  set(checks, "stun_udp", Verdict::Fail, "timeout");
  set(checks, "turn_udp", Verdict::Fail, "timeout");
  const Assessment a = assess(checks, singleNode());
  EXPECT_EQ(a.grade, Grade::Works);
  EXPECT_THAT(a.headline, HasSubstr("only over TCP"));
  // One remedy for both UDP checks, naming port, protocol and address.
  EXPECT_THAT(a.remedies,
              ElementsAre("Allow UDP 3478 out to 203.0.113.10 (STUN/TURN): calls then use UDP, "
                          "which is faster than TCP."));
}

// Scenario 3: only TCP 443 out.
TEST(Assess, Only443Works) {
  auto checks = openNetwork();
  for (const char* id : {"stun_udp", "turn_udp", "stun_tcp", "turn_tcp", "turn_tls"}) {
    set(checks, id, Verdict::Fail, "timeout");
  }
  const Assessment a = assess(checks, singleNode());
  EXPECT_EQ(a.grade, Grade::Works);
  EXPECT_EQ(a.headline,
            "Calls work, but only over TLS on port 443: media is relayed over TCP, which adds "
            "delay under packet loss.");
  EXPECT_EQ(a.remedies.size(), 3u) << joined(a.remedies);
  EXPECT_THAT(joined(a.remedies), HasSubstr("Allow UDP 3478 out to 203.0.113.10"));
  EXPECT_THAT(joined(a.remedies), HasSubstr("Allow TCP 3478 out to 203.0.113.10"));
  EXPECT_THAT(joined(a.remedies), HasSubstr("Allow TCP 5349 out to 203.0.113.10 (TURN over TLS)"));
}

std::vector<CheckResult> proxyOnly() {
  auto checks = openNetwork();
  set(checks, "proxy", Verdict::Pass, "", {{"proxy", "10.10.0.1:3128"}}, "tcp 10.10.0.1:3128");
  set(checks, "tcp_443", Verdict::Skipped);
  set(checks, "wss_direct", Verdict::Fail, "timeout");
  set(checks, "wss_proxy", Verdict::Pass);
  for (const char* id : {"stun_udp", "turn_udp", "stun_tcp", "turn_tcp", "turn_tls"}) {
    set(checks, id, Verdict::Fail, "timeout");
  }
  set(checks, "turn_tls_443", Verdict::Fail, "timeout");
  set(checks, "turn_tls_443_proxy", Verdict::Pass);
  return checks;
}

// Scenario: the proxy is the only way out. Direct WebSocket and TURN fail, through the proxy
// they work: signaling works, media over TLS 443 through the proxy.
TEST(Assess, ProxyOnlyWorks) {
  const Assessment a = assess(proxyOnly(), singleNode());
  EXPECT_EQ(a.grade, Grade::Works);
  EXPECT_THAT(a.headline, HasSubstr("only over TLS on port 443 through the proxy"));
  // The direct attempts are not what browsers do here: no remedy for them.
  EXPECT_THAT(joined(a.remedies), Not(HasSubstr("WebSocket")));
  EXPECT_THAT(joined(a.remedies), Not(HasSubstr("Allow TCP 443")));
  EXPECT_THAT(joined(a.remedies), HasSubstr("Allow UDP 3478 out to 203.0.113.10"));
}

// Scenario: the proxy demands authentication.
TEST(Assess, Proxy407IsBlockedAndNamesTheProxy) {
  auto checks = proxyOnly();
  set(checks, "https", Verdict::Fail, "proxy_auth_required");
  set(checks, "wss_proxy", Verdict::Fail, "proxy_auth_required");
  set(checks, "turn_tls_443_proxy", Verdict::Fail, "proxy_auth_required", json::object(),
      "tcp 10.10.0.1:3128 (proxy)");
  for (const char* id : {"path_quality", "bandwidth_up", "bandwidth_down"}) {
    set(checks, id, Verdict::Skipped);
  }
  const Assessment a = assess(checks, singleNode());
  EXPECT_EQ(a.grade, Grade::Blocked);
  EXPECT_THAT(a.headline, AllOf(HasSubstr("10.10.0.1:3128"), HasSubstr("407")));
  EXPECT_THAT(a.remedies, Contains("The proxy 10.10.0.1:3128 requires authentication (407): exempt "
                                   "parley.example.com (TCP 443) from proxy authentication."));
  // Three checks met the 407; one remedy says it.
  EXPECT_EQ(std::count_if(a.remedies.begin(), a.remedies.end(),
                          [](const std::string& r) { return r.find("407") != r.npos; }),
            1);
}

TEST(Assess, ProxyRefusingConnectIsNamed) {
  auto checks = proxyOnly();
  set(checks, "wss_proxy", Verdict::Fail, "proxy_refused", {{"proxy", "10.10.0.1:3128"}});
  set(checks, "turn_tls_443_proxy", Verdict::Fail, "proxy_refused");
  const Assessment a = assess(checks, singleNode());
  EXPECT_EQ(a.grade, Grade::Blocked);
  EXPECT_THAT(a.headline, HasSubstr("refuses"));
  EXPECT_THAT(joined(a.remedies),
              HasSubstr("The proxy 10.10.0.1:3128 refuses CONNECT to parley.example.com"));
}

// Scenario: TLS interception on 443 while media goes over UDP.
TEST(Assess, InterceptionWorksAndNamesTheIssuer) {
  auto checks = openNetwork();
  set(checks, "tls_443", Verdict::Fail, "intercepted", {{"issuer", "mitmproxy"}});
  set(checks, "turn_tls_443", Verdict::Fail, "protocol");
  const Assessment a = assess(checks, singleNode());
  EXPECT_EQ(a.grade, Grade::Works);
  EXPECT_THAT(a.headline, HasSubstr("mitmproxy"));
  // TURN on 443 fails because of the interception: one remedy for both.
  EXPECT_THAT(a.remedies, ElementsAre("Exempt parley.example.com from TLS inspection: the "
                                      "certificate seen was issued by 'mitmproxy' instead of the "
                                      "server's own."));
}

// Scenario: the link is shaped to less than one stream up.
TEST(Assess, LowBandwidthIsReducedAndNamesTheStreams) {
  auto checks = openNetwork();
  set(checks, "bandwidth_up", Verdict::Fail, "", {{"kbps", 612.4}});
  const Assessment a = assess(checks, singleNode());
  EXPECT_EQ(a.grade, Grade::Reduced);
  EXPECT_THAT(a.headline, HasSubstr("612 kbit/s"));
  EXPECT_THAT(a.remedies, ElementsAre(AllOf(HasSubstr("612 kbit/s"), HasSubstr("up"),
                                            HasSubstr("less than one video stream of 1000 kbit/s"),
                                            HasSubstr("203.0.113.10"))));
}

TEST(Assess, OneStreamEachWayWorksButIsNotBest) {
  auto checks = openNetwork();
  set(checks, "bandwidth_down", Verdict::Warn, "", {{"kbps", 1500}});
  const Assessment a = assess(checks, singleNode());
  EXPECT_EQ(a.grade, Grade::Works);
  EXPECT_THAT(a.remedies, ElementsAre(AllOf(HasSubstr("1500 kbit/s"), HasSubstr("down"),
                                            HasSubstr("one video stream of 1000 kbit/s"))));
}

TEST(Assess, BandwidthFigureOutranksTheClientsVerdict) {
  auto checks = openNetwork();
  // A client that passed 800 kbit/s: the figure decides.
  set(checks, "bandwidth_down", Verdict::Pass, "", {{"kbps", 800}});
  EXPECT_EQ(assess(checks, singleNode()).grade, Grade::Reduced);
}

TEST(Assess, BadPathQualityIsReducedAndWarnIsWorks) {
  auto checks = openNetwork();
  set(checks, "path_quality", Verdict::Fail, "",
      {{"rttMs", 480.0}, {"jitterMs", 12.0}, {"lossPercent", 7.5}});
  Assessment a = assess(checks, singleNode());
  EXPECT_EQ(a.grade, Grade::Reduced);
  EXPECT_THAT(a.remedies, ElementsAre(AllOf(HasSubstr("round trip 480 ms"), HasSubstr("loss 7.5 %"),
                                            HasSubstr("UDP 3478"), HasSubstr("UDP 49152-65535"))));
  set(checks, "path_quality", Verdict::Warn, "", {{"rttMs", 180.0}});
  a = assess(checks, singleNode());
  EXPECT_EQ(a.grade, Grade::Works);
  EXPECT_THAT(joined(a.remedies), HasSubstr("round trip 180 ms"));
}

// Scenario: nothing gets out.
TEST(Assess, NothingReachableIsBlocked) {
  std::vector<CheckResult> checks = {
      check("url", Verdict::Pass),           check("proxy", Verdict::Skipped),
      check("dns", Verdict::Pass),           check("tcp_443", Verdict::Fail, "timeout"),
      check("tls_443", Verdict::Skipped),    check("https", Verdict::Fail, "timeout"),
      check("wss_direct", Verdict::Skipped), check("stun_udp", Verdict::Fail, "timeout"),
      check("turn_udp", Verdict::Skipped),
  };
  const Assessment a = assess(checks, singleNode());
  EXPECT_EQ(a.grade, Grade::Blocked);
  EXPECT_THAT(a.headline, HasSubstr("HTTPS"));
  EXPECT_THAT(joined(a.remedies),
              HasSubstr("Allow TCP 443 out to parley.example.com (203.0.113.10)"));
  EXPECT_THAT(joined(a.remedies), HasSubstr("Allow UDP 3478 out to 203.0.113.10"));
  // HTTPS failing follows from TCP 443: no second remedy for it.
  EXPECT_EQ(a.remedies.size(), 2u) << joined(a.remedies);
}

TEST(Assess, BlockedWithoutAnyMediaPath) {
  auto checks = openNetwork();
  for (const char* id :
       {"stun_udp", "turn_udp", "stun_tcp", "turn_tcp", "turn_tls", "turn_tls_443"}) {
    set(checks, id, Verdict::Fail, "timeout");
  }
  for (const char* id : {"path_quality", "bandwidth_up", "bandwidth_down"}) {
    set(checks, id, Verdict::Skipped);
  }
  const Assessment a = assess(checks, singleNode());
  EXPECT_EQ(a.grade, Grade::Blocked);
  EXPECT_THAT(a.headline, HasSubstr("no media"));
}

TEST(Assess, UrlErrorIsBlockedWithItsMessage) {
  auto url = check("url", Verdict::Fail, "protocol");
  url.summary = "'ftp://x' is not an https URL";
  const Assessment a = assess({url}, Contract{});
  EXPECT_EQ(a.grade, Grade::Blocked);
  EXPECT_EQ(a.headline, "The address is not usable: 'ftp://x' is not an https URL.");
  EXPECT_THAT(a.remedies, IsEmpty());
}

TEST(Assess, NotParleyIsBlocked) {
  auto checks = openNetwork();
  set(checks, "https", Verdict::Fail, "not_parley");
  const Assessment a = assess(checks, singleNode());
  EXPECT_EQ(a.grade, Grade::Blocked);
  EXPECT_EQ(a.headline,
            "https://parley.example.com does not answer as Parley, so calls cannot "
            "be checked there.");
}

TEST(Assess, DnsFailureIsBlocked) {
  std::vector<CheckResult> checks = {
      check("url", Verdict::Pass), check("dns", Verdict::Fail, "dns"),
      check("tcp_443", Verdict::Skipped), check("https", Verdict::Fail, "dns")};
  Contract contract;
  contract.url = "https://parley.example.com";
  contract.domain = "parley.example.com";
  const Assessment a = assess(checks, contract);
  EXPECT_EQ(a.grade, Grade::Blocked);
  EXPECT_EQ(a.headline, "parley.example.com does not resolve on this network.");
  EXPECT_THAT(a.remedies, ElementsAre(HasSubstr("let the DNS resolvers answer for "
                                                "parley.example.com")));
}

TEST(Assess, WebSocketBlockedIsBlocked) {
  auto checks = openNetwork();
  set(checks, "wss_direct", Verdict::Fail, "http_status");
  const Assessment a = assess(checks, singleNode());
  EXPECT_EQ(a.grade, Grade::Blocked);
  EXPECT_THAT(a.remedies, ElementsAre(HasSubstr("Allow WebSocket upgrades (Upgrade: websocket) "
                                                "to parley.example.com")));
}

TEST(Assess, SkippedChecksNeverCountAsFailures) {
  auto checks = openNetwork();
  for (const char* id : {"stun_tcp", "turn_tcp", "turn_tls", "turn_tls_443"}) {
    set(checks, id, Verdict::Skipped, "timeout");  // a failure code on a skip is ignored
  }
  EXPECT_EQ(assess(checks, singleNode()).grade, Grade::Best);
}

TEST(Assess, BrowserIdsAreGraded) {
  std::vector<CheckResult> checks = {
      check("browser", Verdict::Pass),
      check("camera", Verdict::Fail, "denied"),
      check("microphone", Verdict::Pass),
      check("codecs", Verdict::Pass),
      check("wss_direct", Verdict::Pass),
      check("host_candidates", Verdict::Pass),
      check("srflx_candidates", Verdict::Fail, "timeout"),
      check("turn_udp", Verdict::Fail, "timeout"),
      check("turn_tcp", Verdict::Pass),
      check("turn_tls", Verdict::Pass),
      check("turn_tls_443", Verdict::Pass),
      check("bandwidth", Verdict::Pass, "", {{"upKbps", 4000}, {"downKbps", 5000}}),
  };
  Assessment a = assess(checks, singleNode());
  EXPECT_EQ(a.grade, Grade::Works);
  EXPECT_THAT(joined(a.remedies), AllOf(HasSubstr("Allow UDP 3478 out to 203.0.113.10"),
                                        HasSubstr("camera"), HasSubstr("VideoCaptureAllowedUrls")));

  checks[6].verdict = Verdict::Pass;  // srflx
  checks[7].verdict = Verdict::Pass;  // turn_udp
  checks[1].verdict = Verdict::Pass;  // camera
  EXPECT_EQ(assess(checks, singleNode()).grade, Grade::Best);

  checks[11].details = {{"upKbps", 4000}, {"downKbps", 700}};
  a = assess(checks, singleNode());
  EXPECT_EQ(a.grade, Grade::Reduced);
  EXPECT_THAT(joined(a.remedies), AllOf(HasSubstr("700 kbit/s"), HasSubstr("down")));

  checks[11].details = json::object();
  checks[3] = check("codecs", Verdict::Fail, "unsupported");
  checks[3].summary = "neither H.264 nor VP8";
  a = assess(checks, singleNode());
  EXPECT_EQ(a.grade, Grade::Works);
  EXPECT_THAT(joined(a.remedies),
              AllOf(HasSubstr("neither H.264 nor VP8"), HasSubstr("current Chrome")));
}

TEST(Assess, RemediesNameEveryAddressOfAMultiNodeContract) {
  const auto contract = contractFromRequirements(sampleRequirements());
  ASSERT_TRUE(contract) << contract.error();
  auto checks = openNetwork();
  set(checks, "stun_udp", Verdict::Fail, "timeout");
  set(checks, "turn_udp", Verdict::Fail, "timeout");
  const Assessment a = assess(checks, *contract);
  ASSERT_EQ(a.remedies.size(), 1u);
  EXPECT_EQ(a.remedies[0],
            "Allow UDP 3478 out to 203.0.113.10, 2001:db8:10::10, 198.51.100.0/28, "
            "2001:db8:20::/64, 203.0.113.64/27, 192.0.2.128/26 and 2001:db8:30::/48 (STUN/TURN): "
            "calls then use UDP, which is faster than TCP.");
}

TEST(Assess, WithoutAddressesRemediesNameTheDomain) {
  Contract contract;
  contract.url = "https://meet.example.org";
  contract.domain = "meet.example.org";
  auto checks = openNetwork();
  set(checks, "turn_tls", Verdict::Fail, "timeout");
  const Assessment a = assess(checks, contract);
  EXPECT_EQ(a.grade, Grade::Works);
  EXPECT_THAT(a.remedies, ElementsAre(HasSubstr("Allow TCP 5349 out to meet.example.org")));
}

TEST(Contract, FromRealRequirementsOutput) {
  const auto contract = contractFromRequirements(sampleRequirements());
  ASSERT_TRUE(contract) << contract.error();
  EXPECT_EQ(contract->url, "https://meet.example.com");
  EXPECT_EQ(contract->domain, "meet.example.com");
  EXPECT_EQ(contract->httpsPort, 443);
  EXPECT_EQ(contract->stunPort, 3478);
  EXPECT_EQ(contract->tlsPort, 5349);
  EXPECT_EQ(contract->relayPorts, "40000-44999");
  EXPECT_THAT(contract->addresses,
              ElementsAre("203.0.113.10", "2001:db8:10::10", "198.51.100.0/28", "2001:db8:20::/64",
                          "203.0.113.64/27", "192.0.2.128/26", "2001:db8:30::/48"));
}

TEST(Contract, SingleHostsLoseTheirLengthAndMediaNodesAreLeftOut) {
  const json requirements = {
      {"version", 1},
      {"url", "https://203.0.113.10:8443"},
      {"domain", nullptr},
      {"ports",
       {{{"id", "https"}, {"port", 8443}},
        {{"id", "stun-tcp"}, {"port", 3479}},
        {{"id", "turn-dtls"}, {"port", 5350}},
        {{"id", "turn-relay"}, {"port", 50000}}}},
      {"nodes",
       {{{"role", "main"}, {"addresses", {"203.0.113.10/32", "2001:db8::1/128", "2001:db8::/64"}}},
        {{"role", "media"}, {"addresses", {"198.51.100.1"}}},
        {{"role", "turn"}, {"addresses", {"203.0.113.10"}}}}},
  };
  const auto contract = contractFromRequirements(requirements);
  ASSERT_TRUE(contract) << contract.error();
  EXPECT_EQ(contract->domain, "");
  EXPECT_EQ(contract->httpsPort, 8443);
  EXPECT_EQ(contract->stunPort, 3479);
  EXPECT_EQ(contract->tlsPort, 5350);
  EXPECT_EQ(contract->relayPorts, "50000");
  EXPECT_THAT(contract->addresses, ElementsAre("203.0.113.10", "2001:db8::1", "2001:db8::/64"));
}

TEST(Contract, MissingPiecesKeepDefaultsAndWrongTypesAreNamed) {
  auto contract = contractFromRequirements(json{{"url", "https://a.example"}});
  ASSERT_TRUE(contract);
  EXPECT_EQ(contract->domain, "a.example");
  EXPECT_EQ(contract->stunPort, 3478);
  EXPECT_EQ(contractFromRequirements(json::array()).error(),
            "the requirements must be a JSON object");
  EXPECT_EQ(contractFromRequirements(json{{"version", 2}}).error(),
            "requirements version is not 1, the version understood");
  EXPECT_EQ(contractFromRequirements(json{{"url", "http://a"}}).error(),
            "url must be an https URL of a host");
  EXPECT_EQ(contractFromRequirements(json{{"ports", {{{"id", "https"}, {"port", 70000}}}}}).error(),
            "ports[0].port must be a port number");
  EXPECT_EQ(
      contractFromRequirements(json{{"nodes", {{{"role", "main"}, {"addresses", {1}}}}}}).error(),
      "nodes[0].addresses[0] must be a string");
}

Report sampleReport() {
  Report report;
  report.url = "https://parley.example.com";
  report.client = "parley-netcheck 0.4.0";
  report.startedAt = "2026-11-24T12:00:00Z";
  report.duration = std::chrono::milliseconds(23456);
  report.proxy = "http://10.10.0.1:3128";
  report.checks = proxyOnly();
  report.checks[0].summary = "https://parley.example.com";
  report.checks[0].duration = std::chrono::milliseconds(1);
  report.checks[1].target = "tcp 10.10.0.1:3128";
  report.assessment = assess(report.checks, singleNode());
  return report;
}

TEST(ReportJson, HasTheDocumentedShape) {
  const json j = toJson(sampleReport());
  EXPECT_EQ(j["version"], 1);
  EXPECT_EQ(j["grade"], "works");
  EXPECT_EQ(j["gradeTitle"], "Works");
  EXPECT_EQ(j["proxy"], "http://10.10.0.1:3128");
  EXPECT_EQ(j["durationMs"], 23456);
  EXPECT_EQ(j["checks"].size(), proxyOnly().size());
  EXPECT_EQ(j["checks"][0]["verdict"], "pass");
  EXPECT_EQ(j["checks"][0]["durationMs"], 1);
  Report without = sampleReport();
  without.proxy.reset();
  EXPECT_TRUE(toJson(without)["proxy"].is_null());
}

TEST(ReportJson, ChecksRoundTrip) {
  const Report report = sampleReport();
  const auto checks = checksFromJson(json::parse(toJson(report).dump()));
  ASSERT_TRUE(checks) << checks.error();
  ASSERT_EQ(checks->size(), report.checks.size());
  for (std::size_t i = 0; i < checks->size(); ++i) {
    EXPECT_EQ((*checks)[i].id, report.checks[i].id);
    EXPECT_EQ((*checks)[i].verdict, report.checks[i].verdict);
    EXPECT_EQ((*checks)[i].duration, report.checks[i].duration);
    EXPECT_EQ((*checks)[i].summary, report.checks[i].summary);
    EXPECT_EQ((*checks)[i].failure, report.checks[i].failure);
    EXPECT_EQ((*checks)[i].target, report.checks[i].target);
    EXPECT_EQ((*checks)[i].details, report.checks[i].details);
  }
  // Graded again from JSON, the same verdict (what POST /api/v1/netcheck/grade does).
  EXPECT_EQ(assess(*checks, singleNode()).remedies, report.assessment.remedies);
}

std::string errorOf(const json& report) {
  const auto checks = checksFromJson(report);
  return checks ? "(accepted)" : checks.error();
}

json withCheck(json check) {
  return {{"checks", json::array({std::move(check)})}};
}

TEST(ReportJson, StrictChecksNameTheField) {
  EXPECT_EQ(errorOf(json::array()), "the report must be a JSON object");
  EXPECT_EQ(errorOf(json::object()), "checks must be an array");
  EXPECT_EQ(errorOf({{"checks", "x"}}), "checks must be an array");
  EXPECT_EQ(errorOf(withCheck(1)), "checks[0] must be an object");
  EXPECT_EQ(errorOf(withCheck({{"id", "Bad-Id"}, {"verdict", "pass"}})),
            "checks[0].id must be 1 to 40 of a-z, 0-9 and _");
  EXPECT_EQ(errorOf(withCheck({{"id", std::string(41, 'a')}, {"verdict", "pass"}})),
            "checks[0].id must be 1 to 40 of a-z, 0-9 and _");
  EXPECT_EQ(errorOf(withCheck({{"id", "dns"}, {"verdict", "ok"}})),
            "checks[0].verdict must be one of pass, warn, fail, skipped");
  EXPECT_EQ(errorOf(withCheck({{"id", "dns"}, {"verdict", "pass"}, {"durationMs", -1}})),
            "checks[0].durationMs must be a number from 0 to 86400000");
  EXPECT_EQ(errorOf(withCheck({{"id", "dns"}, {"verdict", "pass"}, {"durationMs", "5"}})),
            "checks[0].durationMs must be a number from 0 to 86400000");
  EXPECT_EQ(
      errorOf(withCheck({{"id", "dns"}, {"verdict", "pass"}, {"summary", std::string(501, 'x')}})),
      "checks[0].summary must be at most 500 bytes");
  EXPECT_EQ(
      errorOf(withCheck({{"id", "dns"}, {"verdict", "fail"}, {"failure", std::string(41, 'x')}})),
      "checks[0].failure must be at most 40 bytes");
  EXPECT_EQ(errorOf(withCheck({{"id", "dns"}, {"verdict", "fail"}, {"target", 5}})),
            "checks[0].target must be a string");
  EXPECT_EQ(errorOf(withCheck({{"id", "dns"}, {"verdict", "pass"}, {"details", json::array()}})),
            "checks[0].details must be an object");
  EXPECT_EQ(
      errorOf(withCheck(
          {{"id", "dns"}, {"verdict", "pass"}, {"details", {{"x", std::string(4100, 'x')}}}})),
      "checks[0].details must be at most 4096 bytes as JSON");
  json twice = {
      {"checks", {{{"id", "dns"}, {"verdict", "pass"}}, {{"id", "dns"}, {"verdict", "fail"}}}}};
  EXPECT_EQ(errorOf(twice), "checks[1].id 'dns' appears twice");
  json many = {{"checks", json::array()}};
  for (std::size_t i = 0; i <= kMaxPostedChecks; ++i) {
    many["checks"].push_back({{"id", "c" + std::to_string(i)}, {"verdict", "pass"}});
  }
  EXPECT_EQ(errorOf(many), "checks must hold at most 64 checks");
  many["checks"].erase(many["checks"].begin());
  EXPECT_EQ(errorOf(many), "(accepted)");
  // Only id and verdict are required; a fractional duration is rounded.
  const auto minimal =
      checksFromJson(withCheck({{"id", "dns"}, {"verdict", "warn"}, {"durationMs", 12.6}}));
  ASSERT_TRUE(minimal);
  EXPECT_EQ((*minimal)[0].duration, std::chrono::milliseconds(13));
  EXPECT_EQ((*minimal)[0].summary, "");
}

TEST(ReportJson, ValidatesAgainstTheSchema) {
  std::string dirTemplate =
      (std::filesystem::temp_directory_path() / "netcheck_schema_XXXXXX").string();
  ASSERT_NE(::mkdtemp(dirTemplate.data()), nullptr);
  const std::filesystem::path dir = dirTemplate;
  std::vector<Report> reports = {sampleReport()};
  reports.push_back(sampleReport());
  reports.back().proxy.reset();
  reports.back().checks = openNetwork();
  reports.back().assessment = assess(reports.back().checks, singleNode());
  // The schema rejects what it must too: a grade that is not one of the four.
  json bad = toJson(reports[0]);
  bad["grade"] = "great";
  std::string files;
  for (std::size_t i = 0; i < reports.size(); ++i) {
    const auto file = dir / ("good" + std::to_string(i) + ".json");
    std::ofstream(file) << toJson(reports[i]).dump(2);
    files += " '" + file.string() + "'";
  }
  std::ofstream(dir / "bad.json") << bad.dump();
  files += " '" + (dir / "bad.json").string() + "'";
  // One interpreter for every file: exit 0 when the schema is valid 2020-12, each good*.json
  // validates and each bad*.json does not.
  const std::string schema = std::string(PARLEY_SOURCE_DIR) + "/docs/netcheck.schema.json";
  const std::string command =
      "python3 -c 'import json,sys,os\n"
      "try: import jsonschema\n"
      "except ImportError: sys.exit(77)\n"
      "v=jsonschema.Draft202012Validator\n"
      "s=json.load(open(sys.argv[1])); v.check_schema(s)\n"
      "for f in sys.argv[2:]:\n"
      "  errors=list(v(s).iter_errors(json.load(open(f))))\n"
      "  good=os.path.basename(f).startswith(\"good\")\n"
      "  if good and errors: sys.exit(f + \": \" + str(errors[0]))\n"
      "  if not good and not errors: sys.exit(f + \": accepted\")\n' '" +
      schema + "'" + files;
  const int status = std::system(command.c_str());
  if (WIFEXITED(status) && WEXITSTATUS(status) == 77) {
    GTEST_SKIP() << "python3 jsonschema is not installed";
  }
  EXPECT_EQ(status, 0) << command;
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace parley::netcheck
