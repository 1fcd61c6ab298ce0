// The PROXY protocol, versions 1 (text) and 2 (binary), as a receiver parses it:
// https://www.haproxy.org/download/2.8/doc/proxy-protocol.txt
// A load balancer in front of port 443 sends one header before the client's bytes; the header
// says who the client really is. Pure function over a byte span: no I/O, no allocation, no
// exceptions, never reads past the span.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

#include <tl/expected.hpp>

#include <parley/base/endpoint.hpp>

namespace parley::edge {

struct ProxyHeader {
  std::size_t length = 0;               // bytes the header took: skip them
  std::optional<Endpoint> source;       // the real client; nullopt for v1 UNKNOWN, v2 LOCAL,
  std::optional<Endpoint> destination;  //   or AF_UNSPEC/AF_UNIX: use the connection's own
  int version = 0;                      // 1 or 2
};

enum class ProxyError {
  NeedMore,     // a strict prefix of a header that can still be valid: read more, call again
  NotProxy,     // neither signature: the connection does not start with a PROXY header
  Malformed,    // a PROXY header that breaks the spec: close the connection
  Unsupported,  // v2 with a version other than 2, or an address family the spec does not define
  TooLong,      // v1 without CRLF within 107 bytes, or v2 announcing more than kMaxProxyHeaderBytes
};

std::string_view toString(ProxyError error);

// Bound on what a receiver buffers: the 16-byte v2 header and at most 1 KiB of addresses and
// TLVs (HAProxy's own limit for what it sends); a v1 line is at most 107 bytes (spec §2.1).
constexpr std::size_t kMaxProxyHeaderBytes = 16 + 1024;

// Parses the header at the start of `bytes` (the rest may already be the client's data).
//
// v1 (§2.1), strict: "PROXY TCP4|TCP6 <src> <dst> <sport> <dport>\r\n" with exactly one space
// between fields, dotted IPv4 for TCP4 and RFC 4291 text (with :: and an embedded dotted IPv4)
// for TCP6, ports 0..65535 in decimal without sign and without leading zeros (the spec forbids
// "heading zeroes"; "0" itself is fine), at most 107 bytes including CRLF. "PROXY UNKNOWN" is
// followed by CRLF or by a space and anything up to the first CR, which must begin CRLF.
// v2 (§2.2): version 2 (else Unsupported); command LOCAL (the block, family included, is skipped
// unread: §2.2 says to ignore it) or PROXY (others Malformed); for PROXY the family and transport
// must be one the spec defines (TCP or UDP over IPv4 or IPv6: addresses reported; AF_UNIX: 216
// address bytes, not reported; UNSPEC: block skipped unread), else Unsupported; the length must
// cover the address block and every TLV after it must fit exactly (Malformed otherwise).
//
// NeedMore exactly when `bytes` is a strict prefix of a header that could still be valid
// (within the length limits), so the decision never changes when more bytes arrive.
tl::expected<ProxyHeader, ProxyError> parseProxyHeader(std::span<const std::uint8_t> bytes);

}  // namespace parley::edge
