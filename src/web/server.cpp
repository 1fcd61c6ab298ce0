// The socket side of parley::web, after Beast's "advanced server" example: one strand per
// connection, a session object that lives exactly as long as an operation is pending on it,
// one write in flight with a bounded queue behind it, and every abuse limit a value.
//
// Threads: one io_context run by N threads, a strand per connection. HTTP handlers may block
// briefly on SQLite; with a shared io_context a blocked thread delays only its own
// connection, while per-thread io_contexts would stall every connection pinned to that
// thread. Connections share nothing on the hot path (the rate table and the registry take a
// short lock once per request or connection), so the shared queue costs little.
#include <algorithm>
#include <array>
#include <atomic>
#include <cctype>
#include <cstring>
#include <deque>
#include <limits>
#include <mutex>
#include <thread>
#include <unordered_map>

#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>

#include <parley/base/log.hpp>
#include <parley/edge/first_bytes.hpp>
#include <parley/edge/proxy_protocol.hpp>
#include <parley/tls/accepted_stream.hpp>
#include <parley/tls/handshake.hpp>
#include <parley/web/rate_limiter.hpp>
#include <parley/web/router.hpp>
#include <parley/web/server.hpp>
#include <parley/web/static_files.hpp>

namespace parley::web {

namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace websocket = beast::websocket;
using tcp = asio::ip::tcp;
using TlsStream = asio::ssl::stream<beast::tcp_stream>;
using WsStream = websocket::stream<TlsStream>;
using Parser = http::request_parser<http::string_body>;

// How long stop() lets WebSockets finish their close handshake and HTTP responses finish.
constexpr std::chrono::seconds kStopGrace{2};
// A keep-alive connection waits for the first bytes of its next request in chunks this big.
constexpr std::size_t kReadChunk = 4096;
// RFC 6455 §5.5: a control frame carries at most 125 bytes, 2 of them the close code.
constexpr std::size_t kMaxCloseReasonBytes = 123;

std::shared_ptr<spdlog::logger> logger() {
  static const auto instance = log::get("web");
  return instance;
}

Endpoint toEndpoint(const tcp::endpoint& endpoint) {
  const asio::ip::address address = endpoint.address();
  if (address.is_v4()) {
    const auto bytes = address.to_v4().to_bytes();
    return Endpoint{IpAddress::v4(std::span<const std::uint8_t, 4>(bytes)), endpoint.port()};
  }
  const asio::ip::address_v6 v6 = address.to_v6();
  if (v6.is_v4_mapped()) {
    const auto bytes = asio::ip::make_address_v4(asio::ip::v4_mapped, v6).to_bytes();
    return Endpoint{IpAddress::v4(std::span<const std::uint8_t, 4>(bytes)), endpoint.port()};
  }
  const auto bytes = v6.to_bytes();
  return Endpoint{IpAddress::v6(std::span<const std::uint8_t, 16>(bytes)), endpoint.port()};
}

asio::ip::address toAsio(const IpAddress& address) {
  const auto bytes = address.bytes();
  if (address.isV4()) {
    asio::ip::address_v4::bytes_type v4{};
    std::copy(bytes.begin(), bytes.end(), v4.begin());
    return asio::ip::address_v4(v4);
  }
  asio::ip::address_v6::bytes_type v6{};
  std::copy(bytes.begin(), bytes.end(), v6.begin());
  return asio::ip::address_v6(v6);
}

// RFC 6455 §7.4: codes an endpoint may put in a close frame.
bool isSendableCloseCode(std::uint16_t code) {
  return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) ||
         (code >= 3000 && code <= 4999);
}

// Ends of a connection that are normal, not worth a log line.
bool isOrdinaryEnd(const beast::error_code& error) {
  return error == http::error::end_of_stream || error == asio::error::eof ||
         error == asio::error::operation_aborted || error == asio::error::connection_reset ||
         error == asio::ssl::error::stream_truncated || error == websocket::error::closed;
}

// A request that is not HTTP (as opposed to one cut short or over a limit): 400.
bool isMalformedRequest(const beast::error_code& error) {
  return error.category() == make_error_code(http::error::bad_target).category() &&
         error != http::error::end_of_stream && error != http::error::partial_message &&
         error != http::error::need_more && error != http::error::header_limit &&
         error != http::error::body_limit;
}

std::atomic<std::uint64_t> nextConnectionId{1};

// Bytes an earlier stage read, put where the HTTP parser looks first.
void append(beast::flat_buffer& buffer, std::span<const std::uint8_t> bytes) {
  if (bytes.empty()) return;  // memcpy's arguments must not be null, even for 0 bytes
  const auto into = buffer.prepare(bytes.size());
  std::memcpy(into.data(), bytes.data(), bytes.size());
  buffer.commit(bytes.size());
}

// Something stop() has to end: an HTTP connection or a WebSocket.
class Tracked {
 public:
  virtual ~Tracked() = default;
  // Thread-safe: asks the connection to end (posts to its strand).
  virtual void shutdownFromServer() = 0;
  // Only after the threads have stopped: ends what is left on the calling thread.
  virtual void finishAfterStop() {}
};

// The server's shared state, which every session refers to (WebServer::Impl is this).
class Engine {
 public:
  struct Counters {
    std::atomic<std::uint64_t> requests{0}, responses2xx{0}, responses3xx{0}, responses4xx{0},
        responses5xx{0}, connectionsAccepted{0}, connectionsRejected{0}, connectionsActive{0},
        wsUpgrades{0}, wsActive{0}, wsMessagesIn{0}, wsMessagesOut{0}, wsDroppedSlow{0}, bytesIn{0},
        bytesOut{0}, proxyHeaders{0}, turnHandoffs{0}, firstBytesRejected{0};
  };

  // One connection's share of Limits::maxConnections, handed on from the HTTP session to the
  // WebSocket it becomes.
  class ConnectionSlot {
   public:
    ConnectionSlot() = default;
    explicit ConnectionSlot(Counters* counters) : counters_(counters) {
      counters_->connectionsActive.fetch_add(1, std::memory_order_relaxed);
    }
    ConnectionSlot(ConnectionSlot&& other) noexcept
        : counters_(std::exchange(other.counters_, nullptr)) {}
    ConnectionSlot& operator=(ConnectionSlot&&) = delete;
    ~ConnectionSlot() {
      if (counters_) counters_->connectionsActive.fetch_sub(1, std::memory_order_relaxed);
    }

   private:
    Counters* counters_ = nullptr;
  };

