// The WebSocket echo of the network check (docs/netcheck.md, GET /api/v1/netcheck/echo) with
// Boost.Beast's WebSocket stream over a netclient::Stream.
#include <algorithm>

#include <boost/beast/core/buffers_to_string.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/websocket.hpp>
#include <fmt/format.h>

#include <parley/netclient/web.hpp>

#include "beast_stream.hpp"

namespace parley::netclient {

namespace websocket = boost::beast::websocket;

namespace {

// The server echoes text messages of at most 1 KiB; anything much larger is not an echo.
constexpr std::size_t kMaxEchoMessageBytes = 64 * 1024;

Failure failureOf(const detail::BeastStream& adapter, const boost::system::error_code& ec,
                  const std::string& doing) {
  if (adapter.failure()) return *adapter.failure();
  return {"protocol", fmt::format("{}: {}", doing, ec.message())};
}

}  // namespace

Result<EchoOutcome> websocketEcho(std::unique_ptr<Stream> stream, const std::string& host,
                                  const std::string& origin, const std::string& target,
                                  unsigned messages, Deadline deadline) {
  detail::BeastStream adapter(*stream, deadline);
  websocket::stream<detail::BeastStream&> socket(adapter);
  socket.read_message_max(kMaxEchoMessageBytes);
  socket.set_option(websocket::stream_base::decorator([&origin](websocket::request_type& request) {
    request.set(boost::beast::http::field::origin, origin);
    request.set(boost::beast::http::field::user_agent, "parley-netcheck");
  }));

  // The target holds the ticket: never part of a message.
  const std::string path = target.substr(0, target.find('?'));
  websocket::response_type upgrade;
  boost::system::error_code ec;
  socket.handshake(upgrade, host, target, ec);
  if (ec) {
    if (adapter.failure()) return tl::unexpected(*adapter.failure());
    if (upgrade.result_int() != 0 && upgrade.result_int() != 101) {
      return tl::unexpected(Failure{
          "http_status",
          fmt::format("{} answered {} {} to the WebSocket upgrade of {}", stream->describe(),
                      upgrade.result_int(), std::string(upgrade.reason()), path)});
    }
    return tl::unexpected(
        failureOf(adapter, ec, fmt::format("WebSocket upgrade of {} failed", path)));
  }
  socket.text(true);

  EchoOutcome outcome;
  boost::beast::flat_buffer buffer(kMaxEchoMessageBytes);
  for (unsigned i = 0; i < messages; ++i) {
    const std::string message =
        fmt::format("parley-netcheck echo {} of {} {:->64}", i + 1, messages, "");
    const auto sent = Clock::now();
    socket.write(boost::asio::buffer(message), ec);
    if (ec) return tl::unexpected(failureOf(adapter, ec, "sending an echo message"));
    buffer.clear();
    socket.read(buffer, ec);
    if (ec == websocket::error::closed) {
      return tl::unexpected(
          Failure{"protocol", fmt::format("{} closed the WebSocket after {} of {} echoes",
                                          stream->describe(), outcome.messages, messages)});
    }
    if (ec) return tl::unexpected(failureOf(adapter, ec, "waiting for an echo"));
    const auto received = Clock::now();
    if (boost::beast::buffers_to_string(buffer.data()) != message) {
      return tl::unexpected(
          Failure{"protocol", fmt::format("{} answered echo message {} with something else",
                                          stream->describe(), i + 1)});
    }
    ++outcome.messages;
    outcome.roundTrips.push_back(
        std::chrono::duration_cast<std::chrono::microseconds>(received - sent));
  }
  // A normal close; the echo has been measured, so a close that fails changes nothing.
  socket.close(websocket::close_code::normal, ec);

  if (!outcome.roundTrips.empty()) {
    auto sorted = outcome.roundTrips;
    std::sort(sorted.begin(), sorted.end());
    outcome.medianRoundTrip = sorted[sorted.size() / 2];
  }
  return outcome;
}

}  // namespace parley::netclient
