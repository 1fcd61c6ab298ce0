// Filled in by the netcheck model (docs/netcheck.md).
#include <parley/netcheck/report.hpp>