  struct Listener {
    Listener(asio::io_context& io, bool isTls)
        : acceptor(asio::make_strand(io)), retry(acceptor.get_executor()), tls(isTls) {}
    tcp::acceptor acceptor;
    asio::steady_timer retry;  // after an accept error such as EMFILE, instead of spinning
    bool tls;
    Endpoint local;
  };

  Engine(WebServerOptions options, std::shared_ptr<tls::ContextHolder> tls, HttpHandler& handler,
         WsAcceptor& acceptor)
      : options_(normalized(std::move(options))),
        tls_(std::move(tls)),
        handler_(handler),
        wsAcceptor_(acceptor),
        router_(options_, files_, handler_),
        rateLimiter_(options_.limits.requestsPerSecondPerIp, options_.limits.requestBurstPerIp),
        io_(static_cast<int>(threadCount())) {
    if (!tls_) throw std::invalid_argument("web server without a TLS context");
  }

  static WebServerOptions normalized(WebServerOptions options) {
    while (options.publicOrigin.ends_with('/'))
      options.publicOrigin.pop_back();
    return options;
  }

  unsigned threadCount() const {
    if (options_.threads > 0) return options_.threads;
    return std::max(1u, std::thread::hardware_concurrency());
  }

  void start();
  void stopAccepting();
  void stop();
  void accept(Listener& listener);
  void onAccept(Listener& listener, const beast::error_code& error, tcp::socket socket);
  std::vector<std::unique_ptr<Listener>> bind(const std::vector<IpAddress>& addresses,
                                              std::uint16_t port, bool tls);

  void track(std::uint64_t id, std::weak_ptr<Tracked> connection) {
    std::lock_guard lock(registryMutex_);
    tracked_.emplace(id, std::move(connection));
  }
  void untrack(std::uint64_t id) {
    std::lock_guard lock(registryMutex_);
    tracked_.erase(id);
  }
  std::vector<std::shared_ptr<Tracked>> trackedConnections() {
    std::vector<std::shared_ptr<Tracked>> live;
    std::lock_guard lock(registryMutex_);
    for (const auto& [id, weak] : tracked_) {
      if (auto connection = weak.lock()) live.push_back(std::move(connection));
    }
    return live;
  }

  void countResponse(const Response& response, const Request* request) {
    const unsigned status = response.result_int();
    auto& counter = status >= 500   ? counters_.responses5xx
                    : status >= 400 ? counters_.responses4xx
                    : status >= 300 ? counters_.responses3xx
                                    : counters_.responses2xx;
    counter.fetch_add(1, std::memory_order_relaxed);
    if (status >= 500) {
      // The path only: a query string may carry a token.
      logger()->warn("{} {} -> {}",
                     request ? std::string(request->method_string()) : std::string("-"),
                     request ? std::string(pathOf(request->target())) : std::string("-"), status);
    }
  }

  void addBytesIn(std::size_t bytes) {
    counters_.bytesIn.fetch_add(bytes, std::memory_order_relaxed);
  }
  void addBytesOut(std::size_t bytes) {
    counters_.bytesOut.fetch_add(bytes, std::memory_order_relaxed);
  }

  WebServerOptions options_;
  std::shared_ptr<tls::ContextHolder> tls_;
  HttpHandler& handler_;
  WsAcceptor& wsAcceptor_;
  StaticFiles files_;
  Router router_;
  RateLimiter rateLimiter_;
  Counters counters_;
  std::atomic<bool> stopping_{false};
  std::mutex registryMutex_;
  std::unordered_map<std::uint64_t, std::weak_ptr<Tracked>> tracked_;
  // Declared after everything a session touches: destroying the io_context destroys the
  // handlers of operations still pending, and with them the last sessions.
  asio::io_context io_;
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work_;
  std::vector<std::unique_ptr<Listener>> listeners_;
  std::vector<Endpoint> httpsEndpoints_;
  std::vector<Endpoint> httpEndpoints_;
  std::vector<std::thread> threads_;
  std::mutex lifecycleMutex_;
  bool started_ = false;
  bool stopped_ = false;
};

// ---- WebSocket -------------------------------------------------------------------------------

class WsSocket;

// What the application holds. It owns no socket, so it may outlive the connection and the
// server; frames sent to a finished connection are dropped.
class WsHandle final : public WsConnection {
 public:
  WsHandle(Endpoint remote, std::uint64_t id, std::size_t maxQueuedBytes,
           Engine::Counters& counters)
      : remote_(remote), id_(id), maxQueuedBytes_(maxQueuedBytes), counters_(counters) {}

  void send(std::shared_ptr<const std::string> text) override;
  void close(std::uint16_t code, std::string reason) override;
  const Endpoint& remote() const override { return remote_; }
  std::uint64_t id() const override { return id_; }

  std::weak_ptr<WsSocket> socket;  // set before the application sees the handle
  // Bytes in the socket's queue, including the frame being written; updated by send() when
  // a frame is accepted and by the socket when one leaves.
  std::atomic<std::size_t> queuedBytes{0};
  // Set when a close was asked for or the connection ended: later frames are dropped.
  std::atomic<bool> closing{false};

 private:
  const Endpoint remote_;
  const std::uint64_t id_;
  const std::size_t maxQueuedBytes_;
  Engine::Counters& counters_;
};

class WsSocket final : public Tracked, public std::enable_shared_from_this<WsSocket> {
 public:
  WsSocket(Engine& server, Engine::ConnectionSlot slot, std::shared_ptr<tls::ServerContext> context,
           TlsStream stream, const Endpoint& remote)
      : server_(server),
        slot_(std::move(slot)),
        tlsContext_(std::move(context)),
        ws_(std::move(stream)),
        executor_(ws_.get_executor()),
        remote_(remote),
        handle_(std::make_shared<WsHandle>(remote, nextConnectionId.fetch_add(1),
                                           server.options_.limits.wsMaxQueuedBytes,
                                           server.counters_)),
        closeDeadline_(executor_) {}

  ~WsSocket() override { server_.untrack(handle_->id()); }

  // The strand; safe to read from any thread.
  const asio::any_io_executor& executor() const { return executor_; }

