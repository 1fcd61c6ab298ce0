// The REST API of docs/api.md. Handlers may throw ApiError (or anything else, which the web
// engine turns into a 500); one boundary in handle() turns ApiError into the JSON error reply.
#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <map>
#include <random>
#include <thread>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <parley/api/platform.hpp>
#include <parley/base/log.hpp>
#include <parley/netcheck/report.hpp>
#include <parley/web/rate_limiter.hpp>

#include "signaling_hub.hpp"

namespace parley::api {
namespace {

using nlohmann::json;
namespace http = boost::beast::http;

constexpr std::string_view kSessionCookie = "parley_session";
constexpr std::string_view kGuestCookie = "parley_guest";
constexpr std::size_t kMaxNameChars = 100;
constexpr std::size_t kMaxGuestNameChars = 60;
constexpr std::size_t kMaxUsernameChars = 64;
constexpr std::int64_t kMaxInvitationSeconds = 31'536'000;  // a year
// docs/requirements.md; the web router sends exactly these paths here.
constexpr std::string_view kRequirementsJsonPath = "/.well-known/parley/requirements.json";
constexpr std::string_view kRequirementsHtmlPath = "/network-requirements";

const std::shared_ptr<spdlog::logger>& logger() {
  static const auto instance = log::get("api");
  return instance;
}

struct ApiError {
  unsigned status;
  std::string code;
  std::string message;
  std::vector<std::pair<std::string, std::string>> headers = {};
};

std::int64_t nowSeconds() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string rfc3339(std::int64_t seconds) {
  const std::time_t time = static_cast<std::time_t>(seconds);
  std::tm utc{};
  gmtime_r(&time, &utc);
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z", utc.tm_year + 1900, utc.tm_mon + 1,
                     utc.tm_mday, utc.tm_hour, utc.tm_min, utc.tm_sec);
}

std::size_t utf8Length(std::string_view text) {
  return static_cast<std::size_t>(std::count_if(text.begin(), text.end(), [](char c) {
    return (static_cast<unsigned char>(c) & 0xC0) != 0x80;
  }));
}

bool validUtf8(std::string_view text) {
  // Shape check only (lead bytes and continuation counts); nlohmann already rejects invalid
  // UTF-8 in the body, this guards values built elsewhere.
  std::size_t pending = 0;
  for (const char c : text) {
    const auto byte = static_cast<unsigned char>(c);
    if (pending > 0) {
      if ((byte & 0xC0) != 0x80) return false;
      --pending;
    } else if (byte >= 0xF0 && byte <= 0xF4) {
      pending = 3;
    } else if (byte >= 0xE0) {
      pending = byte < 0xF0 ? 2 : 99;
    } else if (byte >= 0xC2) {
      pending = 1;
    } else if (byte >= 0x80) {
      return false;
    }
    if (pending == 99) return false;
  }
  return pending == 0;
}

std::string trimmed(std::string_view text) {
  const auto first = text.find_first_not_of(" \t\r\n");
  if (first == std::string_view::npos) return {};
  const auto last = text.find_last_not_of(" \t\r\n");
  return std::string(text.substr(first, last - first + 1));
}

// A display text from a body field: trimmed, 1..maxChars characters, no control characters.
std::string displayText(const json& body, const char* field, std::size_t maxChars) {
  const auto found = body.find(field);
  if (found == body.end() || !found->is_string()) {
    throw ApiError{400, "bad_request", fmt::format("'{}' must be a string", field)};
  }
  std::string text = trimmed(found->get_ref<const std::string&>());
  const bool control = std::any_of(text.begin(), text.end(), [](char c) {
    return static_cast<unsigned char>(c) < 0x20 || c == 0x7F;
  });
  if (text.empty() || utf8Length(text) > maxChars || control || !validUtf8(text)) {
    throw ApiError{
        400, "bad_request",
        fmt::format("'{}' must be 1 to {} characters without control characters", field, maxChars)};
  }
  return text;
}

std::string stringField(const json& body, const char* field) {
  const auto found = body.find(field);
  if (found == body.end() || !found->is_string()) {
    throw ApiError{400, "bad_request", fmt::format("'{}' must be a string", field)};
  }
  return found->get<std::string>();
}

json parseBody(const web::Request& request) {
  json body = json::parse(request.body(), nullptr, false);
  if (body.is_discarded()) {
    throw ApiError{400, "bad_json", "the request body is not valid JSON"};
  }
  if (!body.is_object()) {
    throw ApiError{400, "bad_request", "the request body must be a JSON object"};
  }
  return body;
}

web::Response reply(unsigned status, const json& body) {
  return web::jsonResponse(status, body.dump());
}

web::Response noContent() {
  web::Response response{http::status::no_content, 11};
  return response;
}

// Path segments of "/api/v1/rooms/ID/invitations" -> {"rooms", "ID", "invitations"}.
std::vector<std::string_view> segmentsAfter(std::string_view path, std::string_view prefix) {
  std::vector<std::string_view> segments;
  if (!path.starts_with(prefix)) return segments;
  path.remove_prefix(prefix.size());
  while (!path.empty()) {
    const auto slash = path.find('/');
    segments.push_back(path.substr(0, slash));
    if (slash == std::string_view::npos) break;
    path.remove_prefix(slash + 1);
  }
  return segments;
}

// A page address without its query and fragment, where invitation tokens travel.
std::string withoutSecrets(std::string url) {
  url.resize(std::min(url.size(), url.find_first_of("?#")));
  return url;
}

json advisorJson(const store::Advisor& advisor) {
  return {{"id", advisor.id}, {"username", advisor.username}, {"displayName", advisor.displayName}};
}

std::string advisorParticipantId(std::int64_t advisorId) {
  return fmt::format("adv-{}", advisorId);
}

// The contract grading names ports and addresses from: the published requirements JSON, or,
// when none is published or it does not read, what the options say.
netcheck::Contract contractOf(const PlatformOptions& options) {
  const json requirements = json::parse(options.networkRequirements.json, nullptr, false);
  if (!requirements.is_discarded() && requirements.is_object()) {
    if (auto contract = netcheck::contractFromRequirements(requirements)) return *contract;
  }
  netcheck::Contract contract;
  contract.url = options.publicUrl;
  if (!IpAddress::parse(options.turn.host)) contract.domain = options.turn.host;
  if (options.turn.udpPort != 0) contract.stunPort = options.turn.udpPort;
  if (options.turn.tlsPort != 0) contract.tlsPort = options.turn.tlsPort;
  return contract;
}

// docs/netcheck.md: the network-check paths, also for WebSocket upgrades.
constexpr std::string_view kNetcheckEchoPath = "/api/v1/netcheck/echo";

// A network-check session id: 16 lowercase hex digits (the probe carries it as 8 bytes). Not a
// secret (the signed ticket is), only unique among the sessions alive at once.
std::string netcheckSessionId() {
  static std::mutex mutex;
  static std::random_device device;
  std::uint64_t value = 0;
  {
    const std::lock_guard lock(mutex);
    value = (static_cast<std::uint64_t>(device()) << 32) | device();
  }
  return fmt::format("{:016x}", value);
}

// The network check's WebSocket echo: each text message back unchanged; closed with 1000 after
// `maxMessages` messages (or by the platform's housekeeping after the time limit).
class EchoSession final : public web::WsSession {
 public:
  EchoSession(std::shared_ptr<web::WsConnection> connection, std::string ticketId,
              const NetcheckOptions& limits, std::function<void(EchoSession*)> closed)
      : connection_(std::move(connection)),
        ticketId_(std::move(ticketId)),
        maxMessages_(limits.echoMaxMessages),
        maxBytes_(limits.echoMaxMessageBytes),
        deadline_(std::chrono::steady_clock::now() + limits.echoMaxDuration),
        closed_(std::move(closed)) {}

