// The deployment's network contract (docs/requirements.md): the ports, node addresses and the
// one domain a customer's network must allow for a Parley deployment, and the bandwidth it
// needs, rendered for people (Markdown, HTML) and for machines (JSON, nftables, PAC, squid).
// Pure values and text: no I/O, no clock, no config. app/ maps the config to a Deployment.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <parley/base/cidr.hpp>
#include <parley/base/endpoint.hpp>

namespace parley::requirements {

// The JSON document's "version"; raised when a change would break a reader of version 1.
inline constexpr int kSchemaVersion = 1;
// Where `parley serve` publishes the contract.
inline constexpr std::string_view kJsonPath = "/.well-known/parley/requirements.json";
inline constexpr std::string_view kHtmlPath = "/network-requirements";
// Bandwidth planning per video stream, each way (PRODUCT.md): down per received stream, up
// per sent stream.
inline constexpr unsigned kPerStreamKbps = 1000;

// What a node runs. main and failover: `parley serve` (web app, signaling, STUN/TURN);
// turn: `parley turn`; media: the media server (SFU), which is not built yet.
enum class Role : std::uint8_t { Main, Failover, Turn, Media };
// How much a port matters: required = the minimum without which nothing works, recommended =
// what a good call needs, best = the best experience.
enum class Level : std::uint8_t { Required, Recommended, Best };
enum class Transport : std::uint8_t { Tcp, Udp };
enum class Format : std::uint8_t { Markdown, Json, Nft, Pac, Squid, Html };

std::string_view toString(Role role);  // "main", "failover", "turn", "media"
std::optional<Role> parseRole(std::string_view text);
std::string_view toString(Level level);          // "required", "recommended", "best"
std::string_view levelTitle(Level level);        // "Minimum", "Recommended", "Best experience"
std::string_view toString(Transport transport);  // "tcp", "udp"
std::string_view toString(Format format);        // "markdown", "json", "nft", "pac", ...
std::optional<Format> parseFormat(std::string_view text);

struct PortRange {
  std::uint16_t first = 0;
  std::uint16_t last = 0;  // == first for a single port
  friend bool operator==(const PortRange&, const PortRange&) = default;
};

struct Node {
  std::string name;
  Role role = Role::Main;
  std::string region;           // "" = none
  std::vector<Cidr> addresses;  // ranges with their host bits zero; a host is /32 or /128
  // Made up from the server's own addresses because no node was configured: addresses that are
  // not public are then reported, not published (see buildContract).
  bool derived = false;
};

// The facts of a deployment the contract is made of, as the config states them. Every node
// is assumed to use the same ports.
struct Deployment {
  std::string url = "https://localhost";  // how browsers reach it; no trailing slash
  std::string domain = "localhost";       // the one domain; "" when `url` names an address
  std::string organisation;               // who runs it, for the page; "" = not named
  std::string contact;                    // whom customers' IT may ask; "" = not named

  std::uint16_t httpsPort = 443;               // the public port of `url`
  std::optional<std::uint16_t> httpPort = 80;  // the redirect; nullopt = not running
  std::uint16_t stunPort = 3478;
  bool stunUdp = true;
  bool stunTcp = true;
  bool turn = true;           // the TURN relay runs (else STUN only)
  bool turnOverHttps = true;  // TURN over TLS on httpsPort as well
  std::uint16_t tlsPort = 5349;
  bool tls = true;   // TURN over TLS (TCP) on tlsPort
  bool dtls = true;  // TURN over DTLS (UDP) on tlsPort
  PortRange relayPorts{49152, 65535};
  // The media server (SFU) is not built yet. Its UDP ports belong here once it exists; until
  // then this stays nullopt and no contract lists media ports (nothing is invented).
  std::optional<PortRange> mediaPorts;

  std::vector<Node> nodes;
  std::optional<std::int64_t> generatedAt;  // Unix seconds; nullopt leaves the time out
};

// Where an address can be reached from, as far as the address alone tells.
enum class AddressScope : std::uint8_t {
  Public,
  Unspecified,  // 0.0.0.0, ::
  Loopback,     // 127.0.0.0/8, ::1
  Private,      // RFC 1918, RFC 4193 (fc00::/7), 0.0.0.0/8
  Shared,       // RFC 6598 carrier-grade NAT, 100.64.0.0/10
  LinkLocal,    // 169.254.0.0/16, fe80::/10
  Multicast,    // 224.0.0.0/4, 240.0.0.0/4 and broadcast, ff00::/8
};
// IPv4-mapped IPv6 addresses are judged by the IPv4 address inside. Documentation ranges
// (RFC 5737, RFC 3849) count as public, so examples read like real deployments.
AddressScope scopeOf(const IpAddress& address);
std::string_view toString(AddressScope scope);  // "public", "loopback", "private", ...

// The addresses a config names for its own host, for the node derived when none is configured.
struct KnownAddresses {
  std::vector<IpAddress> external;  // turn.external_address(_v6): what clients see behind NAT
  std::vector<IpAddress> relay;     // the TURN relay addresses
  std::vector<IpAddress> listen;    // stun.listen and web.listen; wildcards are left out
};
// One node "main" (derived = true) with every concrete address, in that order, without
// duplicates. A non-public address of a family that has an external address is left out: it
// is the inside of the NAT, and the external one is what clients reach.
Node deriveMainNode(const KnownAddresses& known);

struct PortRule {
  std::string id;  // stable: "https", "http", "stun-udp", "stun-tcp", "turn-tls", ...
  Level level = Level::Required;
  Transport transport = Transport::Tcp;
  PortRange ports;
  std::vector<std::string> protocols;  // "HTTPS", "WSS", "TURN over TLS", ...
  std::string purpose;                 // one or two sentences for people
  std::vector<Role> destinations;      // the node roles that serve it
  bool throughProxy = false;           // may pass an HTTP/1.1 proxy (CONNECT)
};

// A derived node's address that is not published, and why.
struct UnpublishedAddress {
  std::string node;
  Cidr address;
  AddressScope scope = AddressScope::Private;
};

struct Contract {
  Deployment deployment;  // nodes with the addresses that are published
  std::vector<PortRule> ports;
  std::vector<UnpublishedAddress> unpublished;
  std::vector<std::string> warnings;  // for the operator; every renderer shows them
};

// The contract of `deployment`: the port rules its settings call for (every direction is
// outbound from the client), the nodes with their published addresses, and warnings about what
// the operator still has to set.
Contract buildContract(const Deployment& deployment);

// The contract in `format`; deterministic (the time only when Deployment::generatedAt is set).
std::string render(const Contract& contract, Format format);

// The Content-Security-Policy the HTML page needs: nothing but its own inline style, by hash.
std::string htmlContentSecurityPolicy();

// "203.0.113.10" for a single host, "198.51.100.0/28" for a range.
std::string toString(const Cidr& range);
// The ranges of `ranges` with duplicates and ranges inside others removed, sorted.
std::vector<Cidr> mergeRanges(std::vector<Cidr> ranges);

}  // namespace parley::requirements