  // On the strand: asks the application, then completes or refuses the handshake.
  void start(Request request) {
    handle_->socket = weak_from_this();
    server_.track(handle_->id(), weak_from_this());
    std::variant<std::shared_ptr<WsSession>, Response> decision;
    try {
      decision = server_.wsAcceptor_.upgrade(request, RequestContext{remote_}, handle_);
    } catch (const std::exception& error) {
      logger()->warn("GET {}: WebSocket acceptor failed: {}", std::string(pathOf(request.target())),
                     error.what());
      decision = jsonError(500, "internal_error", "The server could not handle this request.");
    }
    if (auto* refusal = std::get_if<Response>(&decision)) {
      refuse(request, std::move(*refusal));
      return;
    }
    session_ = std::get<std::shared_ptr<WsSession>>(std::move(decision));
    if (!session_) {
      refuse(request,
             jsonError(500, "internal_error", "The server could not handle this request."));
      return;
    }
    server_.counters_.wsUpgrades.fetch_add(1, std::memory_order_relaxed);
    const Limits& limits = server_.options_.limits;
    websocket::stream_base::timeout timeout;
    timeout.handshake_timeout = limits.headerTimeout;  // opening and closing handshake
    // Beast pings after half the idle time and gives up after all of it.
    timeout.idle_timeout = 2 * limits.wsPingInterval;
    timeout.keep_alive_pings = true;
    beast::get_lowest_layer(ws_).expires_never();  // the websocket stream times itself
    ws_.set_option(timeout);
    websocket::permessage_deflate deflate;  // off: compression of attacker-influenced data
    deflate.server_enable = false;          // next to secrets invites CRIME-style attacks
    deflate.client_enable = false;
    ws_.set_option(deflate);
    ws_.read_message_max(limits.wsMaxMessageBytes);
    ws_.auto_fragment(false);
    ws_.text(true);
    const Router* router = &server_.router_;
    ws_.set_option(websocket::stream_base::decorator(
        [router](websocket::response_type& response) { router->addSecurityHeaders(response); }));
    upgradeRequest_ = std::move(request);
    ws_.async_accept(upgradeRequest_, [self = shared_from_this()](beast::error_code error) {
      self->onAccept(error);
    });
  }

  // Any thread (through WsHandle).
  void enqueue(std::shared_ptr<const std::string> text) {
    if (finished_ || closeRequested_) {
      handle_->queuedBytes.fetch_sub(text->size());
      return;
    }
    queue_.push_back(std::move(text));
    writeNext();
  }

  void requestClose(std::uint16_t code, std::string reason) {
    requestClose(code, std::move(reason), 2 * server_.options_.limits.wsPingInterval);
  }

  void requestClose(std::uint16_t code, std::string reason, std::chrono::milliseconds deadline) {
    handle_->closing = true;
    if (closeRequested_ || finished_) return;
    closeRequested_ = true;
    if (!isSendableCloseCode(code)) code = websocket::close_code::normal;
    if (reason.size() > kMaxCloseReasonBytes) reason.resize(kMaxCloseReasonBytes);
    closeReason_ = websocket::close_reason(static_cast<websocket::close_code>(code), reason);
    // A peer that never reads (its close frame stuck behind a frame it does not take) or
    // never answers the close is cut off.
    closeDeadline_.expires_after(deadline);
    closeDeadline_.async_wait([self = shared_from_this()](beast::error_code error) {
      if (!error) {
        logger()->debug("websocket {} {}: close not completed in time", self->handle_->id(),
                        self->remote_.toString());
        beast::get_lowest_layer(self->ws_).close();
      }
    });
    writeNext();
  }

  // A client too slow to take its frames: drop what waits (not the frame being written,
  // which cannot be taken back) and close with 4008.
  void closeTooSlow() {
    logger()->debug("websocket {} {}: client too slow, closing with 4008", handle_->id(),
                    remote_.toString());
    dropQueued();
    // Its close frame waits behind a frame it does not read: give it a second, then cut the
    // connection, so the room learns at once that this participant is gone.
    requestClose(4008, "too slow", std::chrono::seconds(1));
  }

  void shutdownFromServer() override {
    handle_->closing = true;
    asio::post(executor_, [self = shared_from_this()] {
      self->requestClose(websocket::close_code::going_away, "server shutting down");
    });
  }

  void finishAfterStop() override { finish(); }

 private:
  void refuse(const Request& request, Response response) {
    handle_->closing = true;
    finished_ = true;  // no session, so no onClose
    refusal_ = std::move(response);
    server_.router_.finish(refusal_, &request);
    refusal_.keep_alive(false);
    server_.countResponse(refusal_, &request);
    beast::get_lowest_layer(ws_).expires_after(server_.options_.limits.headerTimeout);
    http::async_write(ws_.next_layer(), refusal_,
                      [self = shared_from_this()](beast::error_code error, std::size_t bytes) {
                        self->server_.addBytesOut(bytes);
                        if (error) return;
                        self->ws_.next_layer().async_shutdown([self](beast::error_code) {
                          beast::get_lowest_layer(self->ws_).close();
                        });
                      });
  }

  void onAccept(const beast::error_code& error) {
    upgradeRequest_ = {};
    if (error) {
      logger()->debug("websocket {} {}: handshake failed: {}", handle_->id(), remote_.toString(),
                      error.message());
      finish();
      return;
    }
    open_ = true;
    server_.counters_.wsActive.fetch_add(1, std::memory_order_relaxed);
    counted_ = true;
    read();
    writeNext();  // frames queued during the handshake, or a close asked for meanwhile
  }

  void read() {
    ws_.async_read(readBuffer_,
                   [self = shared_from_this()](beast::error_code error, std::size_t bytes) {
                     self->onRead(error, bytes);
                   });
  }

  void onRead(const beast::error_code& error, std::size_t bytes) {
    if (error) {
      // Beast has already answered a too-big message with 1009 (RFC 6455 §7.4.1), invalid
      // UTF-8 with 1007 and a protocol error with 1002, and timed out a silent peer.
      if (!isOrdinaryEnd(error)) {
        logger()->debug("websocket {} {}: {}", handle_->id(), remote_.toString(), error.message());
      }
      finish();
      return;
    }
    server_.counters_.wsMessagesIn.fetch_add(1, std::memory_order_relaxed);
    server_.addBytesIn(bytes);
    if (!ws_.got_text()) {
      // Signaling is JSON text; RFC 6455 §7.4.1: 1003 for data the endpoint cannot accept.
      requestClose(websocket::close_code::unknown_data, "text frames only");
    } else if (!closeRequested_ && session_) {
      const auto data = readBuffer_.cdata();
      const std::string_view text(static_cast<const char*>(data.data()), data.size());
      try {
        session_->onMessage(text);
      } catch (const std::exception& failure) {
        logger()->warn("websocket {}: message handler failed: {}", handle_->id(), failure.what());
        requestClose(websocket::close_code::internal_error, "internal error");
      }
    }
    readBuffer_.consume(readBuffer_.size());
    read();
  }

