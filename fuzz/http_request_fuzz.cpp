// Fuzzes HTTP request handling the way WebServer does it: raw bytes through Beast's request
// parser with the server's header and body limits, then, if a request parsed, the router
// (paths, static files, conditional and gzip answers, the application handler, security
// headers), the redirect port's answer and the helpers handlers use. Every response must carry
// the security headers and serialise.
#include <cstdint>
#include <cstdlib>
#include <sstream>

#include <boost/asio/buffer.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket/rfc6455.hpp>

#include <parley/base/log.hpp>
#include <parley/web/router.hpp>
#include <parley/web/server.hpp>
#include <parley/web/static_files.hpp>

using namespace parley;
using namespace parley::web;

namespace {

// Answers like an application would, including by throwing.
class FuzzHandler : public HttpHandler {
 public:
  Response handle(const Request& request, const RequestContext&) override {
    const std::string_view path = pathOf(request.target());
    if (path == "/api/throw") throw std::runtime_error("handler failure");
    Response response = jsonResponse(200, request.body());
    if (auto session = cookie(request, "parley_session")) {
      response.set(http::field::set_cookie,
                   setCookie("parley_session", *session, std::chrono::seconds(60)));
    }
    if (auto room = queryParam(request.target(), "room")) response.body() = *room;
    return response;
  }
};

struct Fixture {
  Fixture() {
    log::Options quiet;
    quiet.level = "off";
    log::configure(quiet);
    options.publicOrigin = "https://meet.example.com:8443";
    options.appRoutes = {"/", "/setup", "/join", "/room/"};
  }
  WebServerOptions options;
  StaticFiles files = StaticFiles::fromMemory({
      {"/index.html", "<!doctype html><title>Parley</title>"},
      {"/assets/app.js", "export const answer = 42;\n" + std::string(300, ';')},
      {"/assets/logo.svg", "<svg xmlns='http://www.w3.org/2000/svg'/>"},
  });
  FuzzHandler handler;
  Router router{options, files, handler};
};

void check(const Response& response) {
  if (response.find(http::field::strict_transport_security) == response.end()) std::abort();
  if (response.find("Content-Security-Policy") == response.end()) std::abort();
  std::ostringstream wire;
  wire << response;
  if (wire.str().empty()) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static Fixture fixture;
  const Limits& limits = fixture.options.limits;
  http::request_parser<http::string_body> parser;
  parser.header_limit(static_cast<std::uint32_t>(limits.maxHeaderBytes));
  parser.body_limit(limits.maxBodyBytes);
  parser.eager(true);
  boost::beast::error_code error;
  std::size_t offset = 0;
  while (offset < size && !parser.is_done()) {
    const std::size_t used = parser.put(boost::asio::buffer(data + offset, size - offset), error);
    if (error || used == 0) break;
    offset += used;
  }
  // Like a connection that closes: Beast requires some input before end of stream.
  if (!error && !parser.is_done() && parser.got_some()) parser.put_eof(error);
  if (error || !parser.is_done()) return 0;

  const Request request = parser.release();
  const RequestContext context{Endpoint{IpAddress::v4(0xC0000201), 50000}};
  (void)cookie(request, "parley_guest");
  (void)queryParam(request.target(), "room");
  (void)decodeRequestPath(pathOf(request.target()));
  (void)fixture.router.isAppRoute(pathOf(request.target()));
  if (boost::beast::websocket::is_upgrade(request)) return 0;  // the WebSocket path
  check(fixture.router.respond(request, context));
  check(redirectToHttps(request, fixture.options.publicOrigin, fixture.router));
  return 0;
}
