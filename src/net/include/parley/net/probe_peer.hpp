// The network check's probe peer (docs/netcheck.md "The probe peer"): one UDP socket on the
// relay address, answered by netcheck::ProbeResponder on a thread of its own. Clients reach it
// only through a TURN allocation, so it measures the media path; the responder answers only
// datagrams from this server's relay addresses that carry a valid ticket.
#pragma once

#include <cstdint>
#include <memory>

#include <parley/base/endpoint.hpp>
#include <parley/netcheck/probe.hpp>

namespace parley::net {

struct ProbePeerOptions {
  // Address to bind (the relay address); port 0 = an ephemeral port.
  Endpoint bind;
  netcheck::ProbeLimits limits;
  // Both required: a ticket's session and expiry, and whether a source is a relay address.
  netcheck::ProbeResponder::TicketVerifier verifyTicket;
  netcheck::ProbeResponder::SourceCheck fromRelay;
  int socketBufferBytes = 1 << 20;  // DOWN_DATA at maxKbps for a few ms must fit
};

struct ProbePeerCounters {
  std::uint64_t datagramsIn = 0;
  std::uint64_t dropped = 0;  // malformed, unknown session, wrong source, over a limit, send failed
  std::uint64_t sessionsStarted = 0;
  std::uint64_t datagramsOut = 0;
  std::uint64_t bytesSent = 0;
};

class ProbePeer {
 public:
  // Binds the socket (so endpoint() is known before the TURN server is built); throws
  // std::runtime_error naming the address when it cannot, std::invalid_argument when a
  // callback is missing.
  explicit ProbePeer(ProbePeerOptions options);
  ~ProbePeer();  // stops
  ProbePeer(const ProbePeer&) = delete;
  ProbePeer& operator=(const ProbePeer&) = delete;

  // The bound address and port.
  Endpoint endpoint() const;
  // Starts the thread; returns at once. Once only.
  void start();
  // Closes the socket and joins the thread. Safe to call more than once.
  void stop();
  // Relaxed reads, for /metrics and tests.
  ProbePeerCounters counters() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace parley::net