  void writeNext() {
    if (writing_ || !open_ || finished_) return;
    if (queue_.empty()) {
      if (closeRequested_ && !closeStarted_) startClose();
      return;
    }
    writing_ = true;
    ws_.async_write(asio::buffer(*queue_.front()),
                    [self = shared_from_this()](beast::error_code error, std::size_t bytes) {
                      self->onWrite(error, bytes);
                    });
  }

  void onWrite(const beast::error_code& error, std::size_t bytes) {
    writing_ = false;
    if (!queue_.empty()) {
      handle_->queuedBytes.fetch_sub(queue_.front()->size());
      queue_.pop_front();
    }
    if (error) {
      if (!isOrdinaryEnd(error)) {
        logger()->debug("websocket {} {}: write failed: {}", handle_->id(), remote_.toString(),
                        error.message());
      }
      beast::get_lowest_layer(ws_).close();  // the pending read ends and finishes
      return;
    }
    server_.counters_.wsMessagesOut.fetch_add(1, std::memory_order_relaxed);
    server_.addBytesOut(bytes);
    writeNext();
  }

  void startClose() {
    closeStarted_ = true;
    ws_.async_close(closeReason_, [self = shared_from_this()](beast::error_code error) {
      // The pending read sees the peer's close frame and finishes.
      if (error) beast::get_lowest_layer(self->ws_).close();
    });
  }

  void dropQueued() {
    const auto first = queue_.begin() + (writing_ ? 1 : 0);
    std::size_t dropped = 0;
    for (auto it = first; it != queue_.end(); ++it)
      dropped += (*it)->size();
    queue_.erase(first, queue_.end());
    handle_->queuedBytes.fetch_sub(dropped);
  }

  // Ends the connection for the application: onClose exactly once, after the last onMessage.
  void finish() {
    handle_->closing = true;
    if (finished_) return;
    finished_ = true;
    if (counted_) server_.counters_.wsActive.fetch_sub(1, std::memory_order_relaxed);
    counted_ = false;
    closeDeadline_.cancel();
    dropQueued();
    beast::error_code ignored;
    beast::get_lowest_layer(ws_).socket().close(ignored);
    if (auto session = std::move(session_)) {
      try {
        session->onClose();
      } catch (const std::exception& failure) {
        logger()->warn("websocket {}: close handler failed: {}", handle_->id(), failure.what());
      }
    }
  }

  Engine& server_;
  Engine::ConnectionSlot slot_;
  std::shared_ptr<tls::ServerContext> tlsContext_;  // the certificate it was accepted with
  WsStream ws_;
  const asio::any_io_executor executor_;
  const Endpoint remote_;
  std::shared_ptr<WsHandle> handle_;
  std::shared_ptr<WsSession> session_;
  Request upgradeRequest_;
  Response refusal_;
  std::deque<std::shared_ptr<const std::string>> queue_;  // front: being written
  beast::flat_buffer readBuffer_;
  asio::steady_timer closeDeadline_;
  websocket::close_reason closeReason_;
  bool open_ = false;
  bool counted_ = false;
  bool writing_ = false;
  bool closeRequested_ = false;
  bool closeStarted_ = false;
  bool finished_ = false;
};

void WsHandle::send(std::shared_ptr<const std::string> text) {
  if (!text || closing.load()) return;
  auto target = socket.lock();
  if (!target) return;
  const std::size_t size = text->size();
  if (queuedBytes.fetch_add(size) + size > maxQueuedBytes_) {
    queuedBytes.fetch_sub(size);
    if (!closing.exchange(true)) {
      counters_.wsDroppedSlow.fetch_add(1, std::memory_order_relaxed);
      asio::post(target->executor(), [target] { target->closeTooSlow(); });
    }
    return;
  }
  asio::post(target->executor(),
             [target, text = std::move(text)]() mutable { target->enqueue(std::move(text)); });
}

void WsHandle::close(std::uint16_t code, std::string reason) {
  if (closing.exchange(true)) return;
  auto target = socket.lock();
  if (!target) return;
  asio::post(target->executor(), [target, code, reason = std::move(reason)]() mutable {
    target->requestClose(code, std::move(reason));
  });
}

// ---- HTTPS -----------------------------------------------------------------------------------

class HttpsSession final : public Tracked, public std::enable_shared_from_this<HttpsSession> {
 public:
  // Takes over a connection whose TLS handshake the first-bytes stage completed: `ssl` is the
  // established session and `received` what the client sent so far, decrypted.
  HttpsSession(Engine& server, Engine::ConnectionSlot slot,
               std::shared_ptr<tls::ServerContext> context, tls::UniqueSsl ssl,
               beast::tcp_stream stream, std::span<const std::uint8_t> received,
               const Endpoint& remote)
      : server_(server),
        slot_(std::move(slot)),
        tlsContext_(std::move(context)),
        stream_(std::in_place, std::move(stream), ssl.release()),
        context_{remote},
        id_(nextConnectionId.fetch_add(1)) {
    append(buffer_, received);
  }

  ~HttpsSession() override { server_.untrack(id_); }

  void start() {
    server_.track(id_, weak_from_this());
    asio::dispatch(stream_->get_executor(), [self = shared_from_this()] { self->readRequest(); });
  }

  void shutdownFromServer() override {
    asio::post(executor_, [self = shared_from_this()] {
      // A request being handled or written finishes first (its response says close).
      if (self->stream_ && self->state_ != State::Busy) {
        beast::get_lowest_layer(*self->stream_).close();
      }
    });
  }

 private:
  enum class State { Idle, Reading, Busy };

  beast::tcp_stream& tcpStream() { return beast::get_lowest_layer(*stream_); }
  const Limits& limits() const { return server_.options_.limits; }

  void readRequest() {
    if (server_.stopping_) {
      tcpStream().close();
      return;
    }
    parser_.emplace();
    parser_->header_limit(static_cast<std::uint32_t>(
        std::min<std::size_t>(limits().maxHeaderBytes, std::numeric_limits<std::uint32_t>::max())));
    parser_->body_limit(limits().maxBodyBytes);
    if (firstRequest_ || buffer_.size() > 0) {
      state_ = State::Reading;
      readHeader();
      return;
    }
    // Keep-alive: idleTimeout for the next request to start, then headerTimeout for its head.
    state_ = State::Idle;
    tcpStream().expires_after(limits().idleTimeout);
    stream_->async_read_some(
        buffer_.prepare(kReadChunk),
        [self = shared_from_this()](beast::error_code error, std::size_t bytes) {
          self->buffer_.commit(bytes);
          if (error) {
            self->debug("connection ended", error);
            return;
          }
          self->state_ = State::Reading;
          self->readHeader();
        });
  }

