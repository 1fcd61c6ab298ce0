// Filled in by the probe protocol (docs/netcheck.md).
#include <parley/netcheck/probe.hpp>
