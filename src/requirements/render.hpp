// Inside the requirements library: one renderer per format and what they share.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <parley/requirements/requirements.hpp>

namespace parley::requirements::detail {

std::string renderMarkdown(const Contract& contract);
std::string renderHtml(const Contract& contract);
std::string renderJson(const Contract& contract);
std::string renderNft(const Contract& contract);
std::string renderPac(const Contract& contract);
std::string renderSquid(const Contract& contract);

// The HTML page's only style, inline; its hash goes into htmlContentSecurityPolicy().
extern const std::string_view kHtmlStyle;

// "2026-11-24T13:45:01Z".
std::string rfc3339(std::int64_t unixSeconds);
// "443" or "49152-65535".
std::string portText(PortRange ports);
// The published addresses of the nodes whose role is in `roles`, merged (mergeRanges).
std::vector<Cidr> addressesOf(const Contract& contract, const std::vector<Role>& roles);
// Every published address of every node, merged.
std::vector<Cidr> allAddresses(const Contract& contract);
// The ports of one level for a sentence: "TCP 443 and TCP 80", "UDP and TCP 3478".
std::string levelPorts(const Contract& contract, Level level);
// The rules that may pass an HTTP proxy: "TCP 443 (HTTPS, WSS) and TCP 80 (HTTP)".
std::string proxyPorts(const Contract& contract);
// "a, b and c".
std::string joinAnd(const std::vector<std::string>& items);
// What the contract is for, in one phrase: the domain, else the URL.
std::string subject(const Contract& contract);

}  // namespace parley::requirements::detail