  void readHeader() {
    if (firstRequest_) {
      firstRequest_ = false;  // the deadline of the first-bytes stage still runs
    } else {
      tcpStream().expires_after(limits().headerTimeout);
    }
    http::async_read_header(
        *stream_, buffer_, *parser_,
        [self = shared_from_this()](beast::error_code error, std::size_t bytes) {
          self->onHeader(error, bytes);
        });
  }

  void onHeader(const beast::error_code& error, std::size_t bytes) {
    server_.addBytesIn(bytes);
    if (error) {
      failRead(error);
      return;
    }
    server_.counters_.requests.fetch_add(1, std::memory_order_relaxed);
    state_ = State::Busy;
    const Request& request = parser_->get();
    if (request.version() >= 11 && request.find(http::field::host) == request.end()) {
      // RFC 9112 §3.2: a 1.1 request without Host gets 400.
      reply(jsonError(400, "bad_request", "The request has no Host header."), &request, true);
      return;
    }
    if (!server_.rateLimiter_.allow(context_.remote.address, std::chrono::steady_clock::now())) {
      Response response =
          jsonError(429, "too_many_requests", "Too many requests; try again shortly.");
      response.set(http::field::retry_after,
                   std::to_string(server_.rateLimiter_.retryAfterSeconds()));
      // A body still on the wire would be read as the next request: close instead.
      reply(std::move(response), &request, !parser_->is_done());
      return;
    }
    if (websocket::is_upgrade(request)) {
      upgrade();
      return;
    }
    if (parser_->is_done()) {
      handle();
      return;
    }
    tcpStream().expires_after(limits().idleTimeout);
    http::async_read(*stream_, buffer_, *parser_,
                     [self = shared_from_this()](beast::error_code readError, std::size_t read) {
                       self->server_.addBytesIn(read);
                       if (readError) {
                         self->failRead(readError);
                         return;
                       }
                       self->handle();
                     });
  }

  // A request that could not be read: answer what deserves an answer, then close.
  void failRead(const beast::error_code& error) {
    if (error == http::error::header_limit) {
      reply(jsonError(431, "header_too_large", "The request header is too large."), nullptr, true);
    } else if (error == http::error::body_limit) {
      reply(jsonError(413, "body_too_large", "The request body is too large."), nullptr, true);
    } else if (isMalformedRequest(error)) {
      debug("bad request", error);
      reply(jsonError(400, "bad_request", "The request is not valid HTTP."), nullptr, true);
    } else {
      debug(error == beast::error::timeout ? "request timed out" : "connection ended", error);
      tcpStream().close();
    }
  }

  void handle() {
    const Request request = parser_->release();
    // The handler may block briefly; the deadline covers it and writing the response.
    tcpStream().expires_after(limits().idleTimeout);
    reply(server_.router_.respond(request, context_), &request, false);
  }

  void upgrade() {
    const bool bodyRead = parser_->is_done();
    Request request = parser_->release();
    const std::optional<std::string> path = decodeRequestPath(pathOf(request.target()));
    // "/ws" is signaling; the network check's echo (docs/netcheck.md) is the only other.
    if (!path || (*path != "/ws" && *path != "/api/v1/netcheck/echo")) {
      reply(jsonError(404, "not_found", "There is nothing at this address."), &request, true);
      return;
    }
    if (request.method() != http::verb::get || !bodyRead) {
      reply(jsonError(400, "bad_request", "A WebSocket upgrade is a GET without a body."), &request,
            true);
      return;
    }
    // The stream moves into the WebSocket; this session ends when the handler returns.
    auto socket = std::make_shared<WsSocket>(server_, std::move(slot_), tlsContext_,
                                             std::move(*stream_), context_.remote);
    stream_.reset();
    socket->start(std::move(request));
  }

  // Sends `response`; then the next request, or a TLS close_notify and the end.
  void reply(Response response, const Request* request, bool close) {
    server_.router_.finish(response, request);  // idempotent for the router's own responses
    if (close || server_.stopping_) response.keep_alive(false);
    server_.countResponse(response, request);
    state_ = State::Busy;
    response_ = std::move(response);
    tcpStream().expires_after(limits().idleTimeout);
    http::async_write(*stream_, response_,
                      [self = shared_from_this()](beast::error_code error, std::size_t bytes) {
                        self->onWrite(error, bytes);
                      });
  }

  void onWrite(const beast::error_code& error, std::size_t bytes) {
    server_.addBytesOut(bytes);
    if (error) {
      debug("write failed", error);
      tcpStream().close();
      return;
    }
    const bool keepAlive = response_.keep_alive();
    response_ = {};
    if (keepAlive && !server_.stopping_) {
      readRequest();
      return;
    }
    // RFC 8446 §6.1: close_notify, so the client knows the response is complete.
    tcpStream().expires_after(limits().headerTimeout);
    stream_->async_shutdown(
        [self = shared_from_this()](beast::error_code) { self->tcpStream().close(); });
  }

  void debug(std::string_view what, const beast::error_code& error) {
    if (isOrdinaryEnd(error)) return;
    logger()->debug("https {} {}: {}: {}", id_, context_.remote.toString(), what, error.message());
  }

  Engine& server_;
  Engine::ConnectionSlot slot_;
  std::shared_ptr<tls::ServerContext> tlsContext_;
  std::optional<TlsStream> stream_;  // moves into a WsSocket on upgrade
  asio::any_io_executor executor_{stream_->get_executor()};
  const RequestContext context_;
  const std::uint64_t id_;
  beast::flat_buffer buffer_;
  std::optional<Parser> parser_;
  Response response_;  // the one write in flight
  State state_ = State::Reading;
  bool firstRequest_ = true;
};

// ---- Plain HTTP: redirect only ---------------------------------------------------------------

class RedirectSession final : public Tracked, public std::enable_shared_from_this<RedirectSession> {
 public:
  // `received`: bytes already read from the socket (plain HTTP that arrived on the HTTPS port).
  RedirectSession(Engine& server, Engine::ConnectionSlot slot, tcp::socket socket,
                  const Endpoint& remote, std::span<const std::uint8_t> received = {})
      : server_(server),
        slot_(std::move(slot)),
        stream_(std::move(socket)),
        executor_(stream_.get_executor()),
        remote_(remote),
        id_(nextConnectionId.fetch_add(1)) {
    append(buffer_, received);
  }

  ~RedirectSession() override { server_.untrack(id_); }

  void start() {
    server_.track(id_, weak_from_this());
    asio::dispatch(executor_, [self = shared_from_this()] { self->read(); });
  }

  void shutdownFromServer() override {
    asio::post(executor_, [self = shared_from_this()] {
      if (!self->writing_) self->stream_.close();
    });
  }

