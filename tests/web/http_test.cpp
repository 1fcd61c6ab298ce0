// Request handling without sockets: helpers, path checks, routing, static files, the rate
// limiter.
#include <atomic>
#include <fstream>
#include <random>
#include <stdexcept>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <unistd.h>
#include <zlib.h>

#include <parley/web/rate_limiter.hpp>
#include <parley/web/router.hpp>
#include <parley/web/server.hpp>
#include <parley/web/static_files.hpp>

namespace parley::web {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

std::string gunzip(const std::string& compressed) {
  z_stream stream{};
  EXPECT_EQ(inflateInit2(&stream, 15 + 16), Z_OK);
  stream.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(compressed.data()));
  stream.avail_in = static_cast<uInt>(compressed.size());
  std::string out;
  int result = Z_OK;
  while (result == Z_OK) {
    char chunk[4096];
    stream.next_out = reinterpret_cast<Bytef*>(chunk);
    stream.avail_out = sizeof chunk;
    result = inflate(&stream, Z_NO_FLUSH);
    out.append(chunk, sizeof chunk - stream.avail_out);
  }
  EXPECT_EQ(result, Z_STREAM_END);
  inflateEnd(&stream);
  return out;
}

Request get(std::string target, http::verb method = http::verb::get) {
  Request request{method, target, 11};
  request.set(http::field::host, "localhost");
  return request;
}

nlohmann::json bodyJson(const Response& response) {
  return nlohmann::json::parse(response.body(), nullptr, false);
}

// ---- helpers -------------------------------------------------------------------------------

TEST(Helpers, JsonResponseSetsTypeAndLength) {
  const Response response = jsonResponse(201, R"({"a":1})");
  EXPECT_EQ(response.result_int(), 201u);
  EXPECT_EQ(response[http::field::content_type], "application/json; charset=utf-8");
  EXPECT_EQ(response[http::field::content_length], "7");
  EXPECT_EQ(response.body(), R"({"a":1})");
}

TEST(Helpers, JsonErrorEscapesCodeAndMessage) {
  const Response response = jsonError(409, "invitation_used", "quote \" and \n newline \xff");
  const auto body = bodyJson(response);
  ASSERT_FALSE(body.is_discarded());
  EXPECT_EQ(response.result_int(), 409u);
  EXPECT_EQ(body["error"]["code"], "invitation_used");
  EXPECT_THAT(body["error"]["message"].get<std::string>(), StartsWith("quote \" and \n newline"));
}

TEST(Helpers, CookieFindsNameAcrossHeadersAndStripsQuotes) {
  Request request = get("/");
  request.insert(http::field::cookie, "a=1; parley_session=abc.def ; b=2");
  request.insert(http::field::cookie, "parley_guest=\"quoted\"");
  EXPECT_EQ(cookie(request, "parley_session"), "abc.def");
  EXPECT_EQ(cookie(request, "parley_guest"), "quoted");
  EXPECT_EQ(cookie(request, "b"), "2");
  EXPECT_EQ(cookie(request, "parley"), std::nullopt);
  EXPECT_EQ(cookie(get("/"), "a"), std::nullopt);
}

TEST(Helpers, SetAndClearCookieCarryTheSecureAttributes) {
  EXPECT_EQ(setCookie("parley_session", "tok", std::chrono::seconds(3600)),
            "parley_session=tok; Max-Age=3600; Path=/; HttpOnly; Secure; SameSite=Strict");
  EXPECT_EQ(clearCookie("parley_session"),
            "parley_session=; Max-Age=0; Path=/; HttpOnly; Secure; SameSite=Strict");
}

TEST(Helpers, QueryParamDecodesAndStopsAtFragment) {
  EXPECT_EQ(queryParam("/ws?room=abc%2Fd&x=1", "room"), "abc/d");
  EXPECT_EQ(queryParam("/ws?a=1&name=J%C3%BCrg+en", "name"), "J\xC3\xBCrg en");
  EXPECT_EQ(queryParam("/ws?flag&b=2", "flag"), "");
  EXPECT_EQ(queryParam("/ws?a=1#b=2", "b"), std::nullopt);
  EXPECT_EQ(queryParam("/ws", "a"), std::nullopt);
  EXPECT_EQ(queryParam("/ws?a=%zz", "a"), std::nullopt);
  EXPECT_EQ(queryParam("/ws?a=%4", "a"), std::nullopt);
}

