// HTTPS requests of the network check over a netclient::Stream with Boost.Beast's parser.
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <fmt/format.h>

#include <parley/netclient/web.hpp>

#include "beast_stream.hpp"

namespace parley::netclient {

namespace http = boost::beast::http;

namespace {

// Headers beyond this are not a Parley server's answer.
constexpr std::uint32_t kMaxHeaderBytes = 16 * 1024;

Failure streamOrProtocolFailure(const detail::BeastStream& adapter, const Stream& stream,
                                const boost::system::error_code& ec, std::string_view doing) {
  if (adapter.failure()) return *adapter.failure();
  if (ec == http::error::body_limit || ec == http::error::buffer_overflow ||
      ec == http::error::header_limit) {
    return {"protocol", fmt::format("{} answered more than {} KiB while {}", stream.describe(),
                                    kMaxResponseBytes / 1024, doing)};
  }
  if (ec == boost::asio::error::eof || ec == http::error::end_of_stream ||
      ec == http::error::partial_message) {
    return {"protocol", fmt::format("{} closed the connection while {}", stream.describe(), doing)};
  }
  return {"protocol", fmt::format("{} did not answer in HTTP while {}: {}", stream.describe(),
                                  doing, ec.message())};
}

}  // namespace

Result<HttpResponse> httpRequest(Stream& stream, const HttpRequest& request, Deadline deadline) {
  const http::verb verb = http::string_to_verb(request.method);
  if (verb == http::verb::unknown)
    return tl::unexpected(Failure{"protocol", "unknown HTTP method " + request.method});
  detail::BeastStream adapter(stream, deadline);

  http::request<http::string_body> out{verb, request.target, 11};
  out.set(http::field::host, request.host);
  out.set(http::field::user_agent, "parley-netcheck");
  out.set(http::field::accept, "application/json");
  if (!request.body.empty() || verb == http::verb::post) {
    out.set(http::field::content_type, "application/json");
    out.body() = request.body;
  }
  out.prepare_payload();
  const std::string doing = fmt::format("sending {} {}", request.method, request.target);
  boost::system::error_code ec;
  http::write(adapter, out, ec);
  if (ec) return tl::unexpected(streamOrProtocolFailure(adapter, stream, ec, doing));

  boost::beast::flat_buffer buffer(kMaxResponseBytes + kMaxHeaderBytes);
  http::response_parser<http::string_body> parser;
  parser.header_limit(kMaxHeaderBytes);
  parser.body_limit(kMaxResponseBytes);
  const std::string reading = fmt::format("answering {} {}", request.method, request.target);
  http::read(adapter, buffer, parser, ec);
  if (ec) return tl::unexpected(streamOrProtocolFailure(adapter, stream, ec, reading));

  auto& message = parser.get();
  HttpResponse response;
  response.status = message.result_int();
  response.reason = std::string(message.reason());
  if (const auto type = message.find(http::field::content_type); type != message.end())
    response.contentType = std::string(type->value());
  response.body = std::move(message.body());
  return response;
}

}  // namespace parley::netclient
