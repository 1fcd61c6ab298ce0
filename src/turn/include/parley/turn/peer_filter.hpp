// Which peer addresses a relay may send to. Safe by default: nothing internal.
#pragma once

#include <optional>
#include <string_view>
#include <vector>

#include <parley/base/cidr.hpp>
#include <parley/base/endpoint.hpp>

namespace parley::turn {

// The range type moved to base (the front door matches trusted proxies too); the old name stays.
using Cidr = parley::Cidr;

class PeerFilter {
 public:
  // `allowed` overrides the built-in deny list and `denied`; `denied` adds to the built-in list.
  // `exempt`: exact address:port endpoints relayable whatever the lists say (the network
  // check's probe peer, docs/netcheck.md), and nothing else of their ranges.
  PeerFilter(std::vector<Cidr> allowed = {}, std::vector<Cidr> denied = {},
             std::vector<Endpoint> exempt = {});
  // RFC 8656 §21.1 and the product's safe default: no loopback, RFC 1918, CGNAT 100.64/10,
  // link-local (169.254/16 incl. 169.254.169.254), multicast, 0/8, broadcast, IPv6 loopback,
  // unspecified, ULA fc00::/7, link-local fe80::/10, multicast ff00::/8, and the IPv4-mapped
  // (::ffff:0:0/96), IPv4-compatible (::/96), NAT64 (64:ff9b::/96) and 6to4 (2002::/16) forms
  // of any forbidden IPv4 address. Explicitly allowed ranges win.
  bool isAllowed(const IpAddress& peer) const;
  // For CreatePermission, which names an address only: allowed, or the address of an exempt
  // endpoint (its other ports stay unreachable through allowsEndpoint()).
  bool allowsPermission(const IpAddress& peer) const;
  // For ChannelBind and Send, which name a port too: allowed, or exactly an exempt endpoint.
  bool allowsEndpoint(const Endpoint& peer) const;
  // For data arriving from a peer that already has a permission: false only for another port
  // of an exempt endpoint's address that is not allowed itself. Cheap when the address is no
  // exempt one (the usual case: one comparison per exempt endpoint), since it runs per packet.
  bool admitsInbound(const Endpoint& peer) const;

 private:
  std::vector<Cidr> allowed_;
  std::vector<Cidr> denied_;
  std::vector<Endpoint> exempt_;
};

}  // namespace parley::turn
