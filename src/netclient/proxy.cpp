// HTTP proxies as the network check uses them.
#include <fmt/format.h>

#include <parley/netclient/transport.hpp>

namespace parley::netclient {

std::string Proxy::display() const {
  return host.find(':') != std::string::npos ? fmt::format("[{}]:{}", host, port)
                                             : fmt::format("{}:{}", host, port);
}

}  // namespace parley::netclient