  void onMessage(std::string_view text) override {
    if (done_) return;
    if (text.size() > maxBytes_) {
      done_ = true;
      connection_->close(1009, "message too big");
      return;
    }
    connection_->send(std::make_shared<const std::string>(text));
    if (++messages_ >= maxMessages_) {
      done_ = true;
      connection_->close(1000, "echo limit reached");
    }
  }

  void onClose() override {
    if (closed_) closed_(this);
  }

  // Housekeeping: closes the echo once its time is up.
  void expireIfDue(std::chrono::steady_clock::time_point now) {
    if (now >= deadline_) connection_->close(1000, "echo time limit reached");
  }

  const std::string& ticketId() const { return ticketId_; }

 private:
  std::shared_ptr<web::WsConnection> connection_;
  const std::string ticketId_;
  const unsigned maxMessages_;
  const std::size_t maxBytes_;
  const std::chrono::steady_clock::time_point deadline_;
  std::function<void(EchoSession*)> closed_;
  // Touched only on the connection's strand (onMessage).
  unsigned messages_ = 0;
  bool done_ = false;
};

}  // namespace

struct Platform::Impl {
  Impl(PlatformOptions options_, store::Store& store_, const auth::TokenSigner& signer_)
      : options(std::move(options_)),
        store(store_),
        signer(signer_),
        throttle(options.loginThrottle),
        clientErrors(options.clientErrorsPerMinute / 60.0, options.clientErrorsPerMinute),
        netcheckSessions(std::max(1u, options.netcheck.sessionsPerMinute) / 60.0,
                         std::max(1u, options.netcheck.sessionsPerMinute)),
        netcheckGrades(std::max(1u, options.clientErrorsPerMinute) / 60.0,
                       std::max(1u, options.clientErrorsPerMinute)),
        hub(store, options.rooms, options.helloTimeout,
            [this](const rooms::Hello& hello, const std::string& requiredRoom) {
              return authenticateHello(hello, requiredRoom);
            }) {}

  PlatformOptions options;
  store::Store& store;
  const auth::TokenSigner& signer;
  auth::LoginThrottle throttle;
  auth::RateLimiter clientErrors;
  web::RateLimiter netcheckSessions;  // per IPv4 address or IPv6 /64
  web::RateLimiter netcheckGrades;
  // The deployment's contract as remedies name it, read once from the published requirements.
  const netcheck::Contract contract = contractOf(options);
  SignalingHub hub;
  std::atomic<bool> shuttingDown{false};
  std::mutex setupMutex;
  std::mutex metricsMutex;
  std::vector<MetricsSource> metricsSources;
  std::function<web::WebCounters()> webCounters;
  std::atomic<std::uint64_t> loginsOk{0}, loginsFailed{0}, loginsThrottled{0};
  std::atomic<std::uint64_t> clientErrorReports{0}, invitationsCreated{0}, guestsJoined{0};
  std::atomic<std::uint64_t> netcheckSessionsCreated{0}, netcheckGradesDone{0};
  std::atomic<std::uint64_t> netcheckEchoesOpened{0};

  // Open echo sockets, for the time limit and the per-ticket cap.
  std::mutex echoMutex;
  std::map<EchoSession*, std::weak_ptr<EchoSession>> echoes;

  std::mutex stopMutex;
  std::condition_variable stopSignal;
  bool stopping = false;
  std::thread housekeeping;

  // --- identities -------------------------------------------------------------------------

  struct AdvisorSession {
    store::Advisor advisor;
    std::string token;
  };

  std::optional<AdvisorSession> advisorOf(const web::Request& request) {
    const auto token = web::cookie(request, kSessionCookie);
    if (!token || token->empty()) return std::nullopt;
    const auto session = store.findSession(*token, nowSeconds());
    if (!session) return std::nullopt;
    auto advisor = store.findAdvisor(session->advisorId);
    if (!advisor) return std::nullopt;
    return AdvisorSession{std::move(*advisor), *token};
  }

  AdvisorSession requireAdvisor(const web::Request& request) {
    auto session = advisorOf(request);
    if (!session) throw ApiError{401, "not_authenticated", "log in first"};
    return std::move(*session);
  }

  std::optional<store::Guest> guestOf(const web::Request& request) {
    const auto token = web::cookie(request, kGuestCookie);
    if (!token || token->empty()) return std::nullopt;
    return store.findGuestByToken(*token, nowSeconds());
  }

  // Writes from a browser must come from our own pages: the Origin (when sent) must be ours.
  void checkOrigin(const web::Request& request) const {
    const auto origin = request.find(http::field::origin);
    if (origin != request.end() && origin->value() != options.publicUrl) {
      throw ApiError{403, "bad_origin", "requests from other sites are not accepted"};
    }
  }

