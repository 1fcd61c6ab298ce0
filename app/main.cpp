// parley: the one binary. Parses the command line, then runs the chosen subcommand; all real
// work lives in the libraries under src/.
#include <exception>
#include <iostream>
#include <string>

#include <CLI/CLI.hpp>

#include <parley/version.hpp>

#include "commands.hpp"

int main(int argc, char** argv) {
  CLI::App app{"Parley: a self-hosted video-consultation platform.", "parley"};
  app.set_version_flag("--version", std::string("parley ") + parley::kVersion,
                       "Print the version and exit");
  app.require_subcommand(1);
  app.footer("Run 'parley COMMAND --help' for the options of a command. See docs/config.md.");

  parley::app::Action run;
  parley::app::addServeCommands(app, run);
  parley::app::addConfigCommand(app, run);
  parley::app::addAdminCommands(app, run);
  parley::app::addRequirementsCommand(app, run);
  parley::app::addNetcheckCommand(app, run);
  const CLI::App* netcheck = app.get_subcommand("netcheck");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& error) {
    // --help and --version exit 0; every usage error exits 2 whatever CLI11's own code is,
    // except netcheck's, whose 0-2 are grades (docs/netcheck.md): its usage errors exit 3.
    if (app.exit(error) == 0) return parley::app::kExitOk;
    return netcheck->parsed() ? parley::app::kExitNetcheckUsage : parley::app::kExitUsage;
  }
  // The start-up error boundary: anything thrown past a command is reported, not a crash.
  try {
    return run();
  } catch (const std::exception& error) {
    std::cerr << "parley: " << error.what() << '\n';
    return parley::app::kExitRuntime;
  }
}
