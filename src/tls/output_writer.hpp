// Appends to a DtlsOutput; the only writer of its private parts. Private to parley::tls.
#pragma once

#include <parley/tls/dtls.hpp>

namespace parley::tls::detail {

struct OutputWriter {
  static void addDatagram(DtlsOutput& out, const Endpoint& peer,
                          std::span<const std::uint8_t> bytes) {
    out.datagrams_.push_back(append(out, peer, bytes));
  }
  static void addReceived(DtlsOutput& out, const Endpoint& peer,
                          std::span<const std::uint8_t> bytes) {
    out.received_.push_back(append(out, peer, bytes));
  }
  static void addEstablished(DtlsOutput& out, const Endpoint& peer) {
    out.established_.push_back(peer);
  }
  static void addClosed(DtlsOutput& out, const Endpoint& peer, CloseReason reason) {
    out.closed_.push_back({peer, reason});
  }
  static std::size_t datagramCount(const DtlsOutput& out) { return out.datagrams_.size(); }

 private:
  static DtlsChunk append(DtlsOutput& out, const Endpoint& peer,
                          std::span<const std::uint8_t> bytes) {
    const auto offset = static_cast<std::uint32_t>(out.buffer_.size());
    out.buffer_.insert(out.buffer_.end(), bytes.begin(), bytes.end());
    return {peer, offset, static_cast<std::uint32_t>(bytes.size())};
  }
};

}  // namespace parley::tls::detail