 private:
  void read() {
    const Limits& limits = server_.options_.limits;
    parser_.header_limit(static_cast<std::uint32_t>(
        std::min<std::size_t>(limits.maxHeaderBytes, std::numeric_limits<std::uint32_t>::max())));
    parser_.body_limit(boost::none);  // never read: the answer is the same and closes
    stream_.expires_after(limits.headerTimeout);
    http::async_read_header(
        stream_, buffer_, parser_,
        [self = shared_from_this()](beast::error_code error, std::size_t bytes) {
          self->onHeader(error, bytes);
        });
  }

  void onHeader(const beast::error_code& error, std::size_t bytes) {
    server_.addBytesIn(bytes);
    if (error == http::error::header_limit) {
      write(jsonError(431, "header_too_large", "The request header is too large."), nullptr);
    } else if (error && isMalformedRequest(error)) {
      write(jsonError(400, "bad_request", "The request is not valid HTTP."), nullptr);
    } else if (error) {
      if (!isOrdinaryEnd(error)) {
        logger()->debug("http {} {}: {}", id_, remote_.toString(), error.message());
      }
      stream_.close();
    } else {
      server_.counters_.requests.fetch_add(1, std::memory_order_relaxed);
      const Request& request = parser_.get();
      write(redirectToHttps(request, server_.options_.publicOrigin, server_.router_), &request);
    }
  }

  void write(Response response, const Request* request) {
    if (!request) server_.router_.finish(response, nullptr);
    response.keep_alive(false);
    server_.countResponse(response, request);
    response_ = std::move(response);
    writing_ = true;
    stream_.expires_after(server_.options_.limits.headerTimeout);
    http::async_write(stream_, response_,
                      [self = shared_from_this()](beast::error_code error, std::size_t bytes) {
                        self->server_.addBytesOut(bytes);
                        beast::error_code ignored;
                        if (!error)
                          self->stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
                        self->stream_.close();
                      });
  }

  Engine& server_;
  Engine::ConnectionSlot slot_;
  beast::tcp_stream stream_;
  const asio::any_io_executor executor_;
  const Endpoint remote_;
  const std::uint64_t id_;
  beast::flat_buffer buffer_;
  Parser parser_;
  Response response_;
  bool writing_ = false;
};

// ---- The HTTPS port's first bytes: HTTPS, or TURN handed on --------------------------------

// Every connection to the HTTPS port starts here. It reads an optional PROXY protocol header
// (only from web.proxy_protocol_from, and there it is required), then looks at what the client
// sends first: TLS is terminated here (over memory, so the session can still change hands) and
// the first decrypted bytes decide again. HTTP goes to an HttpsSession (or, in the clear, to a
// redirect), STUN/TURN (a STUN header, as every TURN client starts with Allocate or Binding, or
// ALPN "stun.turn") to the TURN server
// with its socket, TLS session and the bytes read so far. ALPN and SNI are not needed: many TURN
// clients send neither. The whole stage runs under the request-head deadline (slowloris).
class FirstBytesSession final : public Tracked,
                                public std::enable_shared_from_this<FirstBytesSession> {
 public:
  FirstBytesSession(Engine& server, Engine::ConnectionSlot slot, tcp::socket socket,
                    const Endpoint& remote, const Endpoint& local, bool expectProxyHeader)
      : server_(server),
        slot_(std::move(slot)),
        stream_(std::move(socket)),
        executor_(stream_.get_executor()),
        client_(remote),
        local_(local),
        expectProxyHeader_(expectProxyHeader),
        id_(nextConnectionId.fetch_add(1)) {}

  ~FirstBytesSession() override { server_.untrack(id_); }

  void start() {
    server_.track(id_, weak_from_this());
    asio::dispatch(executor_, [self = shared_from_this()] {
      self->stream_.expires_after(self->server_.options_.limits.headerTimeout);
      self->read();
    });
  }

  void shutdownFromServer() override {
    asio::post(executor_, [self = shared_from_this()] {
      // After serveHttps() the stream belongs to the HttpsSession (and this one is moved from).
      if (!self->handedOver_) self->stream_.close();
    });
  }

 private:
  // Nothing a client sends before it is classified may exceed this (a PROXY header and a
  // ClientHello are far smaller; the decision needs 16 bytes).
  static constexpr std::size_t kMaxUndecidedBytes = 64 * 1024;

  void read() {
    stream_.async_read_some(asio::buffer(chunk_), [self = shared_from_this()](
                                                      beast::error_code error, std::size_t bytes) {
      self->onRead(error, bytes);
    });
  }

  void onRead(const beast::error_code& error, std::size_t bytes) {
    server_.addBytesIn(bytes);
    if (error) {
      end(error == beast::error::timeout ? "timed out before it said what it speaks" : "");
      return;
    }
    const std::span<const std::uint8_t> received(chunk_.data(), bytes);
    if (handshake_) {
      handshake_->feed(received);
      afterTls();
      return;
    }
    raw_.insert(raw_.end(), received.begin(), received.end());
    examine();
  }

  // Before TLS: PROXY header, then what the client speaks.
  void examine() {
    if (raw_.size() > kMaxUndecidedBytes) return reject("sent too much without being recognised");
    if (expectProxyHeader_) {
      const auto header = edge::parseProxyHeader(raw_);
      if (!header) {
        if (header.error() == edge::ProxyError::NeedMore) return read();
        return reject(
            fmt::format("bad PROXY protocol header ({})", edge::toString(header.error())));
      }
      server_.counters_.proxyHeaders.fetch_add(1, std::memory_order_relaxed);
      if (header->source) client_ = *header->source;
      raw_.erase(raw_.begin(), raw_.begin() + static_cast<std::ptrdiff_t>(header->length));
      expectProxyHeader_ = false;
    }
    switch (edge::classifyFirstBytes(raw_)) {
      case edge::FirstBytes::NeedMore:
        return read();
      case edge::FirstBytes::Tls:
        try {
          handshake_.emplace(server_.tls_->current());
        } catch (const std::bad_alloc&) {
          return end("could not start TLS: out of memory");
        }
        handshake_->feed(raw_);
        raw_.clear();
        return afterTls();
      case edge::FirstBytes::Http:
        return redirect();
      case edge::FirstBytes::Stun:
        return handOverToTurn(std::move(raw_));
      case edge::FirstBytes::ProxyV1:
      case edge::FirstBytes::ProxyV2:
        return reject("sent a PROXY protocol header but is not in web.proxy_protocol_from");
      case edge::FirstBytes::ChannelData:  // only ever follows a ChannelBind: never comes first
      case edge::FirstBytes::Unknown:
        break;
    }
    reject("speaks neither TLS, HTTP nor STUN");
  }

  // After each step of TLS: send what it produced, then go on.
  void afterTls() {
    if (!handshake_->output().empty()) {
      asio::async_write(stream_,
                        asio::buffer(handshake_->output().data(), handshake_->output().size()),
                        [self = shared_from_this()](beast::error_code error, std::size_t bytes) {
                          self->server_.addBytesOut(bytes);
                          if (error) return self->end("");
                          self->handshake_->consumeOutput();
                          self->afterTls();
                        });
      return;
    }
    switch (handshake_->state()) {
      case tls::ServerHandshake::State::Handshaking:
        return read();
      case tls::ServerHandshake::State::Failed:
        return end("TLS handshake failed: " + handshake_->error());
      case tls::ServerHandshake::State::Closed:
        return end("");
      case tls::ServerHandshake::State::Established:
        break;
    }
    const auto plaintext = handshake_->plaintext();
    if (handshake_->alpn() == "stun.turn") {
      return handOverToTurn({plaintext.begin(), plaintext.end()});  // RFC 7443
    }
    if (plaintext.size() > kMaxUndecidedBytes)
      return reject("sent too much without being recognised");
    switch (edge::classifyFirstBytes(plaintext)) {
      case edge::FirstBytes::NeedMore:
        return read();
      case edge::FirstBytes::Stun:
        return handOverToTurn({plaintext.begin(), plaintext.end()});
      default:
        // HTTP, or something broken that the HTTP parser answers with 400.
        return serveHttps();
    }
  }

  void serveHttps() {
    std::shared_ptr<tls::ServerContext> context = handshake_->context();
    const std::vector<std::uint8_t> received(handshake_->plaintext().begin(),
                                             handshake_->plaintext().end());
    tls::UniqueSsl ssl = handshake_->release();
    if (!ssl) return end("TLS session could not be handed over");
    handedOver_ = true;
    std::make_shared<HttpsSession>(server_, std::move(slot_), std::move(context), std::move(ssl),
                                   std::move(stream_), received, client_)
        ->start();
  }

  void redirect() {
    std::make_shared<RedirectSession>(server_, std::move(slot_), stream_.release_socket(), client_,
                                      raw_)
        ->start();
  }

  void handOverToTurn(std::vector<std::uint8_t> received) {
    const auto& handOff = server_.options_.turnHandoff;
    if (!handOff) return reject("speaks STUN/TURN, which this port does not serve");
    tls::AcceptedStream accepted;
    if (handshake_) {
      accepted.context = handshake_->context();
      accepted.ssl = handshake_->release();
      if (!accepted.ssl) return end("TLS session could not be handed over");
    }
    accepted.received = std::move(received);
    accepted.client = client_;
    accepted.local = local_;
    tcp::socket socket = stream_.release_socket();
    beast::error_code error;
    accepted.socket = tls::UniqueFd(socket.release(error));
    if (error) return end("could not hand the socket over: " + error.message());
    server_.counters_.turnHandoffs.fetch_add(1, std::memory_order_relaxed);
    try {
      handOff(std::move(accepted));
    } catch (const std::exception& failure) {
      logger()->warn("handing {} over to TURN failed: {}", client_.toString(), failure.what());
    }
  }

  void reject(const std::string& why) {
    server_.counters_.firstBytesRejected.fetch_add(1, std::memory_order_relaxed);
    end(why);
  }

  void end(const std::string& why) {
    if (!why.empty()) logger()->debug("https port {} {}: {}", id_, client_.toString(), why);
    stream_.close();
  }

  Engine& server_;
  Engine::ConnectionSlot slot_;
  beast::tcp_stream stream_;
  const asio::any_io_executor executor_;
  Endpoint client_;
  const Endpoint local_;
  bool expectProxyHeader_;
  const std::uint64_t id_;
  std::array<std::uint8_t, kReadChunk> chunk_{};
  std::vector<std::uint8_t> raw_;  // before TLS
  std::optional<tls::ServerHandshake> handshake_;
  bool handedOver_ = false;  // stream_ moved into an HttpsSession
};