TEST(Helpers, PathOfDropsQueryAndFragment) {
  EXPECT_EQ(pathOf("/api/v1/rooms?x=1"), "/api/v1/rooms");
  EXPECT_EQ(pathOf("/join#t=abc"), "/join");
  EXPECT_EQ(pathOf("/"), "/");
}

// ---- paths ---------------------------------------------------------------------------------

TEST(DecodeRequestPath, AcceptsOrdinaryPaths) {
  EXPECT_EQ(decodeRequestPath("/assets/app.js"), "/assets/app.js");
  EXPECT_EQ(decodeRequestPath("/room/a%20b"), "/room/a b");
  EXPECT_EQ(decodeRequestPath("/"), "/");
}

TEST(DecodeRequestPath, RefusesTraversalAndEncodingTricks) {
  for (const char* path :
       {"/../etc/passwd", "/assets/../../secret", "/%2e%2e/secret", "/%2E%2E%2fsecret",
        "/assets%2fapp.js", "/assets%2Fapp.js", "/%252e%252e/secret", "/assets%5capp.js",
        "/assets\\app.js", "/a%00b", "/%", "/%4", "/%zz", "relative", "", "/..", "/a/.."}) {
    EXPECT_EQ(decodeRequestPath(path), std::nullopt) << path;
  }
  EXPECT_EQ(decodeRequestPath(std::string_view("/a\0b", 4)), std::nullopt);
}

TEST(ContentSecurityPolicy, NamesTheWebSocketOrigin) {
  const std::string csp = contentSecurityPolicy("https://meet.example.com:8443");
  EXPECT_THAT(csp, HasSubstr("connect-src 'self' wss://meet.example.com:8443;"));
  EXPECT_THAT(csp, HasSubstr("frame-ancestors 'none'"));
  EXPECT_THAT(contentSecurityPolicy("https://localhost"), HasSubstr("wss://localhost;"));
}

// ---- static files --------------------------------------------------------------------------

TEST(StaticFiles, ContentTypesByExtension) {
  EXPECT_EQ(contentTypeFor("a.html"), "text/html; charset=utf-8");
  EXPECT_EQ(contentTypeFor("a.js"), "text/javascript; charset=utf-8");
  EXPECT_EQ(contentTypeFor("a.mjs"), "text/javascript; charset=utf-8");
  EXPECT_EQ(contentTypeFor("a.CSS"), "text/css; charset=utf-8");
  EXPECT_EQ(contentTypeFor("a.svg"), "image/svg+xml");
  EXPECT_EQ(contentTypeFor("a.png"), "image/png");
  EXPECT_EQ(contentTypeFor("favicon.ico"), "image/x-icon");
  EXPECT_EQ(contentTypeFor("a.json"), "application/json; charset=utf-8");
  EXPECT_EQ(contentTypeFor("app.webmanifest"), "application/manifest+json");
  EXPECT_EQ(contentTypeFor("f.woff2"), "font/woff2");
  EXPECT_EQ(contentTypeFor("robots.txt"), "text/plain; charset=utf-8");
  EXPECT_EQ(contentTypeFor("app.js.map"), "application/json; charset=utf-8");
  EXPECT_EQ(contentTypeFor("noextension"), "application/octet-stream");
  EXPECT_EQ(contentTypeFor("a.exe"), "application/octet-stream");
}

TEST(StaticFiles, GzipOnlyWhenSmallerAndEtagsDiffer) {
  std::string random(4096, '\0');
  std::mt19937 generator(7);
  for (char& c : random)
    c = static_cast<char>(generator());
  const auto files =
      StaticFiles::fromMemory({{"/app.js", std::string(10000, 'x')}, {"/noise.png", random}});
  const StaticAsset* js = files.find("/app.js");
  ASSERT_NE(js, nullptr);
  ASSERT_FALSE(js->gzipBody.empty());
  EXPECT_LT(js->gzipBody.size(), js->body.size());
  EXPECT_EQ(gunzip(js->gzipBody), js->body);
  EXPECT_NE(js->etag, js->gzipEtag);
  EXPECT_THAT(js->etag, StartsWith("\""));
  const StaticAsset* png = files.find("/noise.png");
  ASSERT_NE(png, nullptr);
  EXPECT_TRUE(png->gzipBody.empty());
  EXPECT_EQ(files.find("/missing"), nullptr);
}