  // Cookie-authenticated writes carry the CSRF token handed out at login.
  void requireCsrf(const web::Request& request, const AdvisorSession& session) const {
    checkOrigin(request);
    const auto header = request.find("X-CSRF-Token");
    if (header == request.end() ||
        !signer.checkCsrf(session.token,
                          std::string_view(header->value().data(), header->value().size()))) {
      throw ApiError{403, "csrf_failed", "missing or wrong X-CSRF-Token header"};
    }
  }

  store::Room ownedRoom(const AdvisorSession& session, std::string_view roomId) {
    auto room = store.findRoom(std::string(roomId));
    if (!room) throw ApiError{404, "room_not_found", "there is no such room"};
    if (room->advisorId != session.advisor.id) {
      throw ApiError{403, "forbidden", "this room belongs to another advisor"};
    }
    return std::move(*room);
  }

  std::string clientAddress(const web::RequestContext& context) const {
    return context.remote.address.toString();
  }

  // --- responses with a session cookie -----------------------------------------------------

  web::Response startSession(unsigned status, const store::Advisor& advisor) {
    const std::string token = auth::randomToken();
    const std::int64_t now = nowSeconds();
    store.createSession(token, advisor.id, now, now + options.sessionTtl.count());
    auto response = reply(
        status, {{"advisor", advisorJson(advisor)}, {"csrfToken", signer.csrfTokenFor(token)}});
    response.set(http::field::set_cookie,
                 web::setCookie(kSessionCookie, token, options.sessionTtl));
    return response;
  }

  // --- routes ------------------------------------------------------------------------------

  web::Response route(const web::Request& request, const web::RequestContext& context) {
    const std::string_view path = web::pathOf(request.target());
    const http::verb method = request.method();
    const auto allow = [&](std::initializer_list<http::verb> verbs) {
      if (std::find(verbs.begin(), verbs.end(), method) != verbs.end()) return;
      std::string allowed;
      for (const auto verb : verbs) {
        if (!allowed.empty()) allowed += ", ";
        allowed += std::string(http::to_string(verb));
      }
      throw ApiError{405,
                     "method_not_allowed",
                     fmt::format("{} is not allowed here", std::string(http::to_string(method))),
                     {{"Allow", allowed}}};
    };

    if (path == "/healthz") {
      allow({http::verb::get, http::verb::head});
      if (shuttingDown) return reply(503, {{"status", "shutting_down"}});
      return reply(200, {{"status", "ok"}});
    }
    if (path == kRequirementsJsonPath || path == kRequirementsHtmlPath) {
      allow({http::verb::get, http::verb::head});
      return networkRequirements(path == kRequirementsJsonPath);
    }
    if (path == "/metrics") {
      allow({http::verb::get});
      web::Response response{http::status::ok, 11};
      response.set(http::field::content_type, "text/plain; version=0.0.4; charset=utf-8");
      response.body() = metrics();
      response.prepare_payload();
      return response;
    }
    const auto segments = segmentsAfter(path, "/api/v1/");
    if (segments.empty()) throw ApiError{404, "not_found", "no such endpoint"};
    const std::string_view first = segments[0];

    if (first == "setup" && segments.size() == 1) {
      allow({http::verb::get, http::verb::post});
      if (method == http::verb::get) return reply(200, {{"needed", store.advisorCount() == 0}});
      return setup(request);
    }
    if (first == "session" && segments.size() == 1) {
      allow({http::verb::get, http::verb::post, http::verb::delete_});
      if (method == http::verb::post) return login(request, context);
      auto session = requireAdvisor(request);
      if (method == http::verb::get) {
        return reply(200, {{"advisor", advisorJson(session.advisor)},
                           {"csrfToken", signer.csrfTokenFor(session.token)}});
      }
      requireCsrf(request, session);
      store.deleteSession(session.token);
      auto response = noContent();
      response.set(http::field::set_cookie, web::clearCookie(kSessionCookie));
      return response;
    }
    if (first == "rooms") {
      if (segments.size() == 1) {
        allow({http::verb::get, http::verb::post});
        auto session = requireAdvisor(request);
        if (method == http::verb::get) return listRooms(session);
        requireCsrf(request, session);
        return createRoom(request, session);
      }
      if (segments.size() == 2) {
        allow({http::verb::get});
        auto session = requireAdvisor(request);
        return reply(200, roomJson(ownedRoom(session, segments[1])));
      }
      if (segments.size() == 3 && segments[2] == "invitations") {
        allow({http::verb::post});
        auto session = requireAdvisor(request);
        requireCsrf(request, session);
        return invite(request, session, ownedRoom(session, segments[1]));
      }
      if (segments.size() == 3 && segments[2] == "audit") {
        allow({http::verb::get});
        auto session = requireAdvisor(request);
        return audit(ownedRoom(session, segments[1]));
      }
    }
    if (first == "join" && segments.size() == 1) {
      allow({http::verb::post});
      return join(request, context);
    }
    if (first == "ice-servers" && segments.size() == 1) {
      allow({http::verb::get});
      return iceServers(request);
    }
    if (first == "client-errors" && segments.size() == 1) {
      allow({http::verb::post});
      return clientError(request, context);
    }
    if (first == "netcheck" && options.netcheck.enabled) {
      if (segments.size() == 1) {
        allow({http::verb::post});
        return netcheckSession(request, context);
      }
      if (segments.size() == 2 && segments[1] == "grade") {
        allow({http::verb::post});
        return netcheckGrade(request, context);
      }
      if (segments.size() == 2 && segments[1] == "echo") {
        // RFC 9110 §15.5.22: the resource exists, but only over the WebSocket protocol.
        auto response = web::jsonError(426, "upgrade_required", "Use a WebSocket for the echo.");
        response.set(http::field::upgrade, "websocket");
        return response;
      }
    }
    throw ApiError{404, "not_found", "no such endpoint"};
  }