// ---- Listening -------------------------------------------------------------------------------

std::vector<std::unique_ptr<Engine::Listener>> Engine::bind(const std::vector<IpAddress>& addresses,
                                                            std::uint16_t port, bool tls) {
  // Port 0: the first address picks a free port and the others must get the same one;
  // another process may take it in between, so try again a few times.
  constexpr int kAttempts = 20;
  for (int attempt = 0;; ++attempt) {
    std::vector<std::unique_ptr<Listener>> bound;
    std::uint16_t chosen = port;
    std::string failure;
    for (const IpAddress& address : addresses) {
      auto listener = std::make_unique<Listener>(io_, tls);
      const tcp::endpoint endpoint(toAsio(address), chosen);
      beast::error_code error;
      tcp::acceptor& acceptor = listener->acceptor;
      acceptor.open(endpoint.protocol(), error);
      // V6ONLY so that "::" and "0.0.0.0" are separate listeners, as in the TURN server;
      // SO_REUSEADDR only skips TIME_WAIT, and without SO_REUSEPORT a port someone else
      // listens on fails here instead of being shared.
      if (!error && !address.isV4()) acceptor.set_option(asio::ip::v6_only(true), error);
      if (!error) acceptor.set_option(tcp::acceptor::reuse_address(true), error);
      if (!error) acceptor.bind(endpoint, error);
      if (!error) acceptor.listen(asio::socket_base::max_listen_connections, error);
      if (error) {
        failure =
            "cannot listen on tcp " + Endpoint{address, chosen}.toString() + ": " + error.message();
        break;
      }
      listener->local = toEndpoint(acceptor.local_endpoint());
      chosen = listener->local.port;
      bound.push_back(std::move(listener));
    }
    if (failure.empty()) return bound;
    if (port != 0 || attempt + 1 == kAttempts) throw BindError(failure);
  }
}

void Engine::accept(Listener& listener) {
  listener.acceptor.async_accept(asio::make_strand(io_),
                                 [this, &listener](beast::error_code error, tcp::socket socket) {
                                   onAccept(listener, error, std::move(socket));
                                 });
}

