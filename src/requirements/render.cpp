// render(), the HTML page's CSP and the helpers every format shares.
#include <algorithm>
#include <ctime>

#include <fmt/format.h>
#include <openssl/evp.h>

#include "render.hpp"

namespace parley::requirements {
namespace detail {

std::string rfc3339(std::int64_t unixSeconds) {
  const auto time = static_cast<std::time_t>(unixSeconds);
  std::tm utc{};
  gmtime_r(&time, &utc);
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z", utc.tm_year + 1900, utc.tm_mon + 1,
                     utc.tm_mday, utc.tm_hour, utc.tm_min, utc.tm_sec);
}

std::string portText(PortRange ports) {
  if (ports.first == ports.last) return std::to_string(ports.first);
  return fmt::format("{}-{}", ports.first, ports.last);
}

std::vector<Cidr> addressesOf(const Contract& contract, const std::vector<Role>& roles) {
  std::vector<Cidr> ranges;
  for (const Node& node : contract.deployment.nodes) {
    if (std::find(roles.begin(), roles.end(), node.role) == roles.end()) continue;
    ranges.insert(ranges.end(), node.addresses.begin(), node.addresses.end());
  }
  return mergeRanges(std::move(ranges));
}

std::vector<Cidr> allAddresses(const Contract& contract) {
  return addressesOf(contract, {Role::Main, Role::Failover, Role::Turn, Role::Media});
}

std::string joinAnd(const std::vector<std::string>& items) {
  std::string text;
  for (std::size_t i = 0; i < items.size(); ++i) {
    if (i > 0) text += i + 1 == items.size() ? " and " : ", ";
    text += items[i];
  }
  return text;
}

namespace {

// "TCP 443", "UDP and TCP 3478": rules on the same ports share one phrase, in rule order.
std::string portsPhrase(const std::vector<const PortRule*>& rules) {
  struct Group {
    PortRange ports;
    std::vector<std::string> transports;
  };
  std::vector<Group> groups;
  for (const PortRule* rule : rules) {
    const std::string transport = rule->transport == Transport::Tcp ? "TCP" : "UDP";
    auto group = std::find_if(groups.begin(), groups.end(),
                              [&](const Group& g) { return g.ports == rule->ports; });
    if (group == groups.end()) {
      groups.push_back({rule->ports, {transport}});
    } else if (std::find(group->transports.begin(), group->transports.end(), transport) ==
               group->transports.end()) {
      group->transports.push_back(transport);
    }
  }
  std::vector<std::string> phrases;
  bool pairs = false;
  for (const Group& group : groups) {
    phrases.push_back(joinAnd(group.transports) + " " + portText(group.ports));
    pairs = pairs || group.transports.size() > 1;
  }
  // "TCP 443 and TCP 80", but "TCP and UDP 5349, UDP 49152-65535": one "and" per phrase.
  if (!pairs) return joinAnd(phrases);
  std::string text;
  for (const auto& phrase : phrases)
    text += (text.empty() ? "" : ", ") + phrase;
  return text;
}

}  // namespace

std::string levelPorts(const Contract& contract, Level level) {
  std::vector<const PortRule*> rules;
  for (const PortRule& rule : contract.ports) {
    if (rule.level == level) rules.push_back(&rule);
  }
  return portsPhrase(rules);
}

std::string proxyPorts(const Contract& contract) {
  std::vector<std::string> phrases;
  for (const PortRule& rule : contract.ports) {
    if (!rule.throughProxy) continue;
    std::string protocols;
    for (const auto& protocol : rule.protocols)
      protocols += (protocols.empty() ? "" : ", ") + protocol;
    phrases.push_back(fmt::format("{} {} ({})", rule.transport == Transport::Tcp ? "TCP" : "UDP",
                                  portText(rule.ports), protocols));
  }
  return joinAnd(phrases);
}

std::string subject(const Contract& contract) {
  return contract.deployment.domain.empty() ? contract.deployment.url : contract.deployment.domain;
}

}  // namespace detail

std::string render(const Contract& contract, Format format) {
  switch (format) {
    case Format::Markdown:
      return detail::renderMarkdown(contract);
    case Format::Json:
      return detail::renderJson(contract);
    case Format::Nft:
      return detail::renderNft(contract);
    case Format::Pac:
      return detail::renderPac(contract);
    case Format::Squid:
      return detail::renderSquid(contract);
    case Format::Html:
      return detail::renderHtml(contract);
  }
  return detail::renderMarkdown(contract);
}

std::string htmlContentSecurityPolicy() {
  // CSP level 2 hash source: base64 of the SHA-256 of the <style> element's text.
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  EVP_Digest(detail::kHtmlStyle.data(), detail::kHtmlStyle.size(), digest, &length, EVP_sha256(),
             nullptr);
  std::string base64(4 * ((length + 2) / 3) + 1, '\0');
  const int written = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(base64.data()), digest,
                                      static_cast<int>(length));
  base64.resize(static_cast<std::size_t>(std::max(written, 0)));
  return "default-src 'none'; style-src 'sha256-" + base64 +
         "'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";
}

}  // namespace parley::requirements
