// The network check's results and how they are graded (docs/netcheck.md): one model for
// `parley netcheck` and for the /check page (which posts its results to the server to be graded
// by the same rules). Pure values: no I/O, no clock.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>
#include <tl/expected.hpp>

namespace parley::netcheck {

// The report's "version"; raised when a change would break a reader of version 1.
inline constexpr int kReportVersion = 1;
// Bandwidth planning per video stream, each way (PRODUCT.md).
inline constexpr unsigned kStreamKbps = 1000;

enum class Verdict : std::uint8_t { Pass, Warn, Fail, Skipped };
// Best experience / works / works with reduced quality / blocked.
enum class Grade : std::uint8_t { Best, Works, Reduced, Blocked };

std::string_view toString(Verdict verdict);  // "pass", "warn", "fail", "skipped"
std::optional<Verdict> parseVerdict(std::string_view text);
std::string_view toString(Grade grade);    // "best", "works", "reduced", "blocked"
std::string_view gradeTitle(Grade grade);  // "Best experience", "Works", ...
std::optional<Grade> parseGrade(std::string_view text);

// One check (ids and failure codes: docs/netcheck.md).
struct CheckResult {
  std::string id;     // "tls_443", "turn_udp", ...
  std::string title;  // "TURN over TLS 443", for people
  Verdict verdict = Verdict::Skipped;
  std::chrono::milliseconds duration{0};
  std::string summary;  // one line: "public address 198.51.100.7:40112", "timed out after 3 s"
  std::string failure;  // machine code when warn/fail: "timeout", "intercepted", ...; else ""
  std::string target;   // what was tried: "udp 203.0.113.10:3478", "tcp 10.10.0.1:3128 (proxy)"
  nlohmann::json details = nlohmann::json::object();  // per-check facts (numbers, addresses)
};

// The facts of the deployment a remedy names, from its published requirements JSON.
struct Contract {
  std::string url;                     // https://parley.example.com
  std::string domain;                  // "" when the URL names an address
  std::vector<std::string> addresses;  // the nodes' published addresses (or what DNS gave)
  std::uint16_t httpsPort = 443;
  std::uint16_t stunPort = 3478;  // UDP and TCP
  std::uint16_t tlsPort = 5349;   // TLS and DTLS
  std::string relayPorts;         // "49152-65535", "" when not published
};

// Reads a requirements document (docs/requirements.schema.json); missing pieces keep defaults.
tl::expected<Contract, std::string> contractFromRequirements(const nlohmann::json& requirements);

struct Assessment {
  Grade grade = Grade::Blocked;
  std::string headline;               // one sentence: "Calls work, but only over TCP ..."
  std::vector<std::string> remedies;  // for an IT admin, each naming port/protocol/address
};

// The grade and remedies for a set of results (rules in docs/netcheck.md), as implemented:
// - "ok" means pass or warn; a skipped or absent check counts neither way.
// - Superseded, so neither a remedy nor a downgrade: wss_direct and tcp_443 when wss_proxy is ok,
//   turn_tls_443 when turn_tls_443_proxy is ok (in a proxy-only network browsers use the proxy).
// - blocked: `url` failed; or `https` failed; or a wss_* check failed and none is ok (no
//   signaling); or no media check (turn_*, stun_udp, srflx_candidates) is ok and one failed.
// - works (untested media): signaling fine but no media check ran.
// - reduced: a bandwidth direction carries < 1 stream, or path_quality failed. Streams come
//   from details (bandwidth_up/bandwidth_down: "kbps"; browser bandwidth: "upKbps"/"downKbps",
//   else "kbps" for both), else from the verdict (fail < 1, warn < 2, pass >= 2).
// - works: no UDP path (turn_udp, stun_udp, srflx_candidates, turn_dtls none ok); or any other
//   check warned or failed (interception, TCP 3478, camera, path_quality warn, < 2 streams...);
//   or the bandwidth was not measured both ways.
// - best: otherwise.
// Remedies: one per warned/failed check that is not superseded, in check order, merged when two
// checks call for the same change (stun_udp + turn_udp -> one "Allow UDP 3478"). They name the
// contract's ports, its addresses (or the domain when none are published) and the domain;
// details read: tls_443 "issuer", "proxy" (else the proxy check's details/target, else the
// check's target), path_quality "rttMs"/"jitterMs"/"lossPercent".
Assessment assess(const std::vector<CheckResult>& checks, const Contract& contract);

struct Report {
  std::string url;
  std::string client;     // "parley-netcheck 0.4.0", or the browser's user agent
  std::string startedAt;  // RFC 3339 UTC
  std::chrono::milliseconds duration{0};
  std::optional<std::string> proxy;  // "http://10.10.0.1:3128" when one was used
  std::vector<CheckResult> checks;
  Assessment assessment;
};

// docs/netcheck.schema.json.
nlohmann::json toJson(const Report& report);
nlohmann::json toJson(const CheckResult& check);
// For POST /api/v1/netcheck/grade: the checks of a posted report; an error names the field.
// At most kMaxPostedChecks checks.
inline constexpr std::size_t kMaxPostedChecks = 64;
tl::expected<std::vector<CheckResult>, std::string> checksFromJson(const nlohmann::json& report);

// Streams of kStreamKbps a rate carries (floor).
unsigned streamsCarried(double kbps);

}  // namespace parley::netcheck
