// parley requirements: the deployment's network contract from its config (docs/requirements.md),
// and the one place the config becomes a requirements::Deployment (serve publishes the same).
#include <chrono>
#include <iostream>
#include <memory>

#include <parley/config/config.hpp>
#include <parley/requirements/requirements.hpp>

#include "commands.hpp"

namespace parley::app {

namespace {

requirements::Role toRole(config::NodeRole role) {
  switch (role) {
    case config::NodeRole::Main:
      return requirements::Role::Main;
    case config::NodeRole::Failover:
      return requirements::Role::Failover;
    case config::NodeRole::Turn:
      return requirements::Role::Turn;
    case config::NodeRole::Media:
      return requirements::Role::Media;
  }
  return requirements::Role::Main;
}

int printRequirements(const ConfigFlags& flags, requirements::Format format, bool timestamp) {
  const auto file = config::resolveConfigPath(
      flags.configFile.empty() ? std::nullopt
                               : std::optional<std::filesystem::path>(flags.configFile));
  const auto config = config::loadConfig(file, toOverrides(flags));
  if (!config) {
    printErrors(config.error());
    return kExitUsage;
  }
  requirements::Deployment deployment = toRequirementsDeployment(*config);
  if (timestamp) {
    deployment.generatedAt = std::chrono::duration_cast<std::chrono::seconds>(
                                 std::chrono::system_clock::now().time_since_epoch())
                                 .count();
  }
  const requirements::Contract contract = requirements::buildContract(deployment);
  // Also on stderr, so they are seen when the output goes to a file.
  for (const auto& warning : contract.warnings)
    std::cerr << "parley: warning: " << warning << '\n';
  std::cout << requirements::render(contract, format);
  return kExitOk;
}

}  // namespace

// The port browsers use for HTTPS: the public URL's (a load balancer may map it), else 443.
std::uint16_t publicHttpsPort(const std::string& url) {
  std::string_view rest = url;
  rest.remove_prefix(std::min(rest.size(), std::string_view("https://").size()));
  if (rest.starts_with('[')) {
    const auto close = rest.find(']');
    rest.remove_prefix(close == std::string_view::npos ? rest.size() : close + 1);
  }
  const auto colon = rest.find(':');
  if (colon == std::string_view::npos) return 443;
  unsigned port = 0;
  for (const char c : rest.substr(colon + 1)) {
    if (c < '0' || c > '9' || port > 65535) break;
    port = port * 10 + static_cast<unsigned>(c - '0');
  }
  return port == 0 || port > 65535 ? 443 : static_cast<std::uint16_t>(port);
}

requirements::Deployment toRequirementsDeployment(const config::Config& config) {
  requirements::Deployment d;
  d.url = config.publicUrl();
  d.domain = config.deploymentDomain();
  d.organisation = config.deployment.organisation;
  d.contact = config.deployment.contact;
  d.httpsPort = publicHttpsPort(d.url);
  if (config.web.httpRedirect) {
    d.httpPort = config.web.httpPort;
  } else {
    d.httpPort.reset();
  }
  d.stunPort = config.stun.port;
  d.stunUdp = config.stun.udp;
  d.stunTcp = config.stun.tcp;
  d.turn = config.turn.enabled;
  d.turnOverHttps = config.web.turnOverHttps;
  d.tlsPort = config.tls.port;
  d.tls = config.tls.enabled;
  d.dtls = config.tls.dtls;
  d.relayPorts = {config.turn.relayPortMin, config.turn.relayPortMax};
  // The media server does not exist yet: d.mediaPorts stays empty.
  for (const auto& node : config.deployment.nodes) {
    requirements::Node out{node.name, toRole(node.role), node.region, {}, false};
    for (const auto& range : node.addresses)
      out.addresses.push_back(Cidr{range.network, range.prefixLength});
    d.nodes.push_back(std::move(out));
  }
  if (d.nodes.empty()) {
    requirements::KnownAddresses known;
    for (const auto& address : {config.turn.externalAddress, config.turn.externalAddressV6}) {
      if (address) known.external.push_back(*address);
    }
    if (config.turn.enabled) {
      for (const auto& address : {config.relayAddressV4(), config.turn.relayAddressV6}) {
        if (address) known.relay.push_back(*address);
      }
    }
    known.listen = config.stun.listen;
    known.listen.insert(known.listen.end(), config.web.listen.begin(), config.web.listen.end());
    d.nodes.push_back(requirements::deriveMainNode(known));
  }
  return d;
}

void addRequirementsCommand(CLI::App& app, Action& run) {
  CLI::App* command = app.add_subcommand(
      "requirements",
      "Print the deployment's network requirements (ports, addresses, domain, bandwidth) from "
      "its config: the page to publish for customers' IT, or rules for their firewall and proxy");
  auto flags = std::make_shared<ConfigFlags>();
  addConfigFlags(*command, *flags);
  auto format = std::make_shared<std::string>("markdown");
  command
      ->add_option("--format", *format,
                   "markdown (the page to publish), html (the same as a web page), json "
                   "(docs/requirements.schema.json), nft (nftables ruleset for the customer's "
                   "egress), pac (proxy auto-config), squid (ACLs to include)")
      ->check(CLI::IsMember({"markdown", "html", "json", "nft", "pac", "squid"}))
      ->type_name("FORMAT");
  auto timestamp = std::make_shared<bool>(false);
  command->add_flag("--timestamp", *timestamp,
                    "Say when it was generated (left out by default, so the output only changes "
                    "when the config does)");
  command->callback([&run, flags, format, timestamp] {
    run = [flags, format, timestamp] {
      return printRequirements(*flags, *requirements::parseFormat(*format), *timestamp);
    };
  });
}

}  // namespace parley::app
