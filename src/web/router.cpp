// Helpers for handlers and the socket-free part of request handling: routing, static files,
// path checks, security headers.
#include <algorithm>
#include <cctype>
#include <exception>

#include <boost/beast/http/field.hpp>
#include <boost/beast/http/status.hpp>
#include <nlohmann/json.hpp>

#include <parley/base/log.hpp>
#include <parley/web/router.hpp>

namespace parley::web {

namespace {

std::shared_ptr<spdlog::logger> logger() {
  static const auto instance = log::get("web");
  return instance;
}

int hexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// RFC 3986 §2.1 percent-decoding; nullopt for a '%' without two hex digits.
std::optional<std::string> percentDecode(std::string_view text, bool plusIsSpace) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '%') {
      if (text.size() - i < 3) return std::nullopt;
      const int high = hexValue(text[i + 1]);
      const int low = hexValue(text[i + 2]);
      if (high < 0 || low < 0) return std::nullopt;
      out += static_cast<char>(high * 16 + low);
      i += 2;
    } else if (c == '+' && plusIsSpace) {
      out += ' ';
    } else {
      out += c;
    }
  }
  return out;
}

std::string_view trim(std::string_view text) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t'))
    text.remove_prefix(1);
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t'))
    text.remove_suffix(1);
  return text;
}

bool equalsIgnoreCase(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

// Calls `each` with every comma-separated element of the request's `field` headers.
template <typename Each>
void forEachListElement(const Request& request, http::field field, Each&& each) {
  for (auto [it, end] = request.equal_range(field); it != end; ++it) {
    std::string_view value = it->value();
    while (!value.empty()) {
      const auto comma = value.find(',');
      each(trim(value.substr(0, comma)));
      if (comma == std::string_view::npos) break;
      value.remove_prefix(comma + 1);
    }
  }
}

// RFC 9110 §12.5.3: gzip is acceptable unless its qvalue is 0 (or "*" allows it).
bool acceptsGzip(const Request& request) {
  bool gzip = false;
  forEachListElement(request, http::field::accept_encoding, [&gzip](std::string_view element) {
    const auto semicolon = element.find(';');
    const std::string_view coding = trim(element.substr(0, semicolon));
    if (!equalsIgnoreCase(coding, "gzip") && !equalsIgnoreCase(coding, "x-gzip") && coding != "*") {
      return;
    }
    bool zero = false;
    if (semicolon != std::string_view::npos) {
      std::string_view parameter = trim(element.substr(semicolon + 1));
      if (parameter.size() >= 2 && (parameter[0] == 'q' || parameter[0] == 'Q') &&
          parameter[1] == '=') {
        const std::string_view q = trim(parameter.substr(2));
        zero = !q.empty() && q.find_first_not_of("0.") == std::string_view::npos;
      }
    }
    if (!zero) gzip = true;
  });
  return gzip;
}

// RFC 9110 §13.1.2: If-None-Match uses the weak comparison, so W/"x" matches "x".
bool ifNoneMatchHits(const Request& request, std::string_view etag) {
  bool hit = false;
  forEachListElement(request, http::field::if_none_match, [&](std::string_view element) {
    if (element.starts_with("W/")) element.remove_prefix(2);
    if (element == "*" || element == etag) hit = true;
  });
  return hit;
}

bool isHandlerPath(std::string_view path) {
  return path == "/api" || path.starts_with("/api/") || path == "/healthz" || path == "/metrics" ||
         path == "/.well-known/parley/requirements.json" || path == "/network-requirements";
}

Response plainStatus(http::status status) {
  Response response{status, 11};
  return response;
}

}  // namespace

// ---- Helpers -------------------------------------------------------------------------------

Response jsonResponse(unsigned status, std::string body) {
  Response response{static_cast<http::status>(status), 11};
  response.set(http::field::content_type, "application/json; charset=utf-8");
  response.body() = std::move(body);
  response.prepare_payload();
  return response;
}

