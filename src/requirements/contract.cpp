// From a Deployment to its Contract: which port rules the settings call for, which addresses
// are published. The texts here are shared by every format.
#include <algorithm>
#include <array>

#include <fmt/format.h>

#include <parley/requirements/requirements.hpp>

namespace parley::requirements {
namespace {

bool inRange(const IpAddress& address, std::string_view range) {
  const auto cidr = Cidr::parse(range);
  return cidr && cidr->contains(address);
}

struct ScopedRange {
  std::string_view range;
  AddressScope scope;
};

// IANA special-purpose registries (RFC 6890), the parts that decide reachability.
constexpr std::array kV4Ranges{
    ScopedRange{"127.0.0.0/8", AddressScope::Loopback},
    ScopedRange{"0.0.0.0/8", AddressScope::Private},  // "this network" (RFC 791)
    ScopedRange{"10.0.0.0/8", AddressScope::Private},
    ScopedRange{"172.16.0.0/12", AddressScope::Private},
    ScopedRange{"192.168.0.0/16", AddressScope::Private},
    ScopedRange{"100.64.0.0/10", AddressScope::Shared},
    ScopedRange{"169.254.0.0/16", AddressScope::LinkLocal},
    ScopedRange{"224.0.0.0/4", AddressScope::Multicast},
    ScopedRange{"240.0.0.0/4", AddressScope::Multicast},  // reserved and broadcast
};
constexpr std::array kV6Ranges{
    ScopedRange{"::1/128", AddressScope::Loopback},
    ScopedRange{"fc00::/7", AddressScope::Private},
    ScopedRange{"fe80::/10", AddressScope::LinkLocal},
    ScopedRange{"ff00::/8", AddressScope::Multicast},
};

// The port rules of the deployment's STUN/TURN side and the roles that serve it.
std::vector<Role> turnRoles() {
  return {Role::Main, Role::Failover, Role::Turn};
}

std::vector<Role> webRoles() {
  return {Role::Main, Role::Failover};
}

void addWebRules(const Deployment& d, std::vector<PortRule>& rules) {
  const bool turnOn443 = d.turn && d.turnOverHttps;
  PortRule https{"https",          Level::Required,
                 Transport::Tcp,   {d.httpsPort, d.httpsPort},
                 {"HTTPS", "WSS"}, "The web app, its REST API and the signaling WebSocket.",
                 webRoles(),       true};
  if (turnOn443) {
    https.protocols.emplace_back("TURN over TLS");
    https.purpose +=
        " On the same port, TURN over TLS relays the media when nothing else gets through, "
        "also through a proxy.";
  }
  rules.push_back(std::move(https));
  if (d.httpPort) {
    rules.push_back({"http",
                     Level::Required,
                     Transport::Tcp,
                     {*d.httpPort, *d.httpPort},
                     {"HTTP"},
                     fmt::format("Only redirects to HTTPS on port {}, so an address typed without "
                                 "https:// still arrives; nothing else is served over it.",
                                 d.httpsPort),
                     webRoles(),
                     true});
  }
}

void addTurnRules(const Deployment& d, std::vector<PortRule>& rules) {
  const PortRange stun{d.stunPort, d.stunPort};
  if (d.stunUdp) {
    rules.push_back(
        {"stun-udp", Level::Recommended, Transport::Udp, stun,
         d.turn ? std::vector<std::string>{"STUN", "TURN"} : std::vector<std::string>{"STUN"},
         d.turn ? "STUN finds the public address of the client behind its NAT or proxy, so "
                  "media can flow directly; TURN over UDP relays the media where it cannot: "
                  "the best path for audio and video after a direct one."
                : "STUN finds the public address of the client behind its NAT or proxy, so "
                  "media can flow directly.",
         turnRoles(), false});
  }
  if (d.stunTcp) {
    rules.push_back(
        {"stun-tcp", Level::Recommended, Transport::Tcp, stun,
         d.turn ? std::vector<std::string>{"STUN", "TURN"} : std::vector<std::string>{"STUN"},
         d.turn ? "TURN over TCP relays the media where UDP is blocked." : "STUN over TCP.",
         turnRoles(), false});
  }
  if (!d.turn) return;
  const PortRange tls{d.tlsPort, d.tlsPort};
  if (d.tls) {
    rules.push_back({"turn-tls",
                     Level::Best,
                     Transport::Tcp,
                     tls,
                     {"TURN over TLS"},
                     "TURN over TLS relays the media where only encrypted TCP gets through, "
                     "without sharing port 443 with the web traffic.",
                     turnRoles(),
                     false});
  }
  if (d.dtls) {
    rules.push_back({"turn-dtls",
                     Level::Best,
                     Transport::Udp,
                     tls,
                     {"TURN over DTLS"},
                     "TURN over DTLS: an encrypted relay over UDP, for clients that support it "
                     "(browsers use TURN over UDP, TCP and TLS).",
                     turnRoles(),
                     false});
  }
  // RFC 8656 section 2: the relayed transport address lives on the TURN server, and the
  // *peer* sends to it. A client that relays its own media talks only to the TURN port above;
  // the relay ports are what the other participant's client sends to when that participant is
  // relayed and this one is not. Blocking them costs nothing but that shortcut: the client
  // then relays its own media too.
  rules.push_back({"turn-relay",
                   Level::Best,
                   Transport::Udp,
                   d.relayPorts,
                   {"SRTP", "SRTCP", "STUN"},
                   "The TURN relay's ports, where relayed media arrives. A client sends to them "
                   "only when the other participant is relayed and it is not; without them it "
                   "relays its own media over the TURN ports instead.",
                   turnRoles(),
                   false});
}

// The media server does not exist yet: Deployment::mediaPorts stays nullopt until it does.
void addMediaRules(const Deployment& d, std::vector<PortRule>& rules) {
  if (!d.mediaPorts) return;
  rules.push_back({"media",
                   Level::Recommended,
                   Transport::Udp,
                   *d.mediaPorts,
                   {"SRTP", "SRTCP", "STUN"},
                   "The media server's ports: audio and video of group calls.",
                   {Role::Media},
                   false});
}

std::string scopeArticle(AddressScope scope) {
  switch (scope) {
    case AddressScope::Unspecified:
      return "an unspecified";
    case AddressScope::Loopback:
      return "a loopback";
    case AddressScope::Private:
      return "a private";
    case AddressScope::Shared:
      return "a shared (carrier-grade NAT)";
    case AddressScope::LinkLocal:
      return "a link-local";
    case AddressScope::Multicast:
      return "a multicast";
    case AddressScope::Public:
      break;
  }
  return "a public";
}

}  // namespace

std::string_view toString(Role role) {
  switch (role) {
    case Role::Main:
      return "main";
    case Role::Failover:
      return "failover";
    case Role::Turn:
      return "turn";
    case Role::Media:
      return "media";
  }
  return "main";
}

std::optional<Role> parseRole(std::string_view text) {
  for (const Role role : {Role::Main, Role::Failover, Role::Turn, Role::Media}) {
    if (text == toString(role)) return role;
  }
  return std::nullopt;
}

std::string_view toString(Level level) {
  switch (level) {
    case Level::Required:
      return "required";
    case Level::Recommended:
      return "recommended";
    case Level::Best:
      return "best";
  }
  return "required";
}

std::string_view levelTitle(Level level) {
  switch (level) {
    case Level::Required:
      return "Minimum";
    case Level::Recommended:
      return "Recommended";
    case Level::Best:
      return "Best experience";
  }
  return "Minimum";
}

std::string_view toString(Transport transport) {
  return transport == Transport::Tcp ? "tcp" : "udp";
}

std::string_view toString(Format format) {
  switch (format) {
    case Format::Markdown:
      return "markdown";
    case Format::Json:
      return "json";
    case Format::Nft:
      return "nft";
    case Format::Pac:
      return "pac";
    case Format::Squid:
      return "squid";
    case Format::Html:
      return "html";
  }
  return "markdown";
}

std::optional<Format> parseFormat(std::string_view text) {
  for (const Format format :
       {Format::Markdown, Format::Json, Format::Nft, Format::Pac, Format::Squid, Format::Html}) {
    if (text == toString(format)) return format;
  }
  return std::nullopt;
}

AddressScope scopeOf(const IpAddress& address) {
  if (address.isUnspecified()) return AddressScope::Unspecified;
  if (address.isV4()) {
    for (const auto& [range, scope] : kV4Ranges) {
      if (inRange(address, range)) return scope;
    }
    return AddressScope::Public;
  }
  if (inRange(address, "::ffff:0:0/96")) {
    const auto bytes = address.bytes();
    return scopeOf(IpAddress::v4(std::span<const std::uint8_t, 4>(bytes.subspan(12, 4))));
  }
  for (const auto& [range, scope] : kV6Ranges) {
    if (inRange(address, range)) return scope;
  }
  return AddressScope::Public;
}

std::string_view toString(AddressScope scope) {
  switch (scope) {
    case AddressScope::Public:
      return "public";
    case AddressScope::Unspecified:
      return "unspecified";
    case AddressScope::Loopback:
      return "loopback";
    case AddressScope::Private:
      return "private";
    case AddressScope::Shared:
      return "shared";
    case AddressScope::LinkLocal:
      return "link-local";
    case AddressScope::Multicast:
      return "multicast";
  }
  return "public";
}

std::string toString(const Cidr& range) {
  const unsigned full = range.network.isV4() ? 32 : 128;
  if (range.prefixLength == full) return range.network.toString();
  return fmt::format("{}/{}", range.network.toString(), range.prefixLength);
}

std::vector<Cidr> mergeRanges(std::vector<Cidr> ranges) {
  std::sort(ranges.begin(), ranges.end(), [](const Cidr& a, const Cidr& b) {
    if (a.network.family() != b.network.family()) return a.network.isV4();
    if (a.network != b.network) return a.network < b.network;
    return a.prefixLength < b.prefixLength;
  });
  std::vector<Cidr> merged;
  for (const Cidr& range : ranges) {
    const bool covered = std::any_of(merged.begin(), merged.end(), [&](const Cidr& outer) {
      return outer.prefixLength <= range.prefixLength && outer.contains(range.network);
    });
    if (!covered) merged.push_back(range);
  }
  return merged;
}

Node deriveMainNode(const KnownAddresses& known) {
  Node node{"main", Role::Main, "", {}, true};
  const auto hasExternal = [&](AddressFamily family) {
    return std::any_of(known.external.begin(), known.external.end(),
                       [family](const IpAddress& a) { return a.family() == family; });
  };
  const auto add = [&](const IpAddress& address, bool external) {
    if (address.isUnspecified()) return;
    if (!external && scopeOf(address) != AddressScope::Public && hasExternal(address.family())) {
      return;
    }
    const bool listed = std::any_of(node.addresses.begin(), node.addresses.end(),
                                    [&](const Cidr& host) { return host.network == address; });
    if (!listed) node.addresses.push_back({address, address.isV4() ? 32u : 128u});
  };
  for (const auto& address : known.external)
    add(address, true);
  for (const auto& address : known.relay)
    add(address, false);
  for (const auto& address : known.listen)
    add(address, false);
  return node;
}

Contract buildContract(const Deployment& deployment) {
  Contract contract;
  contract.deployment = deployment;
  addWebRules(deployment, contract.ports);
  addTurnRules(deployment, contract.ports);
  addMediaRules(deployment, contract.ports);

  bool anyAddress = false;
  for (Node& node : contract.deployment.nodes) {
    if (!node.derived) {
      anyAddress = anyAddress || !node.addresses.empty();
      continue;
    }
    std::vector<Cidr> published;
    for (const Cidr& address : node.addresses) {
      const AddressScope scope = scopeOf(address.network);
      if (scope == AddressScope::Public) {
        published.push_back(address);
      } else {
        contract.unpublished.push_back({node.name, address, scope});
        contract.warnings.push_back(fmt::format(
            "{} is {} address, which clients cannot reach: it was taken from the server's "
            "own listen and relay addresses because deployment.nodes is not set. List the "
            "public addresses of every node in deployment.nodes.",
            toString(address), scopeArticle(scope)));
      }
    }
    node.addresses = std::move(published);
    anyAddress = anyAddress || !node.addresses.empty();
  }
  if (!anyAddress) {
    contract.warnings.emplace_back(
        "No public address of any node is known, so the page names none: list the public "
        "addresses of every node in deployment.nodes.");
  }
  if (deployment.domain.empty()) {
    contract.warnings.push_back(
        fmt::format("{} names an address, not a domain: customers can only allow the addresses. "
                    "Give the server a domain name in web.public_url.",
                    deployment.url));
  } else if (deployment.domain == "localhost" || deployment.domain.ends_with(".localhost")) {
    contract.warnings.emplace_back(
        "The domain is localhost, which only reaches the client's own computer: set "
        "web.public_url to the address browsers use.");
  }
  return contract;
}

}  // namespace parley::requirements