void Engine::onAccept(Listener& listener, const beast::error_code& error, tcp::socket socket) {
  if (error == asio::error::operation_aborted || !listener.acceptor.is_open()) return;
  if (error) {
    // Out of descriptors or memory: wait a little instead of spinning on the error.
    logger()->debug("accept on {} failed: {}", listener.local.toString(), error.message());
    listener.retry.expires_after(std::chrono::milliseconds(100));
    listener.retry.async_wait([this, &listener](beast::error_code waitError) {
      if (!waitError && listener.acceptor.is_open()) accept(listener);
    });
    return;
  }
  accept(listener);
  beast::error_code ignored;
  if (counters_.connectionsActive.load(std::memory_order_relaxed) >=
          options_.limits.maxConnections ||
      stopping_) {
    counters_.connectionsRejected.fetch_add(1, std::memory_order_relaxed);
    socket.close(ignored);
    return;
  }
  const tcp::endpoint remote = socket.remote_endpoint(ignored);
  if (ignored) return;                              // already gone
  socket.set_option(tcp::no_delay(true), ignored);  // signaling frames are small and urgent
  counters_.connectionsAccepted.fetch_add(1, std::memory_order_relaxed);
  ConnectionSlot slot(&counters_);
  if (!listener.tls) {
    std::make_shared<RedirectSession>(*this, std::move(slot), std::move(socket), toEndpoint(remote))
        ->start();
    return;
  }
  const Endpoint client = toEndpoint(remote);
  const Endpoint local = toEndpoint(socket.local_endpoint(ignored));
  const bool expectProxyHeader =
      std::any_of(options_.proxyProtocolFrom.begin(), options_.proxyProtocolFrom.end(),
                  [&](const Cidr& range) { return range.contains(client.address); });
  std::make_shared<FirstBytesSession>(*this, std::move(slot), std::move(socket), client, local,
                                      expectProxyHeader)
      ->start();
}

void Engine::start() {
  std::lock_guard lock(lifecycleMutex_);
  if (started_) throw std::logic_error("web server started twice");
  if (!options_.clientDir.empty()) files_ = StaticFiles::load(options_.clientDir);
  std::vector<IpAddress> addresses = options_.listen;
  if (addresses.empty()) addresses.push_back(IpAddress::v4(0x7F000001));
  auto https = bind(addresses, options_.httpsPort, true);
  std::vector<std::unique_ptr<Listener>> plain;
  if (options_.httpPort) plain = bind(addresses, *options_.httpPort, false);
  for (auto& listener : https)
    httpsEndpoints_.push_back(listener->local);
  for (auto& listener : plain)
    httpEndpoints_.push_back(listener->local);
  std::move(https.begin(), https.end(), std::back_inserter(listeners_));
  std::move(plain.begin(), plain.end(), std::back_inserter(listeners_));
  started_ = true;
  for (auto& listener : listeners_)
    accept(*listener);
  work_.emplace(io_.get_executor());
  const unsigned count = threadCount();
  for (unsigned i = 0; i < count; ++i) {
    threads_.emplace_back([this] {
      for (;;) {
        try {
          io_.run();
          return;
        } catch (const std::exception& error) {
          // Handlers catch what the application throws; this is a bug, not a reason to stop.
          logger()->error("web event loop: {}", error.what());
        }
      }
    });
  }
}

void Engine::stopAccepting() {
  for (auto& listener : listeners_) {
    asio::post(listener->acceptor.get_executor(), [&listener = *listener] {
      beast::error_code ignored;
      listener.acceptor.close(ignored);
      listener.retry.cancel();
    });
  }
}

void Engine::stop() {
  std::lock_guard lock(lifecycleMutex_);
  if (!started_ || stopped_) return;
  stopped_ = true;
  stopping_ = true;
  stopAccepting();
  for (const auto& connection : trackedConnections())
    connection->shutdownFromServer();
  const auto deadline = std::chrono::steady_clock::now() + kStopGrace;
  while (counters_.connectionsActive.load() > 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  work_.reset();
  io_.stop();
  for (auto& thread : threads_)
    thread.join();
  threads_.clear();
  // What did not finish in time: the application still hears onClose for each WebSocket.
  for (const auto& connection : trackedConnections())
    connection->finishAfterStop();
}

}  // namespace

// ---- WebServer -------------------------------------------------------------------------------

class WebServer::Impl : public Engine {
 public:
  using Engine::Engine;
};

WebServer::WebServer(WebServerOptions options, std::shared_ptr<tls::ContextHolder> tls,
                     HttpHandler& handler, WsAcceptor& acceptor)
    : impl_(std::make_unique<Impl>(std::move(options), std::move(tls), handler, acceptor)) {}

WebServer::~WebServer() {
  stop();
}

void WebServer::start() {
  impl_->start();
}

std::vector<Endpoint> WebServer::httpsEndpoints() const {
  std::lock_guard lock(impl_->lifecycleMutex_);
  return impl_->httpsEndpoints_;
}

std::vector<Endpoint> WebServer::httpEndpoints() const {
  std::lock_guard lock(impl_->lifecycleMutex_);
  return impl_->httpEndpoints_;
}

void WebServer::stopAccepting() {
  impl_->stopAccepting();
}

std::size_t WebServer::activeWebSockets() const {
  return impl_->counters_.wsActive.load(std::memory_order_relaxed);
}

void WebServer::stop() {
  impl_->stop();
}

WebCounters WebServer::counters() const {
  const Engine::Counters& c = impl_->counters_;
  const auto get = [](const std::atomic<std::uint64_t>& value) {
    return value.load(std::memory_order_relaxed);
  };
  WebCounters out;
  out.requests = get(c.requests);
  out.responses2xx = get(c.responses2xx);
  out.responses3xx = get(c.responses3xx);
  out.responses4xx = get(c.responses4xx);
  out.responses5xx = get(c.responses5xx);
  out.connectionsAccepted = get(c.connectionsAccepted);
  out.connectionsRejected = get(c.connectionsRejected);
  out.connectionsActive = get(c.connectionsActive);
  out.wsUpgrades = get(c.wsUpgrades);
  out.wsActive = get(c.wsActive);
  out.wsMessagesIn = get(c.wsMessagesIn);
  out.wsMessagesOut = get(c.wsMessagesOut);
  out.wsDroppedSlow = get(c.wsDroppedSlow);
  out.bytesIn = get(c.bytesIn);
  out.bytesOut = get(c.bytesOut);
  out.proxyHeaders = get(c.proxyHeaders);
  out.turnHandoffs = get(c.turnHandoffs);
  out.firstBytesRejected = get(c.firstBytesRejected);
  return out;
}

bool WebServer::isAllowedOrigin(std::string_view origin) const {
  const std::string& ours = impl_->options_.publicOrigin;
  return origin.size() == ours.size() &&
         std::equal(origin.begin(), origin.end(), ours.begin(), [](char a, char b) {
           return std::tolower(static_cast<unsigned char>(a)) ==
                  std::tolower(static_cast<unsigned char>(b));
         });
}

}  // namespace parley::web
