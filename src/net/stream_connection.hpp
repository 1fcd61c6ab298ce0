// A client's TCP or TLS connection to the STUN/TURN listener. It cuts the byte stream
// into frames (RFC 8489 §6.2.2, RFC 8656 §12.5) and hands them to its worker; it lives as
// long as a read, a write or its timer holds it (Beast's session pattern).
#pragma once

#include <memory>
#include <span>
#include <vector>

#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>

#include <parley/tls/accepted_stream.hpp>
#include <parley/tls/context.hpp>
#include <parley/turn/types.hpp>

namespace parley::net {

namespace asio = boost::asio;
class Worker;

class StreamConnection : public std::enable_shared_from_this<StreamConnection> {
 public:
  // With `tlsContext` the connection speaks TLS (RFC 8656 §3.1, port 5349) over the socket.
  StreamConnection(Worker& worker, asio::ip::tcp::socket socket,
                   std::shared_ptr<tls::ServerContext> tlsContext);
  // A connection another listener accepted and handed over (the HTTPS port): its TLS session
  // is established already and `adopted.received` is served before anything is read.
  StreamConnection(Worker& worker, asio::ip::tcp::socket socket, tls::AcceptedStream&& adopted);
  ~StreamConnection();
  StreamConnection(const StreamConnection&) = delete;
  StreamConnection& operator=(const StreamConnection&) = delete;

  void start();
  // Queues bytes for the client. false (nothing queued) when the client does not read and
  // the queue is at its limit: the caller drops, as UDP would.
  bool send(std::span<const std::uint8_t> bytes);
  void close();
  const turn::FiveTuple& tuple() const { return tuple_; }

 private:
  void read();
  template <typename Handler>
  void readSome(asio::mutable_buffer buffer, Handler&& handler);
  void onRead(std::size_t bytes);
  bool handleFrames();  // false: close
  void write();
  void armIdleTimer();

  Worker& worker_;
  asio::ip::tcp::socket socket_;
  // The certificate this connection was accepted with stays alive as long as it does.
  std::shared_ptr<tls::ServerContext> tlsContext_;
  std::unique_ptr<asio::ssl::stream<asio::ip::tcp::socket&>> tls_;
  asio::steady_timer idleTimer_;
  turn::FiveTuple tuple_;
  std::vector<std::uint8_t> input_;
  std::size_t filled_ = 0;
  std::vector<std::uint8_t> writing_;  // in flight
  std::vector<std::uint8_t> pending_;  // queued behind it
  bool writeInFlight_ = false;
  bool closed_ = false;
  bool handshakeDone_ = false;  // adopted with an established session
};

}  // namespace parley::net
