#include <iostream>
#include <string>
#include <vector>

#include <parley/config/config.hpp>

#include "commands.hpp"

namespace parley::app {

void addConfigFlags(CLI::App& command, ConfigFlags& flags) {
  command
      .add_option("--config", flags.configFile,
                  "Config file (default: $PARLEY_CONFIG, else ./parley.toml if it exists, "
                  "else built-in defaults)")
      ->type_name("FILE");
  command
      .add_option("--set", flags.sets,
                  "Override a config key with a TOML value, e.g. stun.port=3479 or "
                  "stun.listen='[\"::1\"]'; repeatable, later wins")
      ->type_name("KEY=VALUE")
      ->allow_extra_args(false);
  command.add_option("--listen", flags.listen, "Address to bind, repeatable; replaces stun.listen")
      ->type_name("ADDR")
      ->allow_extra_args(false);
  command.add_option("--stun-port", flags.stunPort, "Same as --set stun.port=N")->type_name("N");
  command
      .add_option("--alternate-address", flags.alternateAddress,
                  "Same as --set stun.alternate_address=ADDR (RFC 5780)")
      ->type_name("ADDR");
  command.add_option("--threads", flags.threads, "Same as --set server.threads=N")->type_name("N");
  command.add_option("--log-level", flags.logLevel, "Same as --set log.level=L")
      ->type_name("trace|debug|info|warn|error|off");
  command.add_option("--log-format", flags.logFormat, "Same as --set log.format=F")
      ->type_name("text|json");
  command
      .add_option("--data-dir", flags.dataDir,
                  "Same as --set server.data_dir=DIR (generated certificate and TURN secret)")
      ->type_name("DIR");
  command
      .add_option("--relay-address", flags.relayAddresses,
                  "Same as --set turn.relay_address=ADDR (an IPv6 ADDR sets "
                  "turn.relay_address_v6); repeatable, one per family")
      ->type_name("ADDR")
      ->allow_extra_args(false);
  command
      .add_option("--external-address", flags.externalAddresses,
                  "Same as --set turn.external_address=ADDR (an IPv6 ADDR sets "
                  "turn.external_address_v6); repeatable, one per family")
      ->type_name("ADDR")
      ->allow_extra_args(false);
  command
      .add_option("--turn-user", flags.turnUsers,
                  "TURN long-term user, repeatable; all of them together replace turn.users "
                  "(visible in the process list: prefer the config file)")
      ->type_name("NAME:PASSWORD")
      ->allow_extra_args(false);
  command
      .add_option("--turn-secret", flags.turnSecrets,
                  "TURN REST API shared secret, repeatable; all of them together replace "
                  "turn.secrets (visible in the process list: prefer the config file)")
      ->type_name("SECRET")
      ->allow_extra_args(false);
  command
      .add_option("--allow-peer", flags.allowPeers,
                  "Peer address range the relay may reach despite the built-in deny list, "
                  "repeatable; all of them together replace turn.allowed_peers")
      ->type_name("CIDR")
      ->allow_extra_args(false);
  command.add_option("--tls-port", flags.tlsPort, "Same as --set tls.port=N")->type_name("N");
  command.add_flag("--no-tls", flags.noTls, "Same as --set tls.enabled=false --set tls.dtls=false");
  command.add_option("--https-port", flags.httpsPort, "Same as --set web.https_port=N")
      ->type_name("N");
  command.add_option("--http-port", flags.httpPort, "Same as --set web.http_port=N")
      ->type_name("N");
  command.add_option("--public-url", flags.publicUrl, "Same as --set web.public_url=URL")
      ->type_name("URL");
}

namespace {

std::string tomlArray(const std::vector<std::string>& values) {
  std::string list;
  for (const auto& value : values) {
    if (!list.empty()) list += ", ";
    list += config::tomlQuote(value);
  }
  return "[" + list + "]";
}

// "NAME:PASSWORD" as an inline table; without a colon the password is left out, so the config
// reports it missing (and never the text itself).
std::string userTable(const std::string& user) {
  const auto colon = user.find(':');
  if (colon == std::string::npos) return "{ name = " + config::tomlQuote(user) + " }";
  return "{ name = " + config::tomlQuote(user.substr(0, colon)) +
         ", password = " + config::tomlQuote(user.substr(colon + 1)) + " }";
}

// IPv6 addresses (the ones with a colon) go to KEY_v6, the others to KEY.
void addressOverrides(std::vector<std::string>& overrides, const std::string& key,
                      const std::vector<std::string>& addresses) {
  for (const auto& address : addresses) {
    const bool v6 = address.find(':') != std::string::npos;
    overrides.push_back(key + (v6 ? "_v6=" : "=") + config::tomlQuote(address));
  }
}

}  // namespace

std::vector<std::string> toOverrides(const ConfigFlags& flags) {
  // Convenience flags become overrides so they are validated exactly like the file.
  std::vector<std::string> overrides = flags.sets;
  if (!flags.listen.empty()) overrides.push_back("stun.listen=" + tomlArray(flags.listen));
  if (!flags.stunPort.empty()) overrides.push_back("stun.port=" + flags.stunPort);
  if (!flags.alternateAddress.empty()) {
    overrides.push_back("stun.alternate_address=" + config::tomlQuote(flags.alternateAddress));
  }
  if (!flags.threads.empty()) overrides.push_back("server.threads=" + flags.threads);
  if (!flags.logLevel.empty())
    overrides.push_back("log.level=" + config::tomlQuote(flags.logLevel));
  if (!flags.logFormat.empty()) {
    overrides.push_back("log.format=" + config::tomlQuote(flags.logFormat));
  }
  if (!flags.dataDir.empty()) {
    overrides.push_back("server.data_dir=" + config::tomlQuote(flags.dataDir));
  }
  addressOverrides(overrides, "turn.relay_address", flags.relayAddresses);
  addressOverrides(overrides, "turn.external_address", flags.externalAddresses);
  if (!flags.turnUsers.empty()) {
    std::string tables;
    for (const auto& user : flags.turnUsers) {
      if (!tables.empty()) tables += ", ";
      tables += userTable(user);
    }
    overrides.push_back("turn.users=[" + tables + "]");
  }
  if (!flags.turnSecrets.empty()) {
    overrides.push_back("turn.secrets=" + tomlArray(flags.turnSecrets));
  }
  if (!flags.allowPeers.empty()) {
    overrides.push_back("turn.allowed_peers=" + tomlArray(flags.allowPeers));
  }
  if (!flags.tlsPort.empty()) overrides.push_back("tls.port=" + flags.tlsPort);
  if (flags.noTls) {
    overrides.push_back("tls.enabled=false");
    overrides.push_back("tls.dtls=false");
  }
  if (!flags.httpsPort.empty()) overrides.push_back("web.https_port=" + flags.httpsPort);
  if (!flags.httpPort.empty()) overrides.push_back("web.http_port=" + flags.httpPort);
  if (!flags.publicUrl.empty()) {
    overrides.push_back("web.public_url=" + config::tomlQuote(flags.publicUrl));
  }
  return overrides;
}

void printErrors(const config::ConfigErrors& errors) {
  for (const auto& error : errors.errors)
    std::cerr << "parley: " << error.toString() << '\n';
}

}  // namespace parley::app
