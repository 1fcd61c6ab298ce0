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
}

std::vector<std::string> toOverrides(const ConfigFlags& flags) {
  // Convenience flags become overrides so they are validated exactly like the file.
  std::vector<std::string> overrides = flags.sets;
  if (!flags.listen.empty()) {
    std::string list;
    for (const auto& address : flags.listen) {
      if (!list.empty()) list += ", ";
      list += config::tomlQuote(address);
    }
    overrides.push_back("stun.listen=[" + list + "]");
  }
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
  return overrides;
}

void printErrors(const config::ConfigErrors& errors) {
  for (const auto& error : errors.errors)
    std::cerr << "parley: " << error.toString() << '\n';
}

}  // namespace parley::app
