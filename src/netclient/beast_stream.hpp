// Private: a netclient::Stream as the synchronous stream Boost.Beast reads and writes (its
// SyncReadStream / SyncWriteStream concepts), with one deadline for every operation, so Beast's
// HTTP parser and WebSocket framing run over TCP, TLS or a proxy tunnel alike.
#pragma once

#include <optional>

#include <boost/asio/buffer.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/core/role.hpp>
#include <boost/system/system_error.hpp>

#include <parley/netclient/transport.hpp>

namespace parley::netclient::detail {

class BeastStream {
 public:
  // Beast's WebSocket stream asks for an executor (for timers it never arms in synchronous
  // use); this one has its own idle context.
  using executor_type = boost::asio::io_context::executor_type;

  BeastStream(Stream& stream, Deadline deadline) : stream_(stream), deadline_(deadline) {}

  executor_type get_executor() { return context_.get_executor(); }

  // Why the last operation failed, in the check's terms; nullopt when it did not.
  const std::optional<Failure>& failure() const { return failure_; }

  template <typename MutableBufferSequence>
  std::size_t read_some(const MutableBufferSequence& buffers, boost::system::error_code& ec) {
    for (auto it = boost::asio::buffer_sequence_begin(buffers);
         it != boost::asio::buffer_sequence_end(buffers); ++it) {
      const boost::asio::mutable_buffer buffer = *it;
      if (buffer.size() == 0) continue;
      const auto read = stream_.readSome(
          std::span<std::uint8_t>(static_cast<std::uint8_t*>(buffer.data()), buffer.size()),
          deadline_);
      if (!read) return fail(read.error(), ec);
      if (*read == 0) {
        ec = boost::asio::error::eof;
        return 0;
      }
      ec = {};
      return *read;
    }
    ec = {};
    return 0;
  }

  template <typename ConstBufferSequence>
  std::size_t write_some(const ConstBufferSequence& buffers, boost::system::error_code& ec) {
    for (auto it = boost::asio::buffer_sequence_begin(buffers);
         it != boost::asio::buffer_sequence_end(buffers); ++it) {
      const boost::asio::const_buffer buffer = *it;
      if (buffer.size() == 0) continue;
      const auto written =
          stream_.writeAll(std::span<const std::uint8_t>(
                               static_cast<const std::uint8_t*>(buffer.data()), buffer.size()),
                           deadline_);
      if (!written) return fail(written.error(), ec);
      ec = {};
      return buffer.size();
    }
    ec = {};
    return 0;
  }

  template <typename MutableBufferSequence>
  std::size_t read_some(const MutableBufferSequence& buffers) {
    boost::system::error_code ec;
    const std::size_t n = read_some(buffers, ec);
    if (ec) throw boost::system::system_error(ec);
    return n;
  }

  template <typename ConstBufferSequence>
  std::size_t write_some(const ConstBufferSequence& buffers) {
    boost::system::error_code ec;
    const std::size_t n = write_some(buffers, ec);
    if (ec) throw boost::system::system_error(ec);
    return n;
  }

 private:
  std::size_t fail(const Failure& failure, boost::system::error_code& ec) {
    failure_ = failure;
    ec = failure.code == "timeout"
             ? boost::system::error_code(boost::beast::error::timeout)
             : boost::system::error_code(boost::asio::error::connection_reset);
    return 0;
  }

  boost::asio::io_context context_{1};
  Stream& stream_;
  Deadline deadline_;
  std::optional<Failure> failure_;
};

// The WebSocket closing handshake's last step: the caller destroys the stream, which closes it.
inline void teardown(boost::beast::role_type, BeastStream&, boost::system::error_code& ec) {
  ec = {};
}

}  // namespace parley::netclient::detail
