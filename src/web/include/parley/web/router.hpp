// What the engine answers to one parsed HTTP request, without sockets: routing to the
// application handler, static files and single-page-app routes, path checks and the security
// headers. WebServer runs every request through it; tests and the fuzz target call it directly.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include <parley/web/server.hpp>
#include <parley/web/static_files.hpp>

namespace parley::web {

// The decoded form of request path `rawPath` (no query), or nullopt when it must be refused:
// bad percent-encoding, an encoded '/', '\' or NUL ("%2f", "%5c", "%00"), a '%' left after
// decoding (double encoding such as "%252e"), or a "..", '\' or NUL in the decoded path.
std::optional<std::string> decodeRequestPath(std::string_view rawPath);

// Content-Security-Policy for `publicOrigin` ("https://host[:port]"): same origin only, plus
// wss://host[:port] for signaling.
std::string contentSecurityPolicy(std::string_view publicOrigin);

class Router {
 public:
  // Keeps references to all three; they must outlive the router.
  Router(const WebServerOptions& options, const StaticFiles& files, HttpHandler& handler);

  // The response to `request` (not a WebSocket upgrade), keep-alive and version taken from the
  // request, payload prepared, security headers set. Never throws: an exception from the
  // handler becomes 500 internal_error.
  Response respond(const Request& request, const RequestContext& context) const;

  // Completes a response built elsewhere (engine errors, WebSocket refusals): security
  // headers, version, keep-alive, Content-Length.
  void finish(Response& response, const Request* request) const;
  // Adds the security headers every response carries (RFC 6797 HSTS, CSP, framing, sniffing,
  // referrer, permissions, COOP). A Content-Security-Policy the handler set is kept.
  void addSecurityHeaders(Response& response) const;

  // Whether `path` (decoded) is one of WebServerOptions::appRoutes.
  bool isAppRoute(std::string_view path) const;

 private:
  Response route(const Request& request, const RequestContext& context) const;
  Response callHandler(const Request& request, const RequestContext& context) const;
  Response serveAsset(const Request& request, const StaticAsset& asset) const;

  const WebServerOptions& options_;
  const StaticFiles& files_;
  HttpHandler& handler_;
  std::string contentSecurityPolicy_;
};

// The plain-HTTP port's only answer (301 to publicOrigin + target; "/" for a target that is
// not origin-form, so it can never redirect elsewhere), with the security headers.
Response redirectToHttps(const Request& request, std::string_view publicOrigin,
                         const Router& router);

}  // namespace parley::web
