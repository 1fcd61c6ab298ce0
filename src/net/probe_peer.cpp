// The probe peer's socket and thread: everything, the responder included, runs on one
// io_context thread, so the responder needs no lock; counters are mirrored into atomics for
// readers on other threads. Per datagram nothing throws and nothing is allocated.
#include <array>
#include <atomic>
#include <optional>
#include <stdexcept>
#include <thread>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/udp.hpp>
#include <boost/asio/ip/v6_only.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <fmt/format.h>

#include <parley/base/log.hpp>
#include <parley/net/probe_peer.hpp>

namespace parley::net {
namespace {

namespace asio = boost::asio;
using udp = asio::ip::udp;

const std::shared_ptr<spdlog::logger>& logger() {
  static const auto instance = log::get("net");
  return instance;
}

asio::ip::address toAsio(const IpAddress& address) {
  if (address.isV4()) {
    asio::ip::address_v4::bytes_type bytes;
    std::copy(address.bytes().begin(), address.bytes().end(), bytes.begin());
    return asio::ip::address_v4(bytes);
  }
  asio::ip::address_v6::bytes_type bytes;
  std::copy(address.bytes().begin(), address.bytes().end(), bytes.begin());
  return asio::ip::address_v6(bytes);
}

Endpoint fromAsio(const udp::endpoint& endpoint) {
  const asio::ip::address address = endpoint.address();
  if (address.is_v4()) {
    const auto bytes = address.to_v4().to_bytes();
    return {IpAddress::v4(std::span<const std::uint8_t, 4>(bytes.data(), 4)), endpoint.port()};
  }
  const auto bytes = address.to_v6().to_bytes();
  return {IpAddress::v6(std::span<const std::uint8_t, 16>(bytes.data(), 16)), endpoint.port()};
}

}  // namespace

struct ProbePeer::Impl {
  using Clock = netcheck::ProbeResponder::Clock;

  explicit Impl(ProbePeerOptions options)
      : socket(context),
        timer(context),
        responder(
            options.limits, std::move(options.verifyTicket), std::move(options.fromRelay),
            [this](const Endpoint& to, std::span<const std::uint8_t> bytes) { send(to, bytes); }) {
    const udp::endpoint local(toAsio(options.bind.address), options.bind.port);
    boost::system::error_code error;
    socket.open(local.protocol(), error);
    if (!error && !local.address().is_v4()) socket.set_option(asio::ip::v6_only(true), error);
    if (!error) socket.bind(local, error);
    if (error) {
      throw std::runtime_error(fmt::format("cannot bind the probe peer to udp {}: {}",
                                           options.bind.toString(), error.message()));
    }
    // Best effort: a small buffer only costs DOWN_DATA, which the client then reports as loss.
    socket.set_option(udp::socket::send_buffer_size(options.socketBufferBytes), error);
    socket.set_option(udp::socket::receive_buffer_size(options.socketBufferBytes), error);
    socket.non_blocking(true, error);
    bound = fromAsio(socket.local_endpoint());
  }

  void send(const Endpoint& to, std::span<const std::uint8_t> bytes) {
    boost::system::error_code error;
    socket.send_to(asio::buffer(bytes.data(), bytes.size()),
                   udp::endpoint(toAsio(to.address), to.port), 0, error);
    if (error) {
      // Would block (the buffer is full) or the route is gone: the client sees it as loss.
      sendFailures.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    // The responder counted this datagram before handing it over; mirrored first and published
    // with the release below, so a reader that sees it in datagramsOut sees its bytes too.
    mirrorCounters();
    datagramsOut.fetch_add(1, std::memory_order_release);
  }

  void receive() {
    socket.async_receive_from(
        asio::buffer(buffer), sender,
        [this](const boost::system::error_code& error, std::size_t size) {
          if (error == asio::error::operation_aborted || !socket.is_open()) return;
          if (!error) {
            responder.onDatagram(fromAsio(sender), std::span(buffer.data(), size), Clock::now());
            pace();
          }
          // Errors such as ICMP port unreachable from an earlier send end
          // only this receive.
          receive();
        });
  }

  // Sends what is due and waits for the next due time, if any.
  void pace() {
    const auto next = responder.poll(Clock::now());
    mirrorCounters();
    if (!next) return;
    if (armedFor && *armedFor <= *next) return;  // an earlier wake-up is pending already
    armedFor = *next;
    timer.expires_at(*next);
    timer.async_wait([this](const boost::system::error_code& error) {
      if (error) return;  // re-armed (operation_aborted) or stopping
      armedFor.reset();
      pace();
    });
  }

  void mirrorCounters() {
    const netcheck::ProbeCounters& now = responder.counters();
    datagramsIn.store(now.datagramsIn, std::memory_order_relaxed);
    dropped.store(now.dropped, std::memory_order_relaxed);
    sessionsStarted.store(now.sessionsStarted, std::memory_order_relaxed);
    bytesSent.store(now.bytesSent, std::memory_order_relaxed);
  }

  asio::io_context context;
  udp::socket socket;
  asio::steady_timer timer;
  netcheck::ProbeResponder responder;
  Endpoint bound;
  std::array<std::uint8_t, 2048> buffer{};  // larger than any probe datagram: oversize is seen
  udp::endpoint sender;
  std::optional<Clock::time_point> armedFor;
  std::thread thread;
  bool started = false;
  std::atomic<std::uint64_t> datagramsIn{0}, dropped{0}, sessionsStarted{0}, bytesSent{0};
  std::atomic<std::uint64_t> datagramsOut{0}, sendFailures{0};
};

ProbePeer::ProbePeer(ProbePeerOptions options) {
  if (!options.verifyTicket || !options.fromRelay) {
    throw std::invalid_argument("the probe peer needs a ticket verifier and a source check");
  }
  impl_ = std::make_unique<Impl>(std::move(options));
}

ProbePeer::~ProbePeer() {
  stop();
}

Endpoint ProbePeer::endpoint() const {
  return impl_->bound;
}

void ProbePeer::start() {
  if (impl_->started) return;
  impl_->started = true;
  impl_->receive();
  impl_->thread = std::thread([impl = impl_.get()] {
    try {
      impl->context.run();
    } catch (const std::exception& error) {
      // Not expected: nothing on this thread throws; logged so it is not silent.
      logger()->error("probe peer stopped: {}", error.what());
    }
  });
  logger()->info("network-check probe peer on udp {}", impl_->bound.toString());
}

void ProbePeer::stop() {
  if (!impl_) return;
  asio::post(impl_->context, [impl = impl_.get()] {
    boost::system::error_code ignored;
    impl->timer.cancel();
    impl->socket.close(ignored);
  });
  if (impl_->thread.joinable()) {
    impl_->thread.join();
  } else {
    impl_->context.stop();
  }
}

ProbePeerCounters ProbePeer::counters() const {
  ProbePeerCounters out;
  out.datagramsOut = impl_->datagramsOut.load(std::memory_order_acquire);
  out.datagramsIn = impl_->datagramsIn.load(std::memory_order_relaxed);
  out.dropped = impl_->dropped.load(std::memory_order_relaxed) +
                impl_->sendFailures.load(std::memory_order_relaxed);
  out.sessionsStarted = impl_->sessionsStarted.load(std::memory_order_relaxed);
  out.bytesSent = impl_->bytesSent.load(std::memory_order_relaxed);
  return out;
}

}  // namespace parley::net
