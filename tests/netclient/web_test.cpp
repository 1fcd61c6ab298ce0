// HTTPS requests and the WebSocket echo of the network check against real servers on loopback
// (Boost.Beast servers written here, plain and over TLS with parley's self-signed certificate),
// and the URL, proxy and NO_PROXY rules of the runner.
#include <atomic>
#include <chrono>
#include <filesystem>
#include <string>
#include <thread>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <poll.h>

#include <parley/netclient/runner.hpp>
#include <parley/netclient/transport.hpp>
#include <parley/netclient/web.hpp>
#include <parley/tls/certificate.hpp>

namespace parley::netclient {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
using namespace std::chrono_literals;
using asio::ip::tcp;
using ::testing::HasSubstr;

// A server on 127.0.0.1 that hands each of up to `connections` clients, plain or after a TLS
// handshake, to `serve(stream)`. Every wait is bounded.
class BeastServer {
 public:
  template <typename Serve>
  BeastServer(bool tls, int connections, Serve serve)
      : acceptor_(context_, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0)) {
    if (tls) {
      const auto dir = std::filesystem::temp_directory_path() /
                       ("parley-web-test-" + std::to_string(::getpid()));
      const auto paths = tls::ensureSelfSigned(dir, {"parley.test"});
      ssl_.use_certificate_chain_file(paths.cert.string());
      ssl_.use_private_key_file(paths.key.string(), asio::ssl::context::pem);
    }
    thread_ = std::thread([this, tls, connections, serve] {
      for (int i = 0; i < connections && !stop_; ++i) {
        pollfd poller{acceptor_.native_handle(), POLLIN, 0};
        if (::poll(&poller, 1, 5000) != 1 || stop_) return;
        tcp::socket socket(context_);
        boost::system::error_code ec;
        acceptor_.accept(socket, ec);
        if (ec) return;
        // No client waits for a stuck server test longer than this.
        timeval timeout{3, 0};
        ::setsockopt(socket.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
        try {
          if (tls) {
            asio::ssl::stream<tcp::socket> stream(std::move(socket), ssl_);
            stream.handshake(asio::ssl::stream_base::server);
            serve(stream);
          } else {
            serve(socket);
          }
        } catch (const std::exception&) {
          // The client went away or misbehaved on purpose: the next one.
        }
      }
    });
  }
  ~BeastServer() {
    stop_ = true;
    ::shutdown(acceptor_.native_handle(), SHUT_RDWR);
    thread_.join();
  }
  Endpoint endpoint() const {
    return Endpoint{*IpAddress::parse("127.0.0.1"), acceptor_.local_endpoint().port()};
  }

 private:
  asio::io_context context_;
  tcp::acceptor acceptor_;
  asio::ssl::context ssl_{asio::ssl::context::tls_server};
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

// Answers requests on one connection until it closes: GET /hello, POST /echo (201 with the
// body), GET /big (2 MiB), anything else 404.
template <typename Stream>
void serveHttp(Stream& stream) {
  beast::flat_buffer buffer;
  for (int i = 0; i < 10; ++i) {
    http::request<http::string_body> request;
    boost::system::error_code ec;
    http::read(stream, buffer, request, ec);
    if (ec) return;
    http::response<http::string_body> response{http::status::not_found, 11};
    response.set(http::field::content_type, "application/json");
    if (request.target() == "/hello") {
      response.result(http::status::ok);
      response.body() = R"({"hello":")" + std::string(request[http::field::host]) + "\"}";
    } else if (request.target() == "/echo" && request.method() == http::verb::post) {
      response.result(http::status::created);
      response.body() = request.body();
    } else if (request.target() == "/big") {
      response.result(http::status::ok);
      response.body() = std::string(2 * 1024 * 1024, 'x');
    }
    response.prepare_payload();
    http::write(stream, response, ec);
    if (ec) return;
  }
}

TEST(HttpRequest, GetAndPostOverTlsOnOneConnection) {
  BeastServer server(true, 1, [](auto& stream) { serveHttp(stream); });
  const Deadline deadline = Clock::now() + 5s;
  auto tcp = connectTcp(server.endpoint(), deadline);
  ASSERT_TRUE(tcp) << tcp.error().message;
  TlsFacts facts;
  auto tls = startTls(std::move(*tcp), "parley.test", "http/1.1", deadline, &facts);
  ASSERT_TRUE(tls) << tls.error().message;

  auto hello = httpRequest(**tls, {"GET", "parley.test:8443", "/hello", {}}, deadline);
  ASSERT_TRUE(hello) << hello.error().message;
  EXPECT_EQ(hello->status, 200u);
  EXPECT_EQ(hello->reason, "OK");
  EXPECT_EQ(hello->contentType, "application/json");
  EXPECT_EQ(hello->body, R"({"hello":"parley.test:8443"})");

  auto created = httpRequest(**tls, {"POST", "parley.test", "/echo", "{}"}, deadline);
  ASSERT_TRUE(created) << created.error().message;
  EXPECT_EQ(created->status, 201u);
  EXPECT_EQ(created->body, "{}");

  auto missing = httpRequest(**tls, {"GET", "parley.test", "/nothing", {}}, deadline);
  ASSERT_TRUE(missing) << missing.error().message;
  EXPECT_EQ(missing->status, 404u);
}

TEST(HttpRequest, ResponseLargerThanTheLimitIsRefused) {
  BeastServer server(false, 1, [](auto& stream) { serveHttp(stream); });
  const Deadline deadline = Clock::now() + 5s;
  auto tcp = connectTcp(server.endpoint(), deadline);
  ASSERT_TRUE(tcp) << tcp.error().message;
  auto big = httpRequest(**tcp, {"GET", "x", "/big", {}}, deadline);
  ASSERT_FALSE(big);
  EXPECT_EQ(big.error().code, "protocol");
  EXPECT_THAT(big.error().message, HasSubstr("more than 1024 KiB"));
}

TEST(HttpRequest, SilentServerTimesOutAtTheDeadline) {
  std::atomic<bool> done{false};
  BeastServer server(false, 1, [&done](auto&) {
    for (int i = 0; i < 50 && !done; ++i)
      std::this_thread::sleep_for(50ms);
  });
  auto tcp = connectTcp(server.endpoint(), Clock::now() + 2s);
  ASSERT_TRUE(tcp) << tcp.error().message;
  const auto started = Clock::now();
  auto answer = httpRequest(**tcp, {"GET", "x", "/hello", {}}, started + 300ms);
  const auto took = Clock::now() - started;
  done = true;
  ASSERT_FALSE(answer);
  EXPECT_EQ(answer.error().code, "timeout");
  EXPECT_GE(took, 290ms);
  EXPECT_LT(took, 1500ms);
}

TEST(HttpRequest, SomethingElseThanHttpIsAProtocolFailure) {
  BeastServer server(false, 1, [](auto& socket) {
    asio::write(socket, asio::buffer(std::string("SSH-2.0-OpenSSH_9.2\r\n")));
    beast::flat_buffer buffer;
    boost::system::error_code ec;
    socket.read_some(buffer.prepare(512), ec);
  });
  auto tcp = connectTcp(server.endpoint(), Clock::now() + 2s);
  ASSERT_TRUE(tcp) << tcp.error().message;
  auto answer = httpRequest(**tcp, {"GET", "x", "/", {}}, Clock::now() + 3s);
  ASSERT_FALSE(answer);
  EXPECT_EQ(answer.error().code, "protocol");
  EXPECT_THAT(answer.error().message, HasSubstr("HTTP"));
}

// The echo endpoint's behaviour: upgrade only for /echo?ticket=good, then echo every message
// (or, with `corrupt`, answer something else).
template <typename Stream>
void serveEcho(Stream& stream, std::string* origin, bool corrupt) {
  beast::flat_buffer buffer;
  http::request<http::string_body> request;
  http::read(stream, buffer, request);
  if (request.target() != "/echo?ticket=good" || !websocket::is_upgrade(request)) {
    http::response<http::string_body> refused{http::status::unauthorized, 11};
    refused.body() = R"({"error":{"code":"invalid_token"}})";
    refused.prepare_payload();
    http::write(stream, refused);
    return;
  }
  *origin = std::string(request[http::field::origin]);
  websocket::stream<Stream&> socket(stream);
  socket.accept(request);
  for (int i = 0; i < 32; ++i) {
    beast::flat_buffer message;
    boost::system::error_code ec;
    socket.read(message, ec);
    if (ec) return;
    socket.text(true);
    if (corrupt) {
      socket.write(asio::buffer(std::string("not the message")));
    } else {
      socket.write(message.data());
    }
  }
}

TEST(WebSocketEcho, EchoesRoundTripOverTls) {
  std::string origin;
  BeastServer server(true, 1, [&origin](auto& stream) { serveEcho(stream, &origin, false); });
  const Deadline deadline = Clock::now() + 5s;
  auto tcp = connectTcp(server.endpoint(), deadline);
  ASSERT_TRUE(tcp) << tcp.error().message;
  auto tls = startTls(std::move(*tcp), "parley.test", "http/1.1", deadline, nullptr);
  ASSERT_TRUE(tls) << tls.error().message;
  auto echo = websocketEcho(std::move(*tls), "parley.test:8443", "https://parley.test",
                            "/echo?ticket=good", 5, deadline);
  ASSERT_TRUE(echo) << echo.error().message;
  EXPECT_EQ(echo->messages, 5u);
  ASSERT_EQ(echo->roundTrips.size(), 5u);
  EXPECT_GT(echo->medianRoundTrip.count(), 0);
  EXPECT_LT(echo->medianRoundTrip, 1s);
  EXPECT_EQ(origin, "https://parley.test");
}

TEST(WebSocketEcho, RefusedUpgradeNamesTheStatusNotTheTicket) {
  std::string origin;
  BeastServer server(false, 1, [&origin](auto& stream) { serveEcho(stream, &origin, false); });
  auto tcp = connectTcp(server.endpoint(), Clock::now() + 2s);
  ASSERT_TRUE(tcp) << tcp.error().message;
  auto echo = websocketEcho(std::move(*tcp), "parley.test", "https://parley.test",
                            "/echo?ticket=secret-ticket", 3, Clock::now() + 3s);
  ASSERT_FALSE(echo);
  EXPECT_EQ(echo.error().code, "http_status");
  EXPECT_THAT(echo.error().message, HasSubstr("401"));
  EXPECT_THAT(echo.error().message, HasSubstr("/echo"));
  EXPECT_THAT(echo.error().message, ::testing::Not(HasSubstr("secret-ticket")));
}

TEST(WebSocketEcho, WrongEchoIsAProtocolFailure) {
  std::string origin;
  BeastServer server(false, 1, [&origin](auto& stream) { serveEcho(stream, &origin, true); });
  auto tcp = connectTcp(server.endpoint(), Clock::now() + 2s);
  ASSERT_TRUE(tcp) << tcp.error().message;
  auto echo = websocketEcho(std::move(*tcp), "parley.test", "https://parley.test",
                            "/echo?ticket=good", 3, Clock::now() + 3s);
  ASSERT_FALSE(echo);
  EXPECT_EQ(echo.error().code, "protocol");
  EXPECT_THAT(echo.error().message, HasSubstr("something else"));
}

TEST(ServerUrl, HttpsUrlsOfHostsOnly) {
  auto plain = parseServerUrl("https://Parley.Example.com/room/x");
  ASSERT_TRUE(plain) << plain.error().message;
  EXPECT_EQ(plain->host, "parley.example.com");
  EXPECT_EQ(plain->port, 443);
  EXPECT_EQ(plain->origin(), "https://parley.example.com");

  auto v6 = parseServerUrl("HTTPS://[2001:db8::1]:8443");
  ASSERT_TRUE(v6) << v6.error().message;
  EXPECT_EQ(v6->host, "2001:db8::1");
  EXPECT_EQ(v6->port, 8443);
  EXPECT_EQ(v6->hostHeader(), "[2001:db8::1]:8443");

  auto address = parseServerUrl("https://203.0.113.10:443?x");
  ASSERT_TRUE(address);
  EXPECT_EQ(address->origin(), "https://203.0.113.10");

  for (const char* bad :
       {"", "nonsense", "ftp://x", "http://x", "https://", "https://:443", "https://x:0",
        "https://x:65536", "https://x:44a", "https://a b", "https://user:pw@x", "https://[::1",
        "https://[::1]x", "https://ex%41mple.com"}) {
    const auto parsed = parseServerUrl(bad);
    EXPECT_FALSE(parsed) << bad;
    if (!parsed) {
      EXPECT_THAT(parsed.error().message, HasSubstr("https://HOST")) << bad;
    }
  }
  EXPECT_THAT(parseServerUrl("https://user:pw@x").error().message,
              ::testing::Not(HasSubstr("pw@")));
}

TEST(ProxyUrl, HostPortAndCredentials) {
  auto proxy = parseProxyUrl("http://carl:p%40ss@10.10.0.1:8080/");
  ASSERT_TRUE(proxy) << proxy.error().message;
  EXPECT_EQ(proxy->host, "10.10.0.1");
  EXPECT_EQ(proxy->port, 8080);
  EXPECT_EQ(proxy->userColonPassword, "carl:p@ss");
  EXPECT_EQ(proxy->display(), "10.10.0.1:8080");

  auto bare = parseProxyUrl("proxy.corp.example");
  ASSERT_TRUE(bare);
  EXPECT_EQ(bare->port, 3128);
  EXPECT_EQ(bare->userColonPassword, "");

  for (const char* bad :
       {"socks5://p:1080", "https://p:3128", "http://", "http://p:0", "http://p:x"}) {
    EXPECT_FALSE(parseProxyUrl(bad)) << bad;
  }
  const auto refused = parseProxyUrl("socks5://carl:hunter2@p:1080");
  ASSERT_FALSE(refused);
  EXPECT_THAT(refused.error().message, ::testing::Not(HasSubstr("hunter2")));
}

TEST(NoProxy, CurlRules) {
  EXPECT_TRUE(noProxyMatches("*", "parley.example.com"));
  EXPECT_TRUE(noProxyMatches("example.com", "parley.example.com"));
  EXPECT_TRUE(noProxyMatches(".example.com", "parley.example.com"));
  EXPECT_TRUE(noProxyMatches("localhost, PARLEY.example.com", "parley.example.com"));
  EXPECT_FALSE(noProxyMatches("le.com", "parley.example.com"));
  EXPECT_FALSE(noProxyMatches("parley.example.com.evil", "parley.example.com"));
  EXPECT_FALSE(noProxyMatches("", "parley.example.com"));
  EXPECT_TRUE(noProxyMatches("localhost,127.0.0.1", "127.0.0.1"));
  EXPECT_TRUE(noProxyMatches("10.0.0.0/8", "10.1.2.3"));
  EXPECT_FALSE(noProxyMatches("10.0.0.0/8", "11.1.2.3"));
  EXPECT_TRUE(noProxyMatches("[::1]", "::1"));
  EXPECT_FALSE(noProxyMatches("127.0.0.1", "127.0.0.2"));
}

TEST(RunChecks, BadUrlEndsTheRunAtOnceAsBlocked) {
  RunOptions options;
  options.url = "ftp://parley.example.com";
  std::vector<std::string> seen;
  const auto report = runChecks(options, [&seen](const netcheck::CheckResult& check, bool done) {
    seen.push_back(check.id + (done ? ":done" : ":start"));
  });
  ASSERT_EQ(report.checks.size(), 1u);
  EXPECT_EQ(report.checks[0].id, "url");
  EXPECT_EQ(report.checks[0].verdict, netcheck::Verdict::Fail);
  EXPECT_THAT(report.checks[0].summary, HasSubstr("ftp is not https"));
  EXPECT_EQ(seen, (std::vector<std::string>{"url:start", "url:done"}));
  EXPECT_EQ(report.assessment.grade, netcheck::Grade::Blocked);
}

}  // namespace
}  // namespace parley::netclient
