// The HTTPS/WebSocket engine of the web platform (docs/api.md): HTTP/1.1 keep-alive over
// TLS 1.2+, the browser client's static files from memory, security headers on every response,
// abuse limits as values, WebSocket signaling on /ws, and a plain-HTTP port that only
// redirects. It is transport only: the REST handlers and the signaling hub (src/api/) plug in
// through HttpHandler and WsAcceptor and know nothing about sockets.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>

#include <parley/base/cidr.hpp>
#include <parley/base/endpoint.hpp>
#include <parley/tls/accepted_stream.hpp>
#include <parley/tls/context.hpp>

namespace parley::web {

namespace http = boost::beast::http;
using Request = http::request<http::string_body>;
using Response = http::response<http::string_body>;

struct RequestContext {
  Endpoint remote;
};

// ---- Helpers every handler uses ------------------------------------------------------------

// `status` with `body` as application/json; charset=utf-8 and Content-Length set.
Response jsonResponse(unsigned status, std::string body);
// {"error":{"code":CODE,"message":MESSAGE}}, escaped by a JSON library.
Response jsonError(unsigned status, std::string_view code, std::string_view message);
// The value of cookie `name` from the request's Cookie headers (RFC 6265 §5.4), nullopt if
// absent. A value in double quotes is returned without them.
std::optional<std::string> cookie(const Request& request, std::string_view name);
// A Set-Cookie value "NAME=VALUE; Max-Age=N; Path=/; HttpOnly; Secure; SameSite=Strict".
std::string setCookie(std::string_view name, std::string_view value, std::chrono::seconds maxAge);
// A Set-Cookie value that deletes cookie `name` (Max-Age=0, same attributes).
std::string clearCookie(std::string_view name);
// The percent-decoded value ('+' as space) of the first `name` parameter in the query of
// `target`; nullopt when absent or badly encoded.
std::optional<std::string> queryParam(std::string_view target, std::string_view name);
// `target` without its query ("?...") and fragment.
std::string_view pathOf(std::string_view target);

// ---- What the application plugs in ---------------------------------------------------------

class HttpHandler {
 public:
  virtual ~HttpHandler() = default;
  // Called on the connection's strand for every request that is not a WebSocket upgrade and
  // not a static asset: paths under /api/, /healthz and /metrics. May block briefly (SQLite).
  // An exception becomes 500 {"error":{"code":"internal_error",...}} and is logged (module
  // "web"). The engine adds Cache-Control: no-store and the security headers.
  virtual Response handle(const Request& request, const RequestContext& context) = 0;
};

class WsConnection {
 public:
  virtual ~WsConnection() = default;
  // Thread-safe, callable from any thread, never blocks. Queues one text frame; when the bytes
  // queued for this socket would exceed Limits::wsMaxQueuedBytes, the socket is closed with
  // 4008 ("too slow") and the frame dropped (a slow/dead client never buffers without bound).
  // Frames sent after close() are dropped.
  virtual void send(std::shared_ptr<const std::string> text) = 0;
  // Sends what is queued, then a close frame with code+reason; the session's onClose follows.
  virtual void close(std::uint16_t code, std::string reason) = 0;
  virtual const Endpoint& remote() const = 0;
  virtual std::uint64_t id() const = 0;  // unique per process
};

class WsSession {
 public:
  virtual ~WsSession() = default;
  // One at a time per connection, in arrival order, on the connection's strand.
  virtual void onMessage(std::string_view text) = 0;
  // Exactly once, after the last onMessage (also when the handshake fails after the acceptor
  // accepted, and at stop()).
  virtual void onClose() = 0;
};

class WsAcceptor {
 public:
  virtual ~WsAcceptor() = default;
  // For a WebSocket upgrade request on path "/ws" or "/api/v1/netcheck/echo" (others get
  // 404). Return a session to accept (the engine completes the handshake and then delivers
  // messages), or a Response to refuse (e.g. 401/403 JSON; the connection closes after it).
  // Called on the connection's strand; frames sent on `connection` before the handshake
  // completes wait in its queue. An exception becomes 500 like in HttpHandler.
  virtual std::variant<std::shared_ptr<WsSession>, Response> upgrade(
      const Request& request, const RequestContext& context,
      std::shared_ptr<WsConnection> connection) = 0;
};

// ---- The server ----------------------------------------------------------------------------

struct Limits {
  std::size_t maxHeaderBytes = 16 * 1024;  // request line + headers; 431 beyond, then close
  std::size_t maxBodyBytes = 1024 * 1024;  // 413 {"error":{"code":"body_too_large"}}, then close
  std::size_t maxConnections = 20000;      // HTTPS + HTTP + WebSocket; beyond: closed at accept
  // Slowloris: the TLS handshake and the whole request head must arrive within this time of
  // the connection (or of the first byte of a later keep-alive request); the body gets
  // idleTimeout. Also the WebSocket opening and closing handshake time-out.
  std::chrono::seconds headerTimeout{10};
  std::chrono::seconds idleTimeout{60};  // keep-alive: time allowed between requests
  // Token bucket per client IP (IPv6 per /64) over every request, static files included;
  // 429 {"error":{"code":"too_many_requests"}} with Retry-After beyond. The table is bounded.
  double requestsPerSecondPerIp = 50;
  double requestBurstPerIp = 200;
  std::size_t wsMaxMessageBytes = 64 * 1024;   // close 1009 beyond
  std::size_t wsMaxQueuedBytes = 1024 * 1024;  // close 4008 beyond
  // Ping when nothing arrived for this long; close when nothing (not even a pong) arrived
  // for twice as long. A close handshake the peer does not finish is cut after 2x as well.
  std::chrono::seconds wsPingInterval{20};
};

struct WebServerOptions {
  // Addresses to listen on (the app fills them); empty is taken as 127.0.0.1 too.
  std::vector<IpAddress> listen{IpAddress::v4(0x7F000001)};
  std::uint16_t httpsPort = 443;  // 0 = pick a free port (tests)
  // Plain HTTP that only redirects (301) to https; nullopt = off; 0 = pick a free port.
  std::optional<std::uint16_t> httpPort = 80;
  // "https://host[:port]" without a trailing slash: redirect target base, CSP connect-src,
  // Origin checks.
  std::string publicOrigin = "https://localhost";
  unsigned threads = 0;  // 0 = hardware_concurrency
  Limits limits;
  std::filesystem::path clientDir;  // static assets (the browser client); empty = none
  // Paths answered with clientDir/index.html (single-page app). A route matches the path
  // itself and, unless it is "/", everything below it: "/setup" matches "/setup" and
  // "/setup/x"; "/room/" matches "/room/abc". "/" matches only "/".
  std::vector<std::string> appRoutes;
  // The HTTPS port carries TURN too (the network contract's "TURN over TLS on 443"): a
  // connection whose first bytes, after TLS or in the clear, are a STUN message, or whose
  // TLS ALPN is "stun.turn" (RFC 7443), is handed to this, called on a web thread; it must not
  // block. Unset: such connections are closed.
  std::function<void(tls::AcceptedStream&&)> turnHandoff;
  // Load balancers that put a PROXY protocol header (v1 or v2) in front of each connection.
  // Connections from these addresses must start with one, and the address in it is the client
  // (rate limits, logs, TURN's XOR-MAPPED-ADDRESS); nobody else may send one.
  std::vector<Cidr> proxyProtocolFrom;
};

struct WebCounters {
  std::uint64_t requests = 0;  // HTTP requests whose head parsed (HTTPS and redirect port)
  std::uint64_t responses2xx = 0, responses3xx = 0, responses4xx = 0, responses5xx = 0;
  std::uint64_t connectionsAccepted = 0, connectionsRejected = 0, connectionsActive = 0;
  std::uint64_t wsUpgrades = 0, wsActive = 0, wsMessagesIn = 0, wsMessagesOut = 0;
  std::uint64_t wsDroppedSlow = 0;          // sockets closed with 4008
  std::uint64_t bytesIn = 0, bytesOut = 0;  // application bytes (after TLS)
  std::uint64_t proxyHeaders = 0;           // PROXY protocol headers accepted
  std::uint64_t turnHandoffs = 0;           // HTTPS-port connections handed to TURN
  std::uint64_t firstBytesRejected = 0;     // neither TLS, HTTP nor STUN; bad PROXY header
};

// Thrown by WebServer::start() when a socket cannot be bound; what() names address and port.
class BindError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class WebServer {
 public:
  // `tls`: its current() context is used for every new connection, so a reload (SIGHUP)
  // applies to new connections while open ones keep theirs. `handler` and `acceptor` must
  // outlive the server.
  WebServer(WebServerOptions options, std::shared_ptr<tls::ContextHolder> tls, HttpHandler& handler,
            WsAcceptor& acceptor);
  ~WebServer();  // stops
  WebServer(const WebServer&) = delete;
  WebServer& operator=(const WebServer&) = delete;

  // Loads clientDir (throws std::runtime_error naming the file), binds every listener without
  // SO_REUSEPORT, so a port anyone else holds fails (throws BindError "cannot listen on tcp
  // ADDRESS:PORT: reason"), and starts the threads. Port 0: one free port for all addresses.
  void start();
  std::vector<Endpoint> httpsEndpoints() const;
  std::vector<Endpoint> httpEndpoints() const;
  // Graceful shutdown step 1: closes the listeners; open connections keep working.
  void stopAccepting();
  std::size_t activeWebSockets() const;
  // Closes WebSockets with 1001 and idle HTTP connections, waits up to 2 s for them, then
  // tears down the rest and joins the threads. Safe to call more than once.
  void stop();
  WebCounters counters() const;
  // Whether a request's Origin header is ours (== publicOrigin, ASCII case-insensitive); the
  // application uses it against CSRF and cross-site WebSocket hijacking.
  bool isAllowedOrigin(std::string_view origin) const;

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace parley::web