  web::Response setup(const web::Request& request) {
    checkOrigin(request);
    const json body = parseBody(request);
    const auto claims =
        signer.verify(stringField(body, "token"), auth::TokenKind::Setup, nowSeconds());
    if (!claims) tokenError(claims.error());
    const auto alreadySetUp = [] {
      return ApiError{409, "already_set_up", "an advisor already exists; log in instead"};
    };
    if (store.advisorCount() > 0) throw alreadySetUp();
    const std::string username = usernameField(body);
    const std::string displayName = displayText(body, "displayName", kMaxNameChars);
    const std::string password = stringField(body, "password");
    if (auto problem = auth::checkPasswordPolicy(password, options.passwords)) {
      throw ApiError{400, "bad_request", *problem};
    }
    const std::string hash = auth::hashPassword(password, options.passwords);
    // Check and create as one step: concurrent set-ups must leave exactly one first advisor.
    const std::lock_guard lock(setupMutex);
    if (store.advisorCount() > 0) throw alreadySetUp();
    auto advisor = store.createAdvisor(username, displayName, hash, nowSeconds());
    if (!advisor) throw ApiError{409, "username_taken", "that username is taken"};
    logger()->info("first advisor '{}' set up", username);
    return startSession(201, *advisor);
  }

  static std::string usernameField(const json& body) {
    std::string username = trimmed(stringField(body, "username"));
    const bool valid = !username.empty() && username.size() <= kMaxUsernameChars &&
                       std::all_of(username.begin(), username.end(), [](char c) {
                         return std::isalnum(static_cast<unsigned char>(c)) || c == '.' ||
                                c == '_' || c == '-' || c == '@';
                       });
    if (!valid) {
      throw ApiError{
          400, "bad_request",
          fmt::format("'username' must be 1 to {} letters, digits or . _ - @", kMaxUsernameChars)};
    }
    return username;
  }

