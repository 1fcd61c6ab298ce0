// parley config check / parley config print.
#include <iostream>
#include <memory>

#include <parley/config/config.hpp>

#include "commands.hpp"

namespace parley::app {
namespace {

int checkConfig(const std::string& file) {
  const auto config = config::loadConfig(std::filesystem::path(file), {});
  if (!config) {
    printErrors(config.error());
    return kExitUsage;
  }
  std::cout << file << ": ok\n";
  return kExitOk;
}

int printConfig(const ConfigFlags& flags) {
  const auto file = config::resolveConfigPath(
      flags.configFile.empty() ? std::nullopt
                               : std::optional<std::filesystem::path>(flags.configFile));
  const auto config = config::loadConfig(file, toOverrides(flags));
  if (!config) {
    printErrors(config.error());
    return kExitUsage;
  }
  std::cout << config::toToml(*config);
  return kExitOk;
}

}  // namespace

void addConfigCommand(CLI::App& app, Action& run) {
  CLI::App* command = app.add_subcommand("config", "Check or print configuration");
  command->require_subcommand(1);

  CLI::App* check = command->add_subcommand(
      "check", "Validate a config file: prints 'FILE: ok' (exit 0) or every problem (exit 2)");
  auto file = std::make_shared<std::string>();
  check->add_option("FILE", *file, "The TOML config file to check")->required();
  check->callback([&run, file] { run = [file] { return checkConfig(*file); }; });

  CLI::App* print = command->add_subcommand(
      "print",
      "Print the complete effective config (file, then --set and convenience flags) as TOML");
  auto flags = std::make_shared<ConfigFlags>();
  addConfigFlags(*print, *flags);
  print->callback([&run, flags] { run = [flags] { return printConfig(*flags); }; });
}

}  // namespace parley::app
