// A BIO with datagram semantics over memory, for the sans-IO DTLS server: OpenSSL reads the
// one datagram handed to it whole, and every write becomes one datagram (OpenSSL's DTLS layer
// flushes a flight in MTU-sized writes). BIO_s_mem would merge writes into a byte stream and
// BIO_s_dgram_mem needs OpenSSL 3.2. Private to parley::tls.
#pragma once

#include <cstdint>
#include <span>

#include <parley/base/endpoint.hpp>

#include "ossl.hpp"

namespace parley::tls {
class DtlsOutput;
}

namespace parley::tls::detail {

struct DatagramChannel {
  Endpoint peer;
  // The datagram OpenSSL reads next; emptied by the read. Empty: reads say "retry".
  std::span<const std::uint8_t> input;
  // Where writes go while an operation runs; writes with none set are dropped and counted.
  DtlsOutput* out = nullptr;
  std::uint64_t writesDropped = 0;
};

// A new BIO reading from and writing to `channel`, which must outlive it.
BIO* newDatagramBio(DatagramChannel* channel);

}  // namespace parley::tls::detail