  web::Response login(const web::Request& request, const web::RequestContext& context) {
    checkOrigin(request);
    const json body = parseBody(request);
    const std::string username = stringField(body, "username");
    const std::string password = stringField(body, "password");
    std::string account = username;
    std::transform(account.begin(), account.end(), account.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    const std::string ip = clientAddress(context);
    const auto clock = std::chrono::steady_clock::now();
    if (const auto wait = throttle.begin(account, ip, clock); wait.count() > 0) {
      ++loginsThrottled;
      throw ApiError{429,
                     "too_many_attempts",
                     fmt::format("too many failed logins; try again in {} s", wait.count()),
                     {{"Retry-After", std::to_string(wait.count())}}};
    }
    // The attempt is reserved against the throttle until its verdict is recorded.
    bool settled = false;
    struct Reservation {
      auth::LoginThrottle& throttle;
      const std::string& account;
      const std::string& ip;
      bool& settled;
      ~Reservation() {
        if (!settled) throttle.cancel(account, ip);
      }
    } reservation{throttle, account, ip, settled};
    const auto advisor =
        username.size() <= 256 ? store.findAdvisorByUsername(username) : std::nullopt;
    bool ok = false;
    if (advisor) {
      ok = auth::verifyPassword(advisor->passwordHash, password);
    } else {
      auth::burnPasswordVerification(options.passwords);  // same time for unknown names
    }
    if (!ok) {
      ++loginsFailed;
      throttle.recordFailure(account, ip, clock);
      settled = true;
      logger()->info("failed login for '{}' from {}", account.substr(0, 64), ip);
      throw ApiError{401, "invalid_credentials", "wrong username or password"};
    }
    ++loginsOk;
    throttle.recordSuccess(account, ip, clock);
    settled = true;
    if (auth::needsRehash(advisor->passwordHash, options.passwords)) {
      store.setPasswordHash(advisor->id, auth::hashPassword(password, options.passwords));
    }
    logger()->info("advisor '{}' logged in from {}", advisor->username, ip);
    return startSession(200, *advisor);
  }

  json roomJson(const store::Room& room) {
    const auto [admitted, waiting] = hub.liveCounts(room.id);
    return {{"id", room.id},
            {"name", room.name},
            {"createdAt", rfc3339(room.createdAt)},
            {"live", {{"participants", admitted}, {"waiting", waiting}}}};
  }

  web::Response listRooms(const AdvisorSession& session) {
    json rooms = json::array();
    for (const auto& room : store.roomsOf(session.advisor.id))
      rooms.push_back(roomJson(room));
    return reply(200, {{"rooms", std::move(rooms)}});
  }

  web::Response createRoom(const web::Request& request, const AdvisorSession& session) {
    const json body = parseBody(request);
    const std::string name = displayText(body, "name", kMaxNameChars);
    const std::int64_t now = nowSeconds();
    const auto room = store.createRoom(auth::randomToken(16), session.advisor.id, name, now);
    store.appendAudit(room.id, now, session.advisor.username, "created", name);
    return reply(201, roomJson(room));
  }

  web::Response invite(const web::Request& request, const AdvisorSession& session,
                       const store::Room& room) {
    const json body = request.body().empty() ? json::object() : parseBody(request);
    std::int64_t lifetime = options.invitationTtl.count();
    if (const auto found = body.find("expiresInSeconds"); found != body.end()) {
      if (!found->is_number_integer() || found->get<std::int64_t>() < 1 ||
          found->get<std::int64_t>() > kMaxInvitationSeconds) {
        throw ApiError{400, "bad_request",
                       fmt::format("'expiresInSeconds' must be an integer from 1 to {}",
                                   kMaxInvitationSeconds)};
      }
      lifetime = found->get<std::int64_t>();
    }
    bool singleUse = false;
    if (const auto found = body.find("singleUse"); found != body.end()) {
      if (!found->is_boolean()) throw ApiError{400, "bad_request", "'singleUse' must be a boolean"};
      singleUse = found->get<bool>();
    }
    const std::int64_t now = nowSeconds();
    const auto invitation = Platform::createInvitation(store, signer, options.publicUrl, room.id,
                                                       now, now + lifetime, singleUse);
    ++invitationsCreated;
    store.appendAudit(room.id, now, session.advisor.username, "invited", invitation.id,
                      singleUse ? "single-use" : "");
    return reply(201, {{"id", invitation.id},
                       {"url", invitation.url},
                       {"token", invitation.token},
                       {"expiresAt", rfc3339(invitation.expiresAt)},
                       {"singleUse", singleUse}});
  }

  web::Response audit(const store::Room& room) {
    json events = json::array();
    for (const auto& event : store.auditOf(room.id)) {
      events.push_back({{"at", rfc3339(event.at)},
                        {"actor", event.actor},
                        {"action", event.action},
                        {"subject", event.subject},
                        {"detail", event.detail}});
    }
    return reply(200, {{"events", std::move(events)}});
  }

  [[noreturn]] static void tokenError(auth::TokenError error) {
    if (error == auth::TokenError::Expired) {
      throw ApiError{401, "token_expired", "this link has expired; ask for a new one"};
    }
    throw ApiError{401, "invalid_token", std::string(auth::describe(error))};
  }

  // An invitation token -> its invitation and room, or the error a customer should see.
  std::pair<auth::TokenClaims, store::Room> checkInvitation(std::string_view token) {
    const auto claims = signer.verify(token, auth::TokenKind::Invitation, nowSeconds());
    if (!claims) tokenError(claims.error());
    if (!store.findInvitation(claims->id)) {
      throw ApiError{401, "invalid_token", "this invitation no longer exists"};
    }
    auto room = store.findRoom(claims->roomId);
    if (!room) throw ApiError{404, "room_not_found", "the meeting room no longer exists"};
    return {*claims, std::move(*room)};
  }

  store::Guest admitGuest(const auth::TokenClaims& claims, const std::string& name,
                          const std::string& cookieToken) {
    const std::int64_t now = nowSeconds();
    const auto consumed = store.consumeInvitation(claims.id, now);
    if (!consumed) {
      if (consumed.error() == store::Conflict::AlreadyUsed) {
        throw ApiError{409, "invitation_used", "this invitation link has already been used"};
      }
      throw ApiError{401, "invalid_token", "this invitation no longer exists"};
    }
    ++guestsJoined;
    return store.createGuest(auth::randomToken(12), cookieToken, claims.roomId, claims.id, name,
                             now, now + options.guestTtl.count());
  }

  web::Response join(const web::Request& request, const web::RequestContext& context) {
    checkOrigin(request);
    const json body = parseBody(request);
    const std::string token = stringField(body, "token");
    const auto [claims, room] = checkInvitation(token);
    const std::string name = displayText(body, "name", kMaxGuestNameChars);
    // The same guest again (reload, second tab): keep their identity, even for a single-use
    // link that is spent by now.
    if (auto guest = guestOf(request); guest && guest->invitationId == claims.id) {
      return reply(200, joinJson(room, *guest));
    }
    const std::string cookieToken = auth::randomToken();
    const auto guest = admitGuest(claims, name, cookieToken);
    logger()->info("guest {} joined room {} from {}", guest.id, room.id, clientAddress(context));
    auto response = reply(200, joinJson(room, guest));
    response.set(http::field::set_cookie,
                 web::setCookie(kGuestCookie, cookieToken, options.guestTtl));
    return response;
  }

  static json joinJson(const store::Room& room, const store::Guest& guest) {
    return {{"room", {{"id", room.id}, {"name", room.name}}},
            {"participant", {{"id", guest.id}, {"name", guest.name}, {"role", "guest"}}}};
  }

  web::Response iceServers(const web::Request& request) {
    std::string user;
    if (auto session = advisorOf(request)) {
      user = advisorParticipantId(session->advisor.id);
    } else if (auto guest = guestOf(request)) {
      user = guest->id;
    } else {
      throw ApiError{401, "not_authenticated", "log in or join with an invitation first"};
    }
    return reply(200, iceServersJson(user));
  }

  json iceServersJson(const std::string& user) const {
    const TurnEndpoints& turn = options.turn;
    std::optional<auth::TurnCredential> credential;
    if (!turn.secrets.empty()) {
      credential = auth::makeTurnCredential(turn.secrets.front(), user, nowSeconds(),
                                            turn.credentialTtl.count());
    }
    return {{"iceServers", iceServerList(credential)}, {"ttlSeconds", turn.credentialTtl.count()}};
  }

  // RTCIceServer entries (W3C WebRTC §4.2.1) for STUN and every TURN transport, the TURN ones
  // with `credential` (left out without one). Shared by /ice-servers and the network check.
  json iceServerList(const std::optional<auth::TurnCredential>& credential) const {
    const TurnEndpoints& turn = options.turn;
    json servers = json::array();
    if (turn.udpPort != 0) {
      servers.push_back(
          {{"urls", json::array({fmt::format("stun:{}:{}", turn.host, turn.udpPort)})}});
    }
    if (credential) {
      json urls = json::array();
      if (turn.udpPort != 0)
        urls.push_back(fmt::format("turn:{}:{}?transport=udp", turn.host, turn.udpPort));
      if (turn.tcpPort != 0)
        urls.push_back(fmt::format("turn:{}:{}?transport=tcp", turn.host, turn.tcpPort));
      // TLS on the HTTPS port first: it passes where only 443 is open, and through proxies.
      if (turn.httpsPort != 0)
        urls.push_back(fmt::format("turns:{}:{}?transport=tcp", turn.host, turn.httpsPort));
      if (turn.tlsPort != 0 && turn.tlsPort != turn.httpsPort) {
        urls.push_back(fmt::format("turns:{}:{}?transport=tcp", turn.host, turn.tlsPort));
      }
      if (!urls.empty()) {
        servers.push_back({{"urls", std::move(urls)},
                           {"username", credential->username},
                           {"credential", credential->credential}});
      }
    }
    return servers;
  }

  // --- network check (docs/netcheck.md "The server side") -----------------------------------

  web::Response netcheckSession(const web::Request& request, const web::RequestContext& context) {
    checkOrigin(request);
    if (!netcheckSessions.allow(context.remote.address, std::chrono::steady_clock::now())) {
      throw ApiError{429,
                     "too_many_requests",
                     "too many network checks from this address; try again later",
                     {{"Retry-After", std::to_string(netcheckSessions.retryAfterSeconds())}}};
    }
    // Body: none or an empty object; anything else is a mistake worth saying.
    if (!request.body().empty()) {
      const json body = parseBody(request);
      if (!body.empty()) throw ApiError{400, "bad_request", "the request body must be {} or empty"};
    }
    const NetcheckOptions& netcheck = options.netcheck;
    const TurnEndpoints& turn = options.turn;
    const std::string id = netcheckSessionId();
    const std::int64_t now = nowSeconds();
    const std::int64_t expiresAt = now + netcheck.ttl.count();

    auth::TokenClaims claims;
    claims.kind = auth::TokenKind::Netcheck;
    claims.id = id;
    claims.expiresAt = expiresAt;
    const std::string ticket = signer.sign(claims);

    std::optional<auth::TurnCredential> credential;
    if (!turn.secrets.empty()) {
      credential = auth::makeTurnCredential(turn.secrets.front(), "netcheck-" + id, now,
                                            netcheck.ttl.count());
    }
    json fingerprints = json::array();
    if (netcheck.certificateSha256) {
      for (const auto& fingerprint : netcheck.certificateSha256())
        fingerprints.push_back(fingerprint);
    }
    const json probePeer = netcheck.probePeer.empty() ? json(nullptr) : json(netcheck.probePeer);
    ++netcheckSessionsCreated;
    return reply(201, {{"version", 1},
                       {"id", id},
                       {"expiresAt", rfc3339(expiresAt)},
                       {"ttlSeconds", netcheck.ttl.count()},
                       {"host", turn.host},
                       {"tls", {{"certificateSha256", std::move(fingerprints)}}},
                       {"turn",
                        {{"host", turn.host},
                         {"udpPort", turn.udpPort},
                         {"tcpPort", turn.tcpPort},
                         {"tlsPort", turn.tlsPort},
                         {"dtlsPort", turn.dtlsPort},
                         {"httpsPort", turn.httpsPort},
                         {"username", credential ? credential->username : std::string()},
                         {"credential", credential ? credential->credential : std::string()},
                         {"realm", turn.realm}}},
                       {"iceServers", iceServerList(credential)},
                       {"probe",
                        {{"peer", probePeer},
                         {"ticket", ticket},
                         {"maxKbps", netcheck.maxKbps},
                         {"maxSeconds", netcheck.maxSeconds},
                         {"maxEchoPackets", netcheck.maxEchoPackets}}},
                       {"echo",
                        {{"path", fmt::format("{}?ticket={}", kNetcheckEchoPath, ticket)},
                         {"maxMessages", netcheck.echoMaxMessages}}}});
  }

  web::Response netcheckGrade(const web::Request& request, const web::RequestContext& context) {
    checkOrigin(request);
    if (!netcheckGrades.allow(context.remote.address, std::chrono::steady_clock::now())) {
      throw ApiError{429,
                     "too_many_requests",
                     "too many reports to grade from this address; try again later",
                     {{"Retry-After", std::to_string(netcheckGrades.retryAfterSeconds())}}};
    }
    if (request.body().size() > options.netcheck.maxGradeBodyBytes) {
      throw ApiError{
          413, "body_too_large",
          fmt::format("a report is at most {} bytes", options.netcheck.maxGradeBodyBytes)};
    }
    const json body = parseBody(request);
    return reply(200, gradeReport(body));
  }

  // The echo: only with a valid, unexpired ticket, and a bounded number of sockets.
  std::variant<std::shared_ptr<web::WsSession>, web::Response> netcheckEcho(
      const web::Request& request, std::shared_ptr<web::WsConnection> connection) {
    if (!options.netcheck.enabled) throw ApiError{404, "not_found", "no such endpoint"};
    const std::string ticket = web::queryParam(request.target(), "ticket").value_or("");
    const auto claims = signer.verify(ticket, auth::TokenKind::Netcheck, nowSeconds());
    if (!claims) {
      throw ApiError{401, "invalid_token",
                     fmt::format("the network-check ticket is not valid: {}",
                                 claims.error() == auth::TokenError::Expired
                                     ? "it has expired"
                                     : "it was not issued by this server")};
    }
    const std::lock_guard lock(echoMutex);
    const auto sameTicket = std::count_if(echoes.begin(), echoes.end(), [&](const auto& entry) {
      return entry.first->ticketId() == claims->id;
    });
    if (echoes.size() >= options.netcheck.maxEchoSockets ||
        static_cast<std::size_t>(sameTicket) >= options.netcheck.maxEchoSocketsPerTicket) {
      throw ApiError{429,
                     "too_many_requests",
                     "too many echo sockets open; try again later",
                     {{"Retry-After", "30"}}};
    }
    auto session = std::make_shared<EchoSession>(std::move(connection), claims->id,
                                                 options.netcheck, [this](EchoSession* closed) {
                                                   const std::lock_guard closedLock(echoMutex);
                                                   echoes.erase(closed);
                                                 });
    echoes.emplace(session.get(), session);
    ++netcheckEchoesOpened;
    return session;
  }

  // The grade of a posted report by the rules `parley netcheck` uses, with this server's own
  // contract; the report's own grade and remedies are ignored.
  json gradeReport(const json& report) {
    auto checks = netcheck::checksFromJson(report);
    if (!checks) throw ApiError{400, "bad_request", checks.error()};
    const netcheck::Assessment assessment = netcheck::assess(*checks, contract);
    ++netcheckGradesDone;
    return {{"grade", netcheck::toString(assessment.grade)},
            {"gradeTitle", netcheck::gradeTitle(assessment.grade)},
            {"headline", assessment.headline},
            {"remedies", assessment.remedies}};
  }

  void expireEchoes() {
    std::vector<std::shared_ptr<EchoSession>> open;
    {
      const std::lock_guard lock(echoMutex);
      for (const auto& [key, weak] : echoes) {
        if (auto session = weak.lock()) open.push_back(std::move(session));
      }
    }
    const auto now = std::chrono::steady_clock::now();
    for (const auto& session : open)
      session->expireIfDue(now);
  }

  web::Response clientError(const web::Request& request, const web::RequestContext& context) {
    const std::string ip = clientAddress(context);
    if (!clientErrors.allow(ip, std::chrono::steady_clock::now())) {
      throw ApiError{429,
                     "too_many_requests",
                     "too many error reports; some were dropped",
                     {{"Retry-After", "60"}}};
    }
    const json body = parseBody(request);
    const std::string message = stringField(body, "message");
    const auto text = [&](const char* field) -> std::string {
      const auto found = body.find(field);
      if (found == body.end() || !found->is_string()) return {};
      return found->get<std::string>();
    };
    // One line per report; long or multi-line texts are cut so a client cannot flood the log.
    const auto clip = [](std::string value, std::size_t max) {
      if (value.size() > max) value.resize(max);
      std::replace_if(
          value.begin(), value.end(), [](char c) { return static_cast<unsigned char>(c) < 0x20; },
          ' ');
      return value;
    };
    ++clientErrorReports;
    log::get("web")->warn("client error from {}: {} (page {}, agent {}) {}", ip, clip(message, 500),
                          clip(withoutSecrets(text("url")), 200), clip(text("userAgent"), 200),
                          clip(text("stack"), 1000));
    return noContent();
  }

  // --- signaling ---------------------------------------------------------------------------

  tl::expected<SocketIdentity, std::string> authenticateHello(const rooms::Hello& hello,
                                                              const std::string& requiredRoom) {
    try {
      const auto [claims, room] = checkInvitation(hello.token);
      if (!requiredRoom.empty() && requiredRoom != room.id) {
        return tl::make_unexpected(std::string("this invitation is for another room"));
      }
      json nameHolder = {{"name", hello.name}};
      const std::string name = displayText(nameHolder, "name", kMaxGuestNameChars);
      // A token-authenticated socket gets a guest identity of its own (no cookie to resume).
      const auto guest = admitGuest(claims, name, auth::randomToken());
      return SocketIdentity{{guest.id, rooms::Role::Guest, guest.name}, room.id, room.name};
    } catch (const ApiError& error) {
      return tl::make_unexpected(error.message);
    }
  }

  std::variant<std::shared_ptr<web::WsSession>, web::Response> upgrade(
      const web::Request& request, std::shared_ptr<web::WsConnection> connection) {
    if (web::pathOf(request.target()) == kNetcheckEchoPath) {
      checkOrigin(request);
      return netcheckEcho(request, std::move(connection));
    }
    if (web::pathOf(request.target()) != "/ws") {
      throw ApiError{404, "not_found", "There is nothing at this address."};
    }
    checkOrigin(request);
    if (shuttingDown) throw ApiError{503, "shutting_down", "the server is restarting"};
    const std::string roomParam = web::queryParam(request.target(), "room").value_or("");
    if (auto session = advisorOf(request)) {
      if (roomParam.empty()) throw ApiError{400, "bad_request", "'room' query parameter missing"};
      const auto room = ownedRoom(*session, roomParam);
      SocketIdentity identity{{advisorParticipantId(session->advisor.id), rooms::Role::Host,
                               session->advisor.displayName},
                              room.id,
                              room.name};
      return hub.open(std::move(connection), std::move(identity), {});
    }
    if (auto guest = guestOf(request)) {
      if (!roomParam.empty() && roomParam != guest->roomId) {
        throw ApiError{403, "forbidden", "your invitation is for another room"};
      }
      const auto room = store.findRoom(guest->roomId);
      if (!room) throw ApiError{404, "room_not_found", "the meeting room no longer exists"};
      SocketIdentity identity{{guest->id, rooms::Role::Guest, guest->name}, room->id, room->name};
      return hub.open(std::move(connection), std::move(identity), {});
    }
    return hub.open(std::move(connection), std::nullopt, roomParam);
  }

  // --- network requirements ----------------------------------------------------------------

  // Public facts for customers' IT: no session, cacheable for a few minutes, readable from
  // any origin (the JSON is for tools).
  web::Response networkRequirements(bool json) const {
    const NetworkRequirementsPages& pages = options.networkRequirements;
    const std::string& body = json ? pages.json : pages.html;
    if (body.empty()) throw ApiError{404, "not_found", "no network requirements are published"};
    web::Response response{http::status::ok, 11};
    response.set(http::field::cache_control, "public, max-age=300");
    if (json) {
      response.set(http::field::content_type, "application/json; charset=utf-8");
      response.set(http::field::access_control_allow_origin, "*");
    } else {
      response.set(http::field::content_type, "text/html; charset=utf-8");
      if (!pages.htmlContentSecurityPolicy.empty())
        response.set("Content-Security-Policy", pages.htmlContentSecurityPolicy);
    }
    response.body() = body;
    response.prepare_payload();
    return response;
  }

  // --- metrics -----------------------------------------------------------------------------

  std::string metrics() {
    std::string out;
    const auto metric = [&out](std::string_view name, std::string_view type, std::string_view help,
                               auto value, std::string_view labels = {}) {
      out += fmt::format("# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
      out += labels.empty() ? fmt::format("{} {}\n", name, value)
                            : fmt::format("{}{{{}}} {}\n", name, labels, value);
    };
    if (webCounters) {
      const web::WebCounters web = webCounters();
      out +=
          "# HELP parley_http_responses_total HTTP responses by status class.\n"
          "# TYPE parley_http_responses_total counter\n";
      out += fmt::format("parley_http_responses_total{{class=\"2xx\"}} {}\n", web.responses2xx);
      out += fmt::format("parley_http_responses_total{{class=\"3xx\"}} {}\n", web.responses3xx);
      out += fmt::format("parley_http_responses_total{{class=\"4xx\"}} {}\n", web.responses4xx);
      out += fmt::format("parley_http_responses_total{{class=\"5xx\"}} {}\n", web.responses5xx);
      metric("parley_http_requests_total", "counter", "HTTP requests received.", web.requests);
      metric("parley_http_connections_active", "gauge", "Open HTTPS connections.",
             web.connectionsActive);
      metric("parley_http_connections_rejected_total", "counter",
             "Connections closed at accept because of the connection limit.",
             web.connectionsRejected);
      metric("parley_ws_connections_active", "gauge", "Open WebSocket connections.", web.wsActive);
      metric("parley_ws_upgrades_total", "counter", "WebSocket upgrades accepted.", web.wsUpgrades);
      out +=
          "# HELP parley_ws_messages_total WebSocket messages.\n"
          "# TYPE parley_ws_messages_total counter\n";
      out += fmt::format("parley_ws_messages_total{{direction=\"in\"}} {}\n", web.wsMessagesIn);
      out += fmt::format("parley_ws_messages_total{{direction=\"out\"}} {}\n", web.wsMessagesOut);
      metric("parley_ws_dropped_slow_total", "counter",
             "WebSocket clients dropped because they did not read.", web.wsDroppedSlow);
      metric("parley_https_port_turn_handoffs_total", "counter",
             "HTTPS-port connections that spoke STUN/TURN and went to the TURN server.",
             web.turnHandoffs);
      metric("parley_https_port_rejected_total", "counter",
             "HTTPS-port connections that spoke neither TLS, HTTP nor STUN, or sent a bad or "
             "unexpected PROXY protocol header.",
             web.firstBytesRejected);
      metric("parley_proxy_protocol_headers_total", "counter",
             "PROXY protocol headers accepted from web.proxy_protocol_from.", web.proxyHeaders);
    }
    const HubCounters hubCounters = hub.counters();
    metric("parley_signaling_sockets", "gauge", "Signaling sockets known to the hub.",
           hubCounters.socketsActive);
    metric("parley_rooms_active", "gauge", "Meetings with someone in them.",
           hubCounters.roomsActive);
    out +=
        "# HELP parley_participants Participants in live meetings.\n"
        "# TYPE parley_participants gauge\n";
    out += fmt::format("parley_participants{{state=\"admitted\"}} {}\n",
                       hubCounters.participantsAdmitted);
    out += fmt::format("parley_participants{{state=\"waiting\"}} {}\n",
                       hubCounters.participantsWaiting);
    metric("parley_signaling_protocol_errors_total", "counter",
           "Signaling messages refused as malformed.", hubCounters.protocolErrors);
    out +=
        "# HELP parley_logins_total Advisor login attempts by result.\n"
        "# TYPE parley_logins_total counter\n";
    out += fmt::format("parley_logins_total{{result=\"ok\"}} {}\n", loginsOk.load());
    out += fmt::format("parley_logins_total{{result=\"failed\"}} {}\n", loginsFailed.load());
    out += fmt::format("parley_logins_total{{result=\"throttled\"}} {}\n", loginsThrottled.load());
    metric("parley_invitations_created_total", "counter", "Invitation links created.",
           invitationsCreated.load());
    metric("parley_guests_joined_total", "counter", "Customers who joined with an invitation.",
           guestsJoined.load());
    metric("parley_client_errors_total", "counter", "Client error reports accepted.",
           clientErrorReports.load());
    metric("parley_netcheck_sessions_total", "counter",
           "Network-check sessions handed out (POST /api/v1/netcheck).",
           netcheckSessionsCreated.load());
    metric("parley_netcheck_echo_sockets_total", "counter",
           "Network-check WebSocket echoes opened.", netcheckEchoesOpened.load());
    metric("parley_netcheck_grades_total", "counter", "Network-check reports graded.",
           netcheckGradesDone.load());
    const std::lock_guard lock(metricsMutex);
    for (const auto& source : metricsSources)
      out += source();
    return out;
  }

  void runHousekeeping() {
    auto nextCleanup = std::chrono::steady_clock::now();
    std::unique_lock lock(stopMutex);
    while (!stopping) {
      stopSignal.wait_for(lock, std::chrono::seconds(1));
      if (stopping) break;
      lock.unlock();
      hub.tick();
      expireEchoes();
      if (std::chrono::steady_clock::now() >= nextCleanup) {
        nextCleanup += std::chrono::minutes(10);
        try {
          store.deleteExpiredSessions(nowSeconds());
        } catch (const std::exception& error) {
          logger()->warn("removing expired sessions failed: {}", error.what());
        }
      }
      lock.lock();
    }
  }
};

Platform::Platform(PlatformOptions options, store::Store& store, const auth::TokenSigner& signer)
    : impl_(std::make_unique<Impl>(std::move(options), store, signer)) {
  impl_->housekeeping = std::thread([this] { impl_->runHousekeeping(); });
}

Platform::~Platform() {
  {
    const std::lock_guard lock(impl_->stopMutex);
    impl_->stopping = true;
  }
  impl_->stopSignal.notify_all();
  if (impl_->housekeeping.joinable()) impl_->housekeeping.join();
}

web::Response Platform::handle(const web::Request& request, const web::RequestContext& context) {
  try {
    return impl_->route(request, context);
  } catch (const ApiError& error) {
    auto response = web::jsonError(error.status, error.code, error.message);
    for (const auto& [name, value] : error.headers)
      response.set(name, value);
    return response;
  }
}

std::variant<std::shared_ptr<web::WsSession>, web::Response> Platform::upgrade(
    const web::Request& request, const web::RequestContext&,
    std::shared_ptr<web::WsConnection> connection) {
  try {
    return impl_->upgrade(request, std::move(connection));
  } catch (const ApiError& error) {
    auto response = web::jsonError(error.status, error.code, error.message);
    for (const auto& [name, value] : error.headers)
      response.set(name, value);
    return response;
  }
}

std::string Platform::setupLink(std::int64_t now) const {
  auth::TokenClaims claims;
  claims.kind = auth::TokenKind::Setup;
  claims.id = auth::randomToken(12);
  claims.expiresAt = now + impl_->options.setupTtl.count();
  return impl_->options.publicUrl + "/setup#t=" + impl_->signer.sign(claims);
}

Platform::Invitation Platform::createInvitation(store::Store& store,
                                                const auth::TokenSigner& signer,
                                                const std::string& publicUrl,
                                                const std::string& roomId, std::int64_t now,
                                                std::int64_t expiresAt, bool singleUse) {
  const auto stored =
      store.createInvitation(auth::randomToken(12), roomId, now, expiresAt, singleUse);
  auth::TokenClaims claims;
  claims.kind = auth::TokenKind::Invitation;
  claims.id = stored.id;
  claims.roomId = roomId;
  claims.expiresAt = expiresAt;
  claims.singleUse = singleUse;
  const std::string token = signer.sign(claims);
  return {stored.id, token, publicUrl + "/join#t=" + token, expiresAt, singleUse};
}

void Platform::beginShutdown(int retryAfterMs) {
  impl_->shuttingDown = true;
  impl_->hub.broadcastShutdown(retryAfterMs);
}

void Platform::addMetricsSource(MetricsSource source) {
  const std::lock_guard lock(impl_->metricsMutex);
  impl_->metricsSources.push_back(std::move(source));
}

void Platform::setWebCounters(std::function<web::WebCounters()> counters) {
  impl_->webCounters = std::move(counters);
}

std::size_t Platform::activeRooms() const {
  return impl_->hub.counters().roomsActive;
}

}  // namespace parley::api