Response jsonError(unsigned status, std::string_view code, std::string_view message) {
  const nlohmann::json body = {
      {"error", {{"code", std::string(code)}, {"message", std::string(message)}}}};
  // replace: a message quoting bad input must not turn into an exception here.
  return jsonResponse(status, body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
}

std::optional<std::string> cookie(const Request& request, std::string_view name) {
  // RFC 6265 §5.4: "name=value" pairs separated by "; ", possibly over several headers.
  for (auto [it, end] = request.equal_range(http::field::cookie); it != end; ++it) {
    std::string_view value = it->value();
    while (!value.empty()) {
      const auto semicolon = value.find(';');
      const std::string_view pair = trim(value.substr(0, semicolon));
      const auto equals = pair.find('=');
      if (equals != std::string_view::npos && trim(pair.substr(0, equals)) == name) {
        std::string_view found = trim(pair.substr(equals + 1));
        if (found.size() >= 2 && found.front() == '"' && found.back() == '"') {
          found = found.substr(1, found.size() - 2);
        }
        return std::string(found);
      }
      if (semicolon == std::string_view::npos) break;
      value.remove_prefix(semicolon + 1);
    }
  }
  return std::nullopt;
}

std::string setCookie(std::string_view name, std::string_view value, std::chrono::seconds maxAge) {
  return std::string(name) + "=" + std::string(value) +
         "; Max-Age=" + std::to_string(std::max<std::int64_t>(0, maxAge.count())) +
         "; Path=/; HttpOnly; Secure; SameSite=Strict";
}

std::string clearCookie(std::string_view name) {
  return std::string(name) + "=; Max-Age=0; Path=/; HttpOnly; Secure; SameSite=Strict";
}

std::optional<std::string> queryParam(std::string_view target, std::string_view name) {
  const auto question = target.find('?');
  if (question == std::string_view::npos) return std::nullopt;
  std::string_view query = target.substr(question + 1);
  query = query.substr(0, query.find('#'));
  while (!query.empty()) {
    const auto ampersand = query.find('&');
    const std::string_view pair = query.substr(0, ampersand);
    const auto equals = pair.find('=');
    const auto key = percentDecode(pair.substr(0, equals), true);
    if (key && *key == name) {
      if (equals == std::string_view::npos) return std::string();
      return percentDecode(pair.substr(equals + 1), true);
    }
    if (ampersand == std::string_view::npos) break;
    query.remove_prefix(ampersand + 1);
  }
  return std::nullopt;
}

std::string_view pathOf(std::string_view target) {
  return target.substr(0, target.find_first_of("?#"));
}

// ---- Paths and headers ---------------------------------------------------------------------

std::optional<std::string> decodeRequestPath(std::string_view rawPath) {
  if (rawPath.empty() || rawPath.front() != '/') return std::nullopt;
  std::string decoded;
  decoded.reserve(rawPath.size());
  for (std::size_t i = 0; i < rawPath.size(); ++i) {
    const char c = rawPath[i];
    if (c == '%') {
      if (rawPath.size() - i < 3) return std::nullopt;
      const int high = hexValue(rawPath[i + 1]);
      const int low = hexValue(rawPath[i + 2]);
      if (high < 0 || low < 0) return std::nullopt;
      const char byte = static_cast<char>(high * 16 + low);
      // An encoded separator or NUL only exists to slip past a check, and an encoded '%'
      // means double encoding ("%252e%252e" -> "%2e%2e" -> ".."): nothing real needs them.
      if (byte == '/' || byte == '\\' || byte == '\0' || byte == '%') return std::nullopt;
      decoded += byte;
      i += 2;
    } else {
      decoded += c;
    }
  }
  if (decoded.find("..") != std::string::npos || decoded.find('\\') != std::string::npos ||
      decoded.find('\0') != std::string::npos) {
    return std::nullopt;
  }
  return decoded;
}

std::string contentSecurityPolicy(std::string_view publicOrigin) {
  std::string_view authority = publicOrigin;
  if (const auto scheme = authority.find("://"); scheme != std::string_view::npos) {
    authority.remove_prefix(scheme + 3);
  }
  authority = authority.substr(0, authority.find('/'));
  return "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
         "media-src 'self' blob: mediastream:; connect-src 'self' wss://" +
         std::string(authority) +
         "; frame-ancestors 'none'; base-uri 'none'; form-action 'self'; object-src 'none'";
}

// ---- Router --------------------------------------------------------------------------------

Router::Router(const WebServerOptions& options, const StaticFiles& files, HttpHandler& handler)
    : options_(options),
      files_(files),
      handler_(handler),
      contentSecurityPolicy_(contentSecurityPolicy(options.publicOrigin)) {}

bool Router::isAppRoute(std::string_view path) const {
  return std::any_of(
      options_.appRoutes.begin(), options_.appRoutes.end(), [path](const std::string& route) {
        if (route.empty()) return false;
        if (route == "/") return path == "/";
        if (route.back() == '/') return path.starts_with(route);
        return path == route ||
               (path.starts_with(route) && path.size() > route.size() && path[route.size()] == '/');
      });
}

void Router::addSecurityHeaders(Response& response) const {
  // RFC 6797 §6.1; includeSubDomains is left to the operator, who may host other things.
  response.set(http::field::strict_transport_security, "max-age=31536000");
  // A handler may send a page's own, stricter policy (the network requirements page allows
  // nothing but its inline style); every other response gets the default.
  if (response.find("Content-Security-Policy") == response.end()) {
    response.set("Content-Security-Policy", contentSecurityPolicy_);
  }
  response.set("X-Frame-Options", "DENY");
  response.set("X-Content-Type-Options", "nosniff");
  response.set("Referrer-Policy", "no-referrer");
  response.set("Permissions-Policy",
               "camera=(self), microphone=(self), display-capture=(self), geolocation=()");
  response.set("Cross-Origin-Opener-Policy", "same-origin");
}

void Router::finish(Response& response, const Request* request) const {
  if (request) {
    response.version(request->version());
    response.keep_alive(request->keep_alive());
  }
  const unsigned status = response.result_int();
  const bool bodyless = status < 200 || status == 204 || status == 304;
  if (bodyless) response.body().clear();
  if (request && request->method() == http::verb::head && !bodyless) {
    // RFC 9110 §9.3.2: the same header fields as GET, no content.
    if (response.find(http::field::content_length) == response.end()) {
      response.content_length(response.body().size());
    }
    response.body().clear();
  } else {
    response.prepare_payload();
  }
  addSecurityHeaders(response);
}

Response Router::callHandler(const Request& request, const RequestContext& context) const {
  Response response;
  try {
    response = handler_.handle(request, context);
  } catch (const std::exception& error) {
    logger()->warn("{} {}: handler failed: {}", std::string(request.method_string()),
                   std::string(pathOf(request.target())), error.what());
    response = jsonError(500, "internal_error", "The server could not handle this request.");
  } catch (...) {
    logger()->warn("{} {}: handler failed", std::string(request.method_string()),
                   std::string(pathOf(request.target())));
    response = jsonError(500, "internal_error", "The server could not handle this request.");
  }
  // Handler answers are private and current unless the handler says otherwise (public pages).
  if (response.find(http::field::cache_control) == response.end()) {
    response.set(http::field::cache_control, "no-store");
  }
  return response;
}

Response Router::serveAsset(const Request& request, const StaticAsset& asset) const {
  const bool gzip = !asset.gzipBody.empty() && acceptsGzip(request);
  const std::string& etag = gzip ? asset.gzipEtag : asset.etag;
  Response response{http::status::ok, 11};
  response.set(http::field::etag, etag);
  // no-cache = revalidate every time: a deploy is visible at once, and the ETag makes the
  // revalidation a 304 without a body.
  response.set(http::field::cache_control, "no-cache");
  if (!asset.gzipBody.empty()) response.set(http::field::vary, "Accept-Encoding");
  if (ifNoneMatchHits(request, etag)) {
    response.result(http::status::not_modified);
    return response;
  }
  response.set(http::field::content_type, asset.contentType);
  if (gzip) response.set(http::field::content_encoding, "gzip");
  const std::string& body = gzip ? asset.gzipBody : asset.body;
  if (request.method() == http::verb::head) {
    response.content_length(body.size());
  } else {
    response.body() = body;
  }
  return response;
}

Response Router::route(const Request& request, const RequestContext& context) const {
  const std::string_view target = request.target();
  const std::optional<std::string> path =
      target.starts_with('/') ? decodeRequestPath(pathOf(target)) : std::nullopt;
  if (!path) return jsonError(400, "bad_request", "The request path is not valid.");
  if (isHandlerPath(*path)) return callHandler(request, context);
  if (*path == "/ws") {
    // RFC 9110 §15.5.22: the resource exists, but only over the WebSocket protocol.
    Response response = jsonError(426, "upgrade_required", "Use a WebSocket for /ws.");
    response.set(http::field::upgrade, "websocket");
    return response;
  }
  const StaticAsset* asset = files_.find(*path);
  if (!asset && isAppRoute(*path)) asset = files_.find("/index.html");
  if (!asset) return jsonError(404, "not_found", "There is nothing at this address.");
  if (request.method() != http::verb::get && request.method() != http::verb::head) {
    Response response = jsonError(405, "method_not_allowed", "Only GET and HEAD are allowed.");
    response.set(http::field::allow, "GET, HEAD");
    return response;
  }
  return serveAsset(request, *asset);
}

Response Router::respond(const Request& request, const RequestContext& context) const {
  Response response = route(request, context);
  finish(response, &request);
  return response;
}

Response redirectToHttps(const Request& request, std::string_view publicOrigin,
                         const Router& router) {
  std::string_view origin = publicOrigin;
  while (origin.ends_with('/'))
    origin.remove_suffix(1);
  // Only origin-form targets ("/path?query") are appended: anything else ("@evil.example",
  // an absolute URI) could turn the Location into another host.
  const std::string_view target = request.target();
  Response response = plainStatus(http::status::moved_permanently);
  response.set(http::field::location,
               std::string(origin) + std::string(target.starts_with('/') ? target : "/"));
  router.finish(response, &request);
  response.keep_alive(false);
  return response;
}

}  // namespace parley::web
