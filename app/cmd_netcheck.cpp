// parley netcheck URL: placeholder until the check runner lands (docs/netcheck.md).
#include "commands.hpp"

namespace parley::app {

void addNetcheckCommand(CLI::App& app, Action& run) {
  (void)app;
  (void)run;
}

}  // namespace parley::app
