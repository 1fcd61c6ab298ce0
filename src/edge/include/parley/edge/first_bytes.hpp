// The one-port-443 front door: which protocol a TCP client speaks, judged from the first bytes
// it sent (before TLS: TLS, a PROXY header, or plain STUN/TURN; after TLS: HTTP or STUN/TURN).
// Pure function over a byte span: no I/O, no allocation.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>

namespace parley::edge {

// What a client speaks, judged from the first bytes it sent on a TCP connection (before or after
// TLS). Never needs more than 16 bytes to decide.
//
//  Tls          record type 0x16 (handshake), version 0x03 0x00..0x04 (SSL 3.0 to TLS 1.3)
//  Http         an RFC 9110 §9 method token of 1..15 upper-case letters, '-' or '_', then a
//               space ("GET ", "OPTIONS ", "PRI " of the HTTP/2 preface); 15 and not 16 so that
//               the token and its space fit the 16 bytes
//  Stun         RFC 8489 §6: first two bits zero, length a multiple of 4, magic cookie at 4..7
//  ChannelData  first byte 0x40..0x7F (channels 0x4000-0x7FFF, RFC 5766 §11 / RFC 8656 §12),
//               four bytes; any length
//  ProxyV1      "PROXY " (wins over Http: PROXY is not a method Parley serves)
//  ProxyV2      the 12-byte v2 signature
//
// The first bytes of HTTP methods (0x41..0x5A) are also ChannelData first bytes: a method that
// could still complete wins, and ChannelData is decided once no method can ("GET " is Http,
// "GE\x00\x10" ChannelData). NeedMore only while some kind can still match, so the answer for a
// prefix never changes when more bytes arrive.
enum class FirstBytes { NeedMore, Tls, Http, Stun, ChannelData, ProxyV1, ProxyV2, Unknown };

FirstBytes classifyFirstBytes(std::span<const std::uint8_t> bytes);

std::string_view toString(FirstBytes kind);

}  // namespace parley::edge
