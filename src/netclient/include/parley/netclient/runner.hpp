// The checks of `parley netcheck URL` (docs/netcheck.md "The checks"): run in the documented
// order, independent ones at once on threads of their own, each with its own deadline inside an
// overall budget, and graded with netcheck::assess. The command prints; this runs.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include <parley/netcheck/report.hpp>
#include <parley/netclient/transport.hpp>

namespace parley::netclient {

// https://host[:port][/...] taken apart; anything else is the `url` check's failure.
struct ServerUrl {
  std::string host;  // "parley.example.com", "203.0.113.10", "2001:db8::1" (no brackets)
  std::uint16_t port = 443;
  std::string origin() const;      // "https://host[:port]" (port only when not 443)
  std::string hostHeader() const;  // "host[:port]"
};
Result<ServerUrl> parseServerUrl(std::string_view url);

// An http:// proxy URL ("http://[user:password@]host[:port][/]"); credentials become
// Proxy::userColonPassword. Failure{"usage"} says what is wrong (never echoing a password).
Result<Proxy> parseProxyUrl(std::string_view url);
// curl's NO_PROXY rules: a comma (or space) separated list of "*", host names (also matching
// their subdomains; a leading "." is ignored), or IP addresses; case-insensitive.
bool noProxyMatches(std::string_view noProxy, std::string_view host);
// HTTPS_PROXY (or https_proxy) unless NO_PROXY (or no_proxy) exempts `host`; "" when none.
std::string proxyUrlFromEnvironment(std::string_view host);

struct RunOptions {
  std::string url;
  std::optional<Proxy> proxy;
  std::chrono::milliseconds budget{50'000};  // the whole run; each check has a shorter deadline
  std::string client = "parley-netcheck";    // the report's "client"
};

// Called (from any of the runner's threads, never two at once) when a check starts (`finished`
// false: id and title set, nothing else) and when it is done (`finished` true).
using Progress = std::function<void(const netcheck::CheckResult& check, bool finished)>;

// Every check of docs/netcheck.md in its order, plus the assessment. A failed `url` check ends
// the run at once (the caller reports a usage error). Never throws for anything the network or
// the server does.
netcheck::Report runChecks(const RunOptions& options, const Progress& progress);

}  // namespace parley::netclient
