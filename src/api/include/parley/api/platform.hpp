// The web platform's application layer: the REST API and the signaling hub of docs/api.md,
// on top of the HTTPS/WebSocket engine (parley::web), the store, accounts and tokens
// (parley::auth) and the I/O-free meetings (parley::rooms). It knows no config file: app/
// maps the config to PlatformOptions.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <parley/auth/auth.hpp>
#include <parley/rooms/room.hpp>
#include <parley/store/store.hpp>
#include <parley/web/server.hpp>

namespace parley::api {

// Where browsers reach TURN; every URL kind whose port is 0 is left out.
struct TurnEndpoints {
  std::string host;                  // host name or address from the public URL
  std::uint16_t udpPort = 0;         // turn:HOST:PORT?transport=udp and stun:HOST:PORT
  std::uint16_t tcpPort = 0;         // turn:HOST:PORT?transport=tcp
  std::uint16_t tlsPort = 0;         // turns:HOST:PORT?transport=tcp
  std::uint16_t dtlsPort = 0;        // TURN over DTLS (no browser URL; the network check tries it)
  std::uint16_t httpsPort = 0;       // turns:HOST:PORT?transport=tcp on the HTTPS port
  std::vector<std::string> secrets;  // TURN REST secrets; [0] signs the handed-out credentials
  std::chrono::seconds credentialTtl{43'200};
  std::string realm = "parley";
};

// The network check's server side (docs/netcheck.md "The server side").
struct NetcheckOptions {
  bool enabled = true;             // false: every /api/v1/netcheck path answers 404
  unsigned sessionsPerMinute = 6;  // POST /api/v1/netcheck per client address (IPv6 per /64)
  std::chrono::seconds ttl{300};   // the ticket and the TURN credential of a session
  // The probe peer as the TURN relay reaches it, "ADDRESS:PORT"; "" = none (probe.peer null).
  std::string probePeer;
  unsigned maxKbps = 10'000;
  unsigned maxSeconds = 4;
  unsigned maxEchoPackets = 200;
  unsigned echoMaxMessages = 32;             // the WebSocket echo closes after these
  std::chrono::seconds echoMaxDuration{30};  // ... or after this long
  std::size_t echoMaxMessageBytes = 1024;    // longer messages close the echo with 1009
  std::size_t maxEchoSockets = 256;          // open echo sockets at once, all tickets
  std::size_t maxEchoSocketsPerTicket = 4;
  std::size_t maxGradeBodyBytes = 256 * 1024;  // POST /api/v1/netcheck/grade
  // SHA-256 (lowercase hex) of the DER of every certificate the server presents on HTTPS and
  // TURN-TLS; called per session, so a SIGHUP reload shows at once. Unset: an empty list.
  std::function<std::vector<std::string>()> certificateSha256;
};

// The deployment's network contract (docs/requirements.md), rendered once by app/ at start-up
// and served to anyone, without a session: the JSON at /.well-known/parley/requirements.json,
// the page for customers' IT at /network-requirements. An empty body answers 404.
struct NetworkRequirementsPages {
  std::string json;
  std::string html;
  std::string htmlContentSecurityPolicy;  // the page's own policy: its inline style by hash
};

struct PlatformOptions {
  std::string publicUrl = "https://localhost";  // no trailing slash
  TurnEndpoints turn;
  std::chrono::seconds sessionTtl{43'200};
  std::chrono::seconds invitationTtl{604'800};
  std::chrono::seconds guestTtl{86'400};
  std::chrono::seconds setupTtl{86'400};
  auth::PasswordPolicy passwords;
  auth::ThrottlePolicy loginThrottle;
  rooms::Limits rooms;
  unsigned clientErrorsPerMinute = 10;
  std::chrono::seconds helloTimeout{10};  // token-authenticated sockets must say hello by then
  // Its JSON is also the contract the network check's grade names ports and addresses from.
  NetworkRequirementsPages networkRequirements;
  NetcheckOptions netcheck;
};

// One line per metric family, appended to /metrics (the TURN counters come from app/).
using MetricsSource = std::function<std::string()>;

class Platform : public web::HttpHandler, public web::WsAcceptor {
 public:
  // `store` and `signer` must outlive the platform. Starts the one-second housekeeping
  // thread (grace periods, hello time-outs, expired sessions).
  Platform(PlatformOptions options, store::Store& store, const auth::TokenSigner& signer);
  ~Platform() override;
  Platform(const Platform&) = delete;
  Platform& operator=(const Platform&) = delete;

  web::Response handle(const web::Request& request, const web::RequestContext& context) override;
  std::variant<std::shared_ptr<web::WsSession>, web::Response> upgrade(
      const web::Request& request, const web::RequestContext& context,
      std::shared_ptr<web::WsConnection> connection) override;

  // The link printed at start-up while no advisor exists: PUBLIC_URL/setup#t=TOKEN.
  std::string setupLink(std::int64_t now) const;
  // An invitation link for `roomId` (admin CLI and REST share it).
  struct Invitation {
    std::string id;
    std::string token;
    std::string url;
    std::int64_t expiresAt = 0;
    bool singleUse = false;
  };
  static Invitation createInvitation(store::Store& store, const auth::TokenSigner& signer,
                                     const std::string& publicUrl, const std::string& roomId,
                                     std::int64_t now, std::int64_t expiresAt, bool singleUse);

  // Graceful shutdown: /healthz turns 503, every signaling socket gets
  // {"type":"shutdown","retryAfterMs":…}; sockets stay open until closed by the caller.
  void beginShutdown(int retryAfterMs);
  // Metrics sources appended to /metrics.
  void addMetricsSource(MetricsSource source);
  // The engine's counters for /metrics; set once the WebServer exists.
  void setWebCounters(std::function<web::WebCounters()> counters);

  std::size_t activeRooms() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace parley::api
