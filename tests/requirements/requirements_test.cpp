#include <algorithm>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <parley/requirements/requirements.hpp>

namespace parley::requirements {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;

IpAddress ip(const char* text) {
  return *IpAddress::parse(text);
}

Cidr range(const char* text) {
  return *Cidr::parse(text);
}

std::vector<std::string> texts(const std::vector<Cidr>& ranges) {
  std::vector<std::string> out;
  for (const auto& r : ranges)
    out.push_back(toString(r));
  return out;
}

std::vector<std::string> idsOf(const Contract& contract) {
  std::vector<std::string> ids;
  for (const auto& rule : contract.ports)
    ids.push_back(rule.id);
  return ids;
}

const PortRule& rule(const Contract& contract, const std::string& id) {
  const auto found = std::find_if(contract.ports.begin(), contract.ports.end(),
                                  [&](const PortRule& r) { return r.id == id; });
  EXPECT_NE(found, contract.ports.end()) << id;
  return *found;
}

// The sample multi-node deployment: main and failover in one region, two TURN nodes in two
// regions, IPv4 and IPv6, single hosts and ranges.
Deployment sample() {
  Deployment d;
  d.url = "https://meet.example.com";
  d.domain = "meet.example.com";
  d.organisation = "Example Bank";
  d.contact = "it-support@example.com";
  d.nodes = {
      {"main", Role::Main, "eu-central", {range("203.0.113.10"), range("2001:db8:10::10")}},
      {"failover", Role::Failover, "eu-central", {range("198.51.100.0/28")}},
      {"turn-fra", Role::Turn, "eu-central", {range("203.0.113.64/27"), range("2001:db8:20::/64")}},
      {"turn-dub", Role::Turn, "eu-west", {range("192.0.2.128/26"), range("2001:db8:30::/48")}},
  };
  d.generatedAt = 1'795'000'000;  // 2026-11-18T11:06:40Z
  return d;
}

const char* const kSampleAddresses[] = {"203.0.113.10",    "2001:db8:10::10",  "198.51.100.0/28",
                                        "203.0.113.64/27", "2001:db8:20::/64", "192.0.2.128/26",
                                        "2001:db8:30::/48"};

// ---- names and addresses ------------------------------------------------------------------

TEST(RequirementsNames, RoundTrip) {
  for (const Role role : {Role::Main, Role::Failover, Role::Turn, Role::Media})
    EXPECT_EQ(parseRole(toString(role)), role);
  EXPECT_FALSE(parseRole("edge"));
  for (const Format format :
       {Format::Markdown, Format::Json, Format::Nft, Format::Pac, Format::Squid, Format::Html})
    EXPECT_EQ(parseFormat(toString(format)), format);
  EXPECT_FALSE(parseFormat("yaml"));
  EXPECT_EQ(toString(Level::Required), "required");
  EXPECT_EQ(levelTitle(Level::Best), "Best experience");
}

TEST(RequirementsAddresses, ScopeOf) {
  EXPECT_EQ(scopeOf(ip("203.0.113.10")), AddressScope::Public);
  EXPECT_EQ(scopeOf(ip("8.8.8.8")), AddressScope::Public);
  EXPECT_EQ(scopeOf(ip("2001:db8::1")), AddressScope::Public);
  EXPECT_EQ(scopeOf(ip("0.0.0.0")), AddressScope::Unspecified);
  EXPECT_EQ(scopeOf(ip("::")), AddressScope::Unspecified);
  EXPECT_EQ(scopeOf(ip("127.0.0.1")), AddressScope::Loopback);
  EXPECT_EQ(scopeOf(ip("::1")), AddressScope::Loopback);
  EXPECT_EQ(scopeOf(ip("10.1.2.3")), AddressScope::Private);
  EXPECT_EQ(scopeOf(ip("172.31.0.1")), AddressScope::Private);
  EXPECT_EQ(scopeOf(ip("172.32.0.1")), AddressScope::Public);
  EXPECT_EQ(scopeOf(ip("192.168.1.1")), AddressScope::Private);
  EXPECT_EQ(scopeOf(ip("fd00::1")), AddressScope::Private);
  EXPECT_EQ(scopeOf(ip("100.64.0.1")), AddressScope::Shared);
  EXPECT_EQ(scopeOf(ip("169.254.169.254")), AddressScope::LinkLocal);
  EXPECT_EQ(scopeOf(ip("fe80::1")), AddressScope::LinkLocal);
  EXPECT_EQ(scopeOf(ip("224.0.0.1")), AddressScope::Multicast);
  EXPECT_EQ(scopeOf(ip("255.255.255.255")), AddressScope::Multicast);
  EXPECT_EQ(scopeOf(ip("ff02::1")), AddressScope::Multicast);
  EXPECT_EQ(scopeOf(ip("::ffff:10.0.0.1")), AddressScope::Private);
  EXPECT_EQ(scopeOf(ip("::ffff:203.0.113.1")), AddressScope::Public);
}

TEST(RequirementsAddresses, ToStringAndMerge) {
  EXPECT_EQ(toString(range("203.0.113.10")), "203.0.113.10");
  EXPECT_EQ(toString(range("203.0.113.10/32")), "203.0.113.10");
  EXPECT_EQ(toString(range("198.51.100.0/28")), "198.51.100.0/28");
  EXPECT_EQ(toString(range("2001:db8::/64")), "2001:db8::/64");
  const auto merged =
      mergeRanges({range("2001:db8::1"), range("198.51.100.5"), range("198.51.100.0/28"),
                   range("203.0.113.10"), range("2001:db8::/64"), range("203.0.113.10")});
  EXPECT_THAT(texts(merged), ElementsAre("198.51.100.0/28", "203.0.113.10", "2001:db8::/64"));
}

TEST(RequirementsAddresses, DeriveMainNode) {
  const Node node =
      deriveMainNode({{},
                      {ip("203.0.113.10"), ip("2001:db8::10")},
                      {ip("0.0.0.0"), ip("203.0.113.10"), ip("127.0.0.1"), ip("::")}});
  EXPECT_EQ(node.name, "main");
  EXPECT_EQ(node.role, Role::Main);
  EXPECT_TRUE(node.derived);
  EXPECT_THAT(texts(node.addresses), ElementsAre("203.0.113.10", "2001:db8::10", "127.0.0.1"));

  // Behind a 1:1 NAT the private addresses are the inside; the external one is what counts.
  const Node natted =
      deriveMainNode({{ip("203.0.113.10")}, {ip("10.0.0.5")}, {ip("10.0.0.5"), ip("fd00::5")}});
  EXPECT_THAT(texts(natted.addresses), ElementsAre("203.0.113.10", "fd00::5"));
}

// ---- the contract -------------------------------------------------------------------------

TEST(RequirementsContract, DefaultPortsAndLevels) {
  const Contract contract = buildContract(sample());
  EXPECT_THAT(idsOf(contract), ElementsAre("https", "http", "stun-udp", "stun-tcp", "turn-tls",
                                           "turn-dtls", "turn-relay"));
  const PortRule& https = rule(contract, "https");
  EXPECT_EQ(https.level, Level::Required);
  EXPECT_EQ(https.transport, Transport::Tcp);
  EXPECT_EQ(https.ports, (PortRange{443, 443}));
  EXPECT_THAT(https.protocols, ElementsAre("HTTPS", "WSS", "TURN over TLS"));
  EXPECT_TRUE(https.throughProxy);
  EXPECT_THAT(https.destinations, ElementsAre(Role::Main, Role::Failover));
  EXPECT_EQ(rule(contract, "http").level, Level::Required);
  EXPECT_EQ(rule(contract, "http").ports, (PortRange{80, 80}));
  EXPECT_EQ(rule(contract, "stun-udp").level, Level::Recommended);
  EXPECT_EQ(rule(contract, "stun-udp").transport, Transport::Udp);
  EXPECT_EQ(rule(contract, "stun-tcp").ports, (PortRange{3478, 3478}));
  EXPECT_FALSE(rule(contract, "stun-tcp").throughProxy);
  EXPECT_THAT(rule(contract, "stun-tcp").destinations,
              ElementsAre(Role::Main, Role::Failover, Role::Turn));
  EXPECT_EQ(rule(contract, "turn-tls").level, Level::Best);
  EXPECT_EQ(rule(contract, "turn-dtls").transport, Transport::Udp);
  EXPECT_EQ(rule(contract, "turn-dtls").ports, (PortRange{5349, 5349}));
  const PortRule& relay = rule(contract, "turn-relay");
  EXPECT_EQ(relay.level, Level::Best);
  EXPECT_EQ(relay.transport, Transport::Udp);
  EXPECT_EQ(relay.ports, (PortRange{49152, 65535}));
  EXPECT_THAT(relay.purpose, HasSubstr("other participant"));
  EXPECT_TRUE(contract.warnings.empty());
  EXPECT_TRUE(contract.unpublished.empty());
}

TEST(RequirementsContract, SettingsChangeTheRules) {
  Deployment d = sample();
  d.httpsPort = 8443;
  d.httpPort.reset();
  d.turnOverHttps = false;
  d.stunPort = 3480;
  d.stunTcp = false;
  d.dtls = false;
  d.relayPorts = {40000, 40999};
  Contract contract = buildContract(d);
  EXPECT_THAT(idsOf(contract), ElementsAre("https", "stun-udp", "turn-tls", "turn-relay"));
  EXPECT_EQ(rule(contract, "https").ports, (PortRange{8443, 8443}));
  EXPECT_THAT(rule(contract, "https").protocols, ElementsAre("HTTPS", "WSS"));
  EXPECT_EQ(rule(contract, "stun-udp").ports, (PortRange{3480, 3480}));
  EXPECT_EQ(rule(contract, "turn-relay").ports, (PortRange{40000, 40999}));

  // Without TURN: STUN only, no relay of any kind.
  d = sample();
  d.turn = false;
  contract = buildContract(d);
  EXPECT_THAT(idsOf(contract), ElementsAre("https", "http", "stun-udp", "stun-tcp"));
  EXPECT_THAT(rule(contract, "stun-udp").protocols, ElementsAre("STUN"));
  EXPECT_THAT(rule(contract, "https").protocols, ElementsAre("HTTPS", "WSS"));
  EXPECT_THAT(render(contract, Format::Markdown), HasSubstr("relays no media over that port"));
}

TEST(RequirementsContract, MediaPortsOnlyWhenTheMediaServerExists) {
  Deployment d = sample();
  EXPECT_FALSE(d.mediaPorts);
  EXPECT_THAT(render(buildContract(d), Format::Markdown), HasSubstr("runs no media server"));
  d.mediaPorts = PortRange{20000, 20099};
  d.nodes.push_back({"sfu", Role::Media, "eu-central", {range("203.0.113.200")}});
  const Contract contract = buildContract(d);
  EXPECT_EQ(contract.ports.back().id, "media");
  EXPECT_THAT(contract.ports.back().destinations, ElementsAre(Role::Media));
  EXPECT_THAT(render(contract, Format::Nft),
              HasSubstr("ip daddr @media_v4 udp dport 20000-20099 accept"));
}

TEST(RequirementsContract, DerivedNodePublishesOnlyPublicAddresses) {
  Deployment d = sample();
  d.nodes = {deriveMainNode({{}, {ip("127.0.0.1")}, {ip("203.0.113.10"), ip("10.0.0.7")}})};
  const Contract contract = buildContract(d);
  ASSERT_EQ(contract.deployment.nodes.size(), 1u);
  EXPECT_THAT(texts(contract.deployment.nodes[0].addresses), ElementsAre("203.0.113.10"));
  ASSERT_EQ(contract.unpublished.size(), 2u);
  EXPECT_EQ(toString(contract.unpublished[0].address), "127.0.0.1");
  EXPECT_EQ(contract.unpublished[0].scope, AddressScope::Loopback);
  EXPECT_EQ(contract.unpublished[1].scope, AddressScope::Private);
  ASSERT_EQ(contract.warnings.size(), 2u);
  EXPECT_THAT(contract.warnings[0], HasSubstr("127.0.0.1 is a loopback address"));
  EXPECT_THAT(contract.warnings[0], HasSubstr("deployment.nodes"));

  // Listed on the page with the reason, never in a rule or an ACL.
  const std::string markdown = render(contract, Format::Markdown);
  EXPECT_THAT(markdown, HasSubstr("> **Warning:** 127.0.0.1 is a loopback address"));
  EXPECT_THAT(markdown, HasSubstr("`127.0.0.1` (loopback address: not reachable"));
  for (const Format format : {Format::Nft, Format::Pac, Format::Squid}) {
    const std::string text = render(contract, format);
    std::string withoutComments;
    for (std::size_t start = 0; start < text.size();) {
      const auto end = text.find('\n', start);
      const std::string line = text.substr(start, end - start);
      if (!line.starts_with("#") && !line.starts_with("//")) withoutComments += line + "\n";
      start = end == std::string::npos ? text.size() : end + 1;
    }
    EXPECT_THAT(withoutComments, Not(HasSubstr("127.0.0.1"))) << toString(format);
    EXPECT_THAT(withoutComments, Not(HasSubstr("10.0.0.7"))) << toString(format);
    EXPECT_THAT(text, HasSubstr("WARNING: 127.0.0.1 is a loopback address")) << toString(format);
  }
  const auto json = nlohmann::json::parse(render(contract, Format::Json));
  EXPECT_EQ(json["nodes"][0]["addresses"], nlohmann::json::array({"203.0.113.10"}));
  EXPECT_EQ(json["unpublished"][0]["address"], "127.0.0.1");
  EXPECT_EQ(json["unpublished"][0]["scope"], "loopback");
  EXPECT_EQ(json["warnings"].size(), 2u);
}

TEST(RequirementsContract, NoPublicAddressAndNoDomainAreWarnings) {
  Deployment d;
  d.url = "https://localhost:8443";
  d.domain = "localhost";
  d.httpsPort = 8443;
  d.nodes = {deriveMainNode({{}, {}, {ip("127.0.0.1")}})};
  Contract contract = buildContract(d);
  EXPECT_THAT(contract.warnings, ::testing::Contains(HasSubstr("No public address")));
  EXPECT_THAT(contract.warnings, ::testing::Contains(HasSubstr("The domain is localhost")));

  d = sample();
  d.url = "https://203.0.113.10";
  d.domain = "";
  contract = buildContract(d);
  EXPECT_THAT(contract.warnings, ElementsAre(HasSubstr("names an address, not a domain")));
  EXPECT_THAT(render(contract, Format::Squid), Not(HasSubstr("dstdomain")));
  EXPECT_THAT(render(contract, Format::Pac), HasSubstr("var PARLEY_DOMAIN = \"\";"));
  EXPECT_TRUE(nlohmann::json::parse(render(contract, Format::Json))["domain"].is_null());
  EXPECT_THAT(render(contract, Format::Markdown), HasSubstr("has no domain name"));
}

// ---- the formats --------------------------------------------------------------------------

TEST(RequirementsFormats, MarkdownHasEveryFact) {
  const std::string md = render(buildContract(sample()), Format::Markdown);
  EXPECT_TRUE(md.starts_with("# Network requirements for Parley at meet.example.com\n")) << md;
  for (const char* port : {"`443`", "`80`", "`3478`", "`5349`", "`49152-65535`"})
    EXPECT_THAT(md, HasSubstr(port));
  for (const char* address : kSampleAddresses)
    EXPECT_THAT(md, HasSubstr(std::string("`") + address + "`"));
  for (const char* fact :
       {"**Minimum:** TCP 443 and TCP 80 to the domain and the addresses below",
        "**Recommended:** UDP and TCP 3478",
        "**Best experience:** also TCP and UDP 5349, "
        "UDP 49152-65535",
        "outbound from the client", "no inbound rule is needed",
        "Exactly one domain: "
        "`meet.example.com`",
        "**No proxy authentication**", "**No TLS inspection**", "CONNECT",
        "at least 1000 kbit/s per video stream the client receives",
        "at least 1000 kbit/s per video stream it sends", "### Region eu-central",
        "### Region eu-west", "Example Bank holds video consultations", "it-support@example.com",
        "OpenH264", "/.well-known/parley/requirements.json", "2026-11-18T"})
    EXPECT_THAT(md, HasSubstr(fact));
  EXPECT_THAT(md, HasSubstr("| Minimum | `443` | TCP | HTTPS, WSS, TURN over TLS | outbound from "
                            "the client | main and failover nodes |"));
  EXPECT_THAT(md, HasSubstr("| Best experience | `49152-65535` | UDP | SRTP, SRTCP, STUN | "
                            "outbound from the client | all nodes | The TURN relay's ports"));
  EXPECT_THAT(md, HasSubstr("| turn-dub | turn | `192.0.2.128/26`, `2001:db8:30::/48` |"));
}

TEST(RequirementsFormats, OneRegionIsAColumnNotASection) {
  Deployment d = sample();
  for (auto& node : d.nodes)
    node.region = "eu-central";
  const std::string md = render(buildContract(d), Format::Markdown);
  EXPECT_THAT(md, Not(HasSubstr("### Region")));
  EXPECT_THAT(md, HasSubstr("| Node | Role | Region | Addresses |"));
  EXPECT_THAT(md, HasSubstr("| main | main | eu-central | `203.0.113.10`, `2001:db8:10::10` |"));
}

TEST(RequirementsFormats, OperatorTextIsEscaped) {
  Deployment d = sample();
  d.organisation = "A*B_<script>alert(1)</script> | [x](y) & `c`";
  d.nodes[0].name = "main|1";
  const Contract contract = buildContract(d);
  const std::string md = render(contract, Format::Markdown);
  EXPECT_THAT(md,
              HasSubstr("A\\*B\\_\\<script\\>alert(1)\\</script\\> \\| \\[x\\](y) \\& \\`c\\`"));
  EXPECT_THAT(md, HasSubstr("| main\\|1 |"));
  const std::string html = render(contract, Format::Html);
  EXPECT_THAT(html, Not(HasSubstr("<script")));
  EXPECT_THAT(html, HasSubstr("A*B_&lt;script&gt;alert(1)&lt;/script&gt; | [x](y) &amp; `c`"));
}

TEST(RequirementsFormats, HtmlIsSelfContainedAndMatchesItsPolicy) {
  const std::string html = render(buildContract(sample()), Format::Html);
  EXPECT_TRUE(html.starts_with("<!DOCTYPE html>\n<html lang=\"en\">")) << html;
  EXPECT_THAT(html,
              HasSubstr("<title>Network requirements for Parley at meet.example.com</title>"));
  EXPECT_THAT(html, HasSubstr("<style>"));
  // Nothing loaded from anywhere: no scripts, links, images or frames.
  for (const char* tag :
       {"<script", "<link", "<img", "<iframe", "src=", "href=", "@import", "url("})
    EXPECT_THAT(html, Not(HasSubstr(tag))) << tag;
  for (const char* address : kSampleAddresses)
    EXPECT_THAT(html, HasSubstr(std::string("<code>") + address + "</code>"));
  EXPECT_THAT(html, HasSubstr("<th>Level</th>"));
  EXPECT_THAT(html, HasSubstr("<strong>No TLS inspection</strong>"));

  const std::string csp = htmlContentSecurityPolicy();
  EXPECT_TRUE(csp.starts_with("default-src 'none'; style-src 'sha256-")) << csp;
  const auto hash = csp.substr(csp.find("sha256-") + 7, 44);
  EXPECT_EQ(hash.size(), 44u);
  EXPECT_EQ(hash.back(), '=');
  EXPECT_THAT(csp, HasSubstr("frame-ancestors 'none'"));
  EXPECT_EQ(csp, htmlContentSecurityPolicy());
}

TEST(RequirementsFormats, Json) {
  const std::string text = render(buildContract(sample()), Format::Json);
  const auto json = nlohmann::json::parse(text);
  EXPECT_EQ(json["version"], 1);
  EXPECT_EQ(json["generatedAt"], "2026-11-18T11:06:40Z");
  EXPECT_EQ(json["url"], "https://meet.example.com");
  EXPECT_EQ(json["domain"], "meet.example.com");
  EXPECT_EQ(json["organisation"], "Example Bank");
  ASSERT_EQ(json["ports"].size(), 7u);
  const auto& https = json["ports"][0];
  EXPECT_EQ(https["id"], "https");
  EXPECT_EQ(https["level"], "required");
  EXPECT_EQ(https["transport"], "tcp");
  EXPECT_EQ(https["port"], 443);
  EXPECT_FALSE(https.contains("endPort"));
  EXPECT_EQ(https["direction"], "outbound from the client");
  EXPECT_EQ(https["throughProxy"], true);
  EXPECT_EQ(https["destinations"], nlohmann::json::array({"main", "failover"}));
  const auto& relay = json["ports"][6];
  EXPECT_EQ(relay["port"], 49152);
  EXPECT_EQ(relay["endPort"], 65535);
  ASSERT_EQ(json["nodes"].size(), 4u);
  EXPECT_EQ(json["nodes"][3]["name"], "turn-dub");
  EXPECT_EQ(json["nodes"][3]["role"], "turn");
  EXPECT_EQ(json["nodes"][3]["region"], "eu-west");
  EXPECT_EQ(json["nodes"][3]["addresses"],
            nlohmann::json::array({"192.0.2.128/26", "2001:db8:30::/48"}));
  EXPECT_EQ(json["bandwidth"]["perStreamKbps"], 1000);
  EXPECT_EQ(json["proxy"]["connectPorts"], nlohmann::json::array({443}));
  EXPECT_EQ(json["proxy"]["authentication"], "must not be required");
  EXPECT_EQ(json["proxy"]["tlsInspection"],
            "must be disabled for meet.example.com and the node addresses");
  EXPECT_EQ(json["levels"][1]["ports"], "UDP and TCP 3478");
  EXPECT_TRUE(json["warnings"].empty());

  Deployment timeless = sample();
  timeless.generatedAt.reset();
  EXPECT_FALSE(
      nlohmann::json::parse(render(buildContract(timeless), Format::Json)).contains("generatedAt"));
}

TEST(RequirementsFormats, Nft) {
  const std::string nft = render(buildContract(sample()), Format::Nft);
  EXPECT_TRUE(nft.starts_with("#!/usr/sbin/nft -f\n"));
  EXPECT_THAT(nft, HasSubstr("table inet parley_egress\ndelete table inet parley_egress\n"));
  EXPECT_THAT(nft, HasSubstr("\tset web_v4 {\n\t\ttype ipv4_addr\n\t\tflags interval\n\t\t"
                             "auto-merge\n\t\telements = { 198.51.100.0/28, 203.0.113.10 }\n"));
  EXPECT_THAT(nft, HasSubstr("\tset web_v6 {\n\t\ttype ipv6_addr\n\t\tflags interval\n\t\t"
                             "auto-merge\n\t\telements = { 2001:db8:10::10 }\n"));
  EXPECT_THAT(nft, HasSubstr("elements = { 192.0.2.128/26, 198.51.100.0/28, 203.0.113.10, "
                             "203.0.113.64/27 }"));
  for (const char* line :
       {"ip daddr @web_v4 tcp dport 443 accept", "ip6 daddr @web_v6 tcp dport 443 accept",
        "ip daddr @web_v4 tcp dport 80 accept", "ip daddr @turn_v4 udp dport 3478 accept",
        "ip6 daddr @turn_v6 tcp dport 3478 accept", "ip daddr @turn_v4 tcp dport 5349 accept",
        "ip6 daddr @turn_v6 udp dport 5349 accept",
        "ip daddr @turn_v4 udp dport 49152-65535 accept",
        "type filter hook forward priority filter; policy drop;",
        "ct state established,related accept", "jump contract"})
    EXPECT_THAT(nft, HasSubstr(line));
  EXPECT_THAT(nft,
              HasSubstr("\t# Role main, failover and turn: main, failover, turn-fra, turn-dub\n"));
  EXPECT_THAT(nft, HasSubstr("\t# Role main and failover: main, failover\n"));
}

TEST(RequirementsFormats, Pac) {
  const std::string pac = render(buildContract(sample()), Format::Pac);
  EXPECT_THAT(pac, HasSubstr("var PARLEY_ROUTE = \"DIRECT\";"));
  EXPECT_THAT(pac, HasSubstr("var PARLEY_DOMAIN = \"meet.example.com\";"));
  EXPECT_THAT(pac, HasSubstr("[\"198.51.100.0\", \"255.255.255.240\"]"));
  EXPECT_THAT(pac, HasSubstr("[\"203.0.113.10\", \"255.255.255.255\"]"));
  EXPECT_THAT(pac, HasSubstr("[\"192.0.2.128\", \"255.255.255.192\"]"));
  EXPECT_THAT(pac, HasSubstr("\"2001:db8:30::/48\""));
  EXPECT_THAT(pac, HasSubstr("function FindProxyForURL(url, host)"));
}

TEST(RequirementsFormats, Squid) {
  const std::string squid = render(buildContract(sample()), Format::Squid);
  for (const char* line : {
           "acl parley_domain dstdomain meet.example.com\n",
           "acl parley_nodes dst 192.0.2.128/26 198.51.100.0/28 203.0.113.10 203.0.113.64/27 "
           "2001:db8:10::10 2001:db8:20::/64 2001:db8:30::/48\n",
           "acl parley_https_port port 443\n",
           "acl parley_http_port port 80\n",
           "http_access allow parley_connect parley_https_port parley_domain\n",
           "http_access allow parley_connect parley_https_port parley_nodes\n",
           "http_access allow !parley_connect parley_http_port parley_domain\n",
           "ssl_bump splice parley_domain\n",
           "ssl_bump splice parley_nodes\n",
       })
    EXPECT_THAT(squid, HasSubstr(line));
  Deployment noRedirect = sample();
  noRedirect.httpPort.reset();
  EXPECT_THAT(render(buildContract(noRedirect), Format::Squid), Not(HasSubstr("parley_http_port")));
}

TEST(RequirementsFormats, CommentsStayOnOneLine) {
  Deployment d = sample();
  d.nodes[0].name = "evil\nflush ruleset";
  const std::string nft = render(buildContract(d), Format::Nft);
  EXPECT_THAT(nft, Not(HasSubstr("\nflush ruleset")));
  EXPECT_THAT(nft, HasSubstr("evil flush ruleset"));
}

TEST(RequirementsFormats, Deterministic) {
  const Contract contract = buildContract(sample());
  for (const Format format :
       {Format::Markdown, Format::Json, Format::Nft, Format::Pac, Format::Squid, Format::Html})
    EXPECT_EQ(render(contract, format), render(buildContract(sample()), format));
}

}  // namespace
}  // namespace parley::requirements
