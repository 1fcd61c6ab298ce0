#include <algorithm>
#include <array>

#include <parley/turn/peer_filter.hpp>

namespace parley::turn {

namespace {

Cidr cidr(std::string_view text) {
  return *Cidr::parse(text);
}

// RFC 8656 §21.1 (and RFC 6890 special-purpose registries): destinations a public relay must
// not reach. Class E (240/4, incl. the limited broadcast) is never a valid unicast peer.
const std::vector<Cidr>& builtinDenied() {
  static const std::vector<Cidr> list = {
      cidr("0.0.0.0/8"),      cidr("10.0.0.0/8"),    cidr("100.64.0.0/10"),  cidr("127.0.0.0/8"),
      cidr("169.254.0.0/16"), cidr("172.16.0.0/12"), cidr("192.168.0.0/16"), cidr("224.0.0.0/4"),
      cidr("240.0.0.0/4"),    cidr("::/128"),        cidr("::1/128"),        cidr("fc00::/7"),
      cidr("fe80::/10"),      cidr("ff00::/8"),      cidr("64:ff9b:1::/48"),  // RFC 8215 local
  };
  return list;
}

// The IPv4 address an IPv6 address carries, for the forms a relay would route as IPv4:
// IPv4-mapped ::ffff:0:0/96, IPv4-compatible ::/96 (deprecated, RFC 4291 §2.5.5.1), NAT64
// well-known prefix 64:ff9b::/96 (RFC 6052) and 6to4 2002::/16 (RFC 3056, bytes 2..5).
std::optional<IpAddress> embeddedV4(const IpAddress& address) {
  if (address.isV4()) return std::nullopt;
  const auto b = address.bytes();
  const auto v4At = [&b](std::size_t offset) {
    return IpAddress::v4(std::span<const std::uint8_t, 4>(b.data() + offset, 4));
  };
  const auto zeros = [&b](std::size_t from, std::size_t to) {
    return std::all_of(b.begin() + from, b.begin() + to, [](std::uint8_t x) { return x == 0; });
  };
  if (zeros(0, 10) && b[10] == 0xFF && b[11] == 0xFF) return v4At(12);
  if (zeros(0, 12)) return v4At(12);
  static constexpr std::array<std::uint8_t, 12> kNat64 = {0x00, 0x64, 0xff, 0x9b};
  if (std::equal(kNat64.begin(), kNat64.end(), b.begin())) return v4At(12);
  if (b[0] == 0x20 && b[1] == 0x02) return v4At(2);
  return std::nullopt;
}

bool anyContains(const std::vector<Cidr>& list, const IpAddress& address) {
  return std::any_of(list.begin(), list.end(),
                     [&address](const Cidr& c) { return c.contains(address); });
}

}  // namespace

PeerFilter::PeerFilter(std::vector<Cidr> allowed, std::vector<Cidr> denied,
                       std::vector<Endpoint> exempt)
    : allowed_(std::move(allowed)), denied_(builtinDenied()), exempt_(std::move(exempt)) {
  denied_.insert(denied_.end(), denied.begin(), denied.end());
}

bool PeerFilter::allowsPermission(const IpAddress& peer) const {
  return isAllowed(peer) || std::any_of(exempt_.begin(), exempt_.end(),
                                        [&peer](const Endpoint& e) { return e.address == peer; });
}

bool PeerFilter::allowsEndpoint(const Endpoint& peer) const {
  return isAllowed(peer.address) ||
         std::find(exempt_.begin(), exempt_.end(), peer) != exempt_.end();
}

bool PeerFilter::admitsInbound(const Endpoint& peer) const {
  bool exemptAddress = false;
  for (const Endpoint& exempt : exempt_) {
    if (exempt == peer) return true;
    exemptAddress = exemptAddress || exempt.address == peer.address;
  }
  return !exemptAddress || isAllowed(peer.address);
}

bool PeerFilter::isAllowed(const IpAddress& peer) const {
  const auto embedded = embeddedV4(peer);
  if (anyContains(allowed_, peer) || (embedded && anyContains(allowed_, *embedded))) return true;
  if (anyContains(denied_, peer)) return false;
  return !(embedded && anyContains(denied_, *embedded));
}

}  // namespace parley::turn
