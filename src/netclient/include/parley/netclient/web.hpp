// HTTPS requests and the WebSocket echo of the network check (docs/netcheck.md) over any
// netclient::Stream (usually TLS over TCP, directly or through a proxy tunnel). Blocking, with
// one deadline per call; response sizes are bounded so a hostile server cannot exhaust memory.
#pragma once

#include <chrono>
#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include <parley/netclient/transport.hpp>

namespace parley::netclient {

// Largest response body (and WebSocket message) the check reads; a requirements document or a
// session is a few KiB.
inline constexpr std::size_t kMaxResponseBytes = 1024 * 1024;

struct HttpRequest {
  std::string method = "GET";
  std::string host;    // the Host header: "parley.example.com" or "parley.example.com:8443"
  std::string target;  // "/.well-known/parley/requirements.json"
  std::string body;    // sent with Content-Type application/json when not empty (or for POST)
};

struct HttpResponse {
  unsigned status = 0;
  std::string reason;       // "Not Found"
  std::string contentType;  // the Content-Type header, "" when none
  std::string body;
};

// One request and its response over `stream`. Any status is a success here (the caller judges
// it); failures are the stream's ("timeout", "tls_failed", ...) or Failure{"protocol"} for a
// response that is not HTTP/1.1 or exceeds kMaxResponseBytes.
Result<HttpResponse> httpRequest(Stream& stream, const HttpRequest& request, Deadline deadline);

struct EchoOutcome {
  unsigned messages = 0;  // echoed correctly
  std::vector<std::chrono::microseconds> roundTrips;
  std::chrono::microseconds medianRoundTrip{0};
};

// WebSocket upgrade of `target` on `host` (the Host header) with `origin` (the server's public
// URL, "https://parley.example.com", as the browser client sends it), then `messages` text
// messages one at a time, each expected back unchanged; then a normal close. An upgrade
// answered with a status is Failure{"http_status", "... 401 ..."}; a wrong or missing echo
// Failure{"protocol"}.
Result<EchoOutcome> websocketEcho(std::unique_ptr<Stream> stream, const std::string& host,
                                  const std::string& origin, const std::string& target,
                                  unsigned messages, Deadline deadline);

}  // namespace parley::netclient