TEST(StaticFiles, EtagDependsOnContentOnly) {
  const auto a = StaticFiles::fromMemory({{"/a.js", "one"}, {"/b.js", "one"}, {"/c.js", "two"}});
  EXPECT_EQ(a.find("/a.js")->etag, a.find("/b.js")->etag);
  EXPECT_NE(a.find("/a.js")->etag, a.find("/c.js")->etag);
}

class TempDir {
 public:
  TempDir() {
    path_ = std::filesystem::temp_directory_path() /
            ("parley-web-test-" + std::to_string(::getpid()) + "-" + std::to_string(counter_++));
    std::filesystem::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  const std::filesystem::path& path() const { return path_; }
  void write(const std::string& relative, const std::string& content) const {
    const auto file = path_ / relative;
    std::filesystem::create_directories(file.parent_path());
    std::ofstream(file, std::ios::binary) << content;
  }

 private:
  static inline std::atomic<int> counter_{0};
  std::filesystem::path path_;
};

TEST(StaticFiles, LoadWalksRecursivelyAndSkipsDotfiles) {
  TempDir dir;
  dir.write("index.html", "<html></html>");
  dir.write("assets/app.js", "console.log(1)");
  dir.write(".env", "SECRET=1");
  dir.write("assets/.hidden.js", "no");
  dir.write(".git/config", "no");
  const auto files = StaticFiles::load(dir.path());
  EXPECT_EQ(files.size(), 2u);
  ASSERT_NE(files.find("/index.html"), nullptr);
  EXPECT_EQ(files.find("/index.html")->contentType, "text/html; charset=utf-8");
  ASSERT_NE(files.find("/assets/app.js"), nullptr);
  EXPECT_EQ(files.find("/assets/app.js")->body, "console.log(1)");
  EXPECT_EQ(files.find("/.env"), nullptr);
  EXPECT_EQ(files.find("/assets/.hidden.js"), nullptr);
  EXPECT_EQ(files.find("/.git/config"), nullptr);
}

TEST(StaticFiles, LoadThrowsForAMissingDirectory) {
  EXPECT_THROW(StaticFiles::load("/nonexistent/parley/client"), std::runtime_error);
}

// ---- router --------------------------------------------------------------------------------

class RecordingHandler : public HttpHandler {
 public:
  Response handle(const Request& request, const RequestContext& context) override {
    ++calls;
    lastRemote = context.remote;
    const std::string_view path = pathOf(request.target());
    if (path == "/api/throw") throw std::runtime_error("database is locked");
    if (path == "/api/created") return jsonResponse(201, R"({"id":"x"})");
    if (path == "/network-requirements") {
      Response response{http::status::ok, 11};
      response.set(http::field::content_type, "text/html; charset=utf-8");
      response.set(http::field::cache_control, "public, max-age=300");
      response.set("Content-Security-Policy", "default-src 'none'");
      response.body() = "<!DOCTYPE html>";
      return response;
    }
    if (path == "/api/nocontent") {
      Response response{http::status::no_content, 11};
      response.body() = "must not be sent";
      return response;
    }
    return jsonResponse(200, R"({"status":"ok"})");
  }
  int calls = 0;
  Endpoint lastRemote;
};

class RouterTest : public ::testing::Test {
 protected:
  static WebServerOptions routerOptions() {
    WebServerOptions options;
    options.publicOrigin = "https://meet.example.com";
    options.appRoutes = {"/", "/setup", "/join", "/room/"};
    return options;
  }
  Response respond(const Request& request) {
    return router_.respond(request, RequestContext{remote_});
  }
  static void expectSecurityHeaders(const Response& response) {
    EXPECT_EQ(response[http::field::strict_transport_security], "max-age=31536000");
    EXPECT_THAT(std::string(response["Content-Security-Policy"]),
                HasSubstr("default-src 'self'; script-src 'self'"));
    EXPECT_THAT(std::string(response["Content-Security-Policy"]),
                HasSubstr("wss://meet.example.com;"));
    EXPECT_EQ(response["X-Frame-Options"], "DENY");
    EXPECT_EQ(response["X-Content-Type-Options"], "nosniff");
    EXPECT_EQ(response["Referrer-Policy"], "no-referrer");
    EXPECT_EQ(response["Permissions-Policy"],
              "camera=(self), microphone=(self), display-capture=(self), geolocation=()");
    EXPECT_EQ(response["Cross-Origin-Opener-Policy"], "same-origin");
  }

  WebServerOptions options_ = routerOptions();
  StaticFiles files_ = StaticFiles::fromMemory({
      {"/index.html", "<!doctype html><title>Parley</title>" + std::string(500, ' ')},
      {"/assets/app.js", "export const x = 1;\n" + std::string(2000, '/')},
      {"/favicon.ico", "ico"},
  });
  RecordingHandler handler_;
  Router router_{options_, files_, handler_};
  Endpoint remote_{IpAddress::v4(0xC0000201), 40000};
};

TEST_F(RouterTest, ApiPathsGoToTheHandlerWithNoStore) {
  for (const char* target : {"/api/v1/rooms", "/healthz", "/metrics", "/api/v1/x?token=abc"}) {
    const Response response = respond(get(target));
    EXPECT_EQ(response.result_int(), 200u) << target;
    EXPECT_EQ(response[http::field::cache_control], "no-store") << target;
    expectSecurityHeaders(response);
  }
  EXPECT_EQ(handler_.calls, 4);
  EXPECT_EQ(handler_.lastRemote, remote_);
  EXPECT_EQ(respond(get("/api/created")).result_int(), 201u);
}

TEST_F(RouterTest, NetworkRequirementsGoToTheHandlerWhichMayCacheAndSetItsPolicy) {
  const Response json = respond(get("/.well-known/parley/requirements.json"));
  EXPECT_EQ(json.result_int(), 200u);
  EXPECT_EQ(json[http::field::cache_control], "no-store");
  expectSecurityHeaders(json);
  const Response page = respond(get("/network-requirements"));
  EXPECT_EQ(page.result_int(), 200u);
  EXPECT_EQ(page[http::field::cache_control], "public, max-age=300");
  EXPECT_EQ(page["Content-Security-Policy"], "default-src 'none'");
  EXPECT_EQ(page["X-Content-Type-Options"], "nosniff");
  EXPECT_EQ(page["X-Frame-Options"], "DENY");
  EXPECT_EQ(handler_.calls, 2);
  // Only these exact paths: nothing else under /.well-known reaches the handler.
  EXPECT_EQ(respond(get("/.well-known/parley/other")).result_int(), 404u);
  EXPECT_EQ(respond(get("/network-requirements/x")).result_int(), 404u);
  EXPECT_EQ(handler_.calls, 2);
}

TEST_F(RouterTest, HandlerExceptionBecomes500Json) {
  const Response response = respond(get("/api/throw"));
  EXPECT_EQ(response.result_int(), 500u);
  EXPECT_EQ(bodyJson(response)["error"]["code"], "internal_error");
  // The exception text stays in the log.
  EXPECT_THAT(response.body(), ::testing::Not(HasSubstr("database")));
  expectSecurityHeaders(response);
}

TEST_F(RouterTest, NoContentHasNoBody) {
  const Response response = respond(get("/api/nocontent", http::verb::delete_));
  EXPECT_EQ(response.result_int(), 204u);
  EXPECT_TRUE(response.body().empty());
}

TEST_F(RouterTest, StaticAssetWithTypeEtagAndNoCache) {
  const Response response = respond(get("/assets/app.js"));
  EXPECT_EQ(response.result_int(), 200u);
  EXPECT_EQ(response[http::field::content_type], "text/javascript; charset=utf-8");
  EXPECT_EQ(response[http::field::etag], files_.find("/assets/app.js")->etag);
  EXPECT_EQ(response[http::field::cache_control], "no-cache");
  EXPECT_EQ(response[http::field::vary], "Accept-Encoding");
  EXPECT_EQ(response.body(), files_.find("/assets/app.js")->body);
  EXPECT_EQ(response.find(http::field::content_encoding), response.end());
  expectSecurityHeaders(response);
}

TEST_F(RouterTest, NotModifiedOnMatchingEtag) {
  Request request = get("/assets/app.js");
  request.set(http::field::if_none_match, "\"other\", " + files_.find("/assets/app.js")->etag);
  const Response response = respond(request);
  EXPECT_EQ(response.result_int(), 304u);
  EXPECT_TRUE(response.body().empty());
  EXPECT_EQ(response[http::field::etag], files_.find("/assets/app.js")->etag);
  expectSecurityHeaders(response);

  request.set(http::field::if_none_match, "W/" + files_.find("/assets/app.js")->etag);
  EXPECT_EQ(respond(request).result_int(), 304u);
  request.set(http::field::if_none_match, "\"stale\"");
  EXPECT_EQ(respond(request).result_int(), 200u);
}

TEST_F(RouterTest, GzipWhenAcceptedAndSmaller) {
  Request request = get("/assets/app.js");
  request.set(http::field::accept_encoding, "br, gzip;q=0.8, deflate");
  const Response response = respond(request);
  EXPECT_EQ(response[http::field::content_encoding], "gzip");
  EXPECT_EQ(response[http::field::etag], files_.find("/assets/app.js")->gzipEtag);
  EXPECT_EQ(gunzip(response.body()), files_.find("/assets/app.js")->body);

  request.set(http::field::accept_encoding, "gzip;q=0, br");
  const Response refused = respond(request);
  EXPECT_EQ(refused.find(http::field::content_encoding), refused.end());
  EXPECT_EQ(refused.body(), files_.find("/assets/app.js")->body);
  // Too small to gain from gzip: sent as is.
  Request icon = get("/favicon.ico");
  icon.set(http::field::accept_encoding, "gzip");
  EXPECT_EQ(respond(icon).body(), "ico");
}

TEST_F(RouterTest, HeadHasLengthButNoBody) {
  const Response response = respond(get("/assets/app.js", http::verb::head));
  EXPECT_EQ(response.result_int(), 200u);
  EXPECT_TRUE(response.body().empty());
  EXPECT_EQ(response[http::field::content_length],
            std::to_string(files_.find("/assets/app.js")->body.size()));
}

TEST_F(RouterTest, AppRoutesServeIndexHtml) {
  for (const char* target : {"/", "/setup", "/join?x=1", "/room/abc123", "/setup/step"}) {
    const Response response = respond(get(target));
    EXPECT_EQ(response.result_int(), 200u) << target;
    EXPECT_EQ(response[http::field::content_type], "text/html; charset=utf-8") << target;
    EXPECT_EQ(response.body(), files_.find("/index.html")->body) << target;
  }
  EXPECT_EQ(respond(get("/setupx")).result_int(), 404u);
  EXPECT_EQ(respond(get("/other")).result_int(), 404u);
}

TEST_F(RouterTest, UnknownPathIs404Json) {
  const Response response = respond(get("/nothing/here"));
  EXPECT_EQ(response.result_int(), 404u);
  EXPECT_EQ(bodyJson(response)["error"]["code"], "not_found");
  expectSecurityHeaders(response);
  EXPECT_EQ(handler_.calls, 0);
}

TEST_F(RouterTest, TraversalIsRefused) {
  for (const char* target :
       {"/assets/../index.html", "/assets/%2e%2e/index.html", "/assets%2fapp.js",
        "/%252e%252e/index.html", "/assets\\app.js", "/assets/%5c..%5capp.js", "/api/%2e%2e/x",
        "http://evil.example/assets/app.js", "*"}) {
    const Response response = respond(get(target));
    EXPECT_EQ(response.result_int(), 400u) << target;
    expectSecurityHeaders(response);
  }
  EXPECT_EQ(handler_.calls, 0);
}

TEST_F(RouterTest, OtherMethodsOnAssetsAre405) {
  const Response response = respond(get("/assets/app.js", http::verb::post));
  EXPECT_EQ(response.result_int(), 405u);
  EXPECT_EQ(response[http::field::allow], "GET, HEAD");
}

TEST_F(RouterTest, WsWithoutUpgradeIs426) {
  EXPECT_EQ(respond(get("/ws")).result_int(), 426u);
}

TEST_F(RouterTest, KeepAliveAndVersionFollowTheRequest) {
  Request request = get("/healthz");
  request.version(10);
  const Response response = respond(request);
  EXPECT_EQ(response.version(), 10u);
  EXPECT_FALSE(response.keep_alive());
  Request closing = get("/healthz");
  closing.keep_alive(false);
  EXPECT_FALSE(respond(closing).keep_alive());
  EXPECT_TRUE(respond(get("/healthz")).keep_alive());
}

TEST_F(RouterTest, RedirectKeepsTargetButNeverTheHost) {
  const Response response = redirectToHttps(get("/join?x=1"), "https://meet.example.com/", router_);
  EXPECT_EQ(response.result_int(), 301u);
  EXPECT_EQ(response[http::field::location], "https://meet.example.com/join?x=1");
  EXPECT_FALSE(response.keep_alive());
  expectSecurityHeaders(response);
  EXPECT_EQ(redirectToHttps(get("@evil.example"), "https://meet.example.com",
                            router_)[http::field::location],
            "https://meet.example.com/");
  EXPECT_EQ(redirectToHttps(get("http://evil.example/x"), "https://meet.example.com",
                            router_)[http::field::location],
            "https://meet.example.com/");
}

// ---- rate limiter --------------------------------------------------------------------------

TEST(RateLimiter, BurstThenRate) {
  RateLimiter limiter(2, 5);
  const auto start = RateLimiter::Clock::time_point{} + std::chrono::hours(1);
  const IpAddress client = IpAddress::v4(0x0A000001);
  for (int i = 0; i < 5; ++i)
    EXPECT_TRUE(limiter.allow(client, start)) << i;
  EXPECT_FALSE(limiter.allow(client, start));
  EXPECT_TRUE(limiter.allow(IpAddress::v4(0x0A000002), start));  // another address
  EXPECT_FALSE(limiter.allow(client, start + std::chrono::milliseconds(400)));
  EXPECT_TRUE(limiter.allow(client, start + std::chrono::milliseconds(500)));  // 2/s refill
  EXPECT_FALSE(limiter.allow(client, start + std::chrono::milliseconds(500)));
  EXPECT_EQ(limiter.retryAfterSeconds(), 1u);
}

TEST(RateLimiter, Ipv6CountsPerSlash64) {
  RateLimiter limiter(1, 2);
  const auto now = RateLimiter::Clock::time_point{} + std::chrono::hours(1);
  const auto a = *IpAddress::parse("2001:db8:1:2::1");
  const auto b = *IpAddress::parse("2001:db8:1:2:ffff::9");
  const auto other = *IpAddress::parse("2001:db8:1:3::1");
  EXPECT_TRUE(limiter.allow(a, now));
  EXPECT_TRUE(limiter.allow(b, now));
  EXPECT_FALSE(limiter.allow(a, now));
  EXPECT_TRUE(limiter.allow(other, now));
}

TEST(RateLimiter, TableStaysBounded) {
  RateLimiter limiter(1, 1, 100);
  const auto now = RateLimiter::Clock::time_point{} + std::chrono::hours(1);
  for (std::uint32_t i = 0; i < 1000; ++i)
    limiter.allow(IpAddress::v4(0x0B000000 + i), now);
  EXPECT_LE(limiter.tracked(), 100u);
  // Limited addresses stay limited while the table is full of fresh entries.
  EXPECT_FALSE(limiter.allow(IpAddress::v4(0x0B000000), now));
  // Once they have refilled they make room for others.
  const auto later = now + std::chrono::seconds(5);
  EXPECT_TRUE(limiter.allow(IpAddress::v4(0x0C000000), later));
  EXPECT_LE(limiter.tracked(), 100u);
}

}  // namespace
}  // namespace parley::web
