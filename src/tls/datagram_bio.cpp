#include "datagram_bio.hpp"
#include <algorithm>
#include <cstring>

#include "output_writer.hpp"

namespace parley::tls::detail {
namespace {

DatagramChannel* channelOf(BIO* bio) {
  return static_cast<DatagramChannel*>(BIO_get_data(bio));
}

int writeDatagram(BIO* bio, const char* data, int size) {
  BIO_clear_retry_flags(bio);
  DatagramChannel* channel = channelOf(bio);
  if (!channel || size < 0) return -1;
  if (!channel->out) {
    ++channel->writesDropped;  // like a lost UDP datagram; DTLS retransmits
    return size;
  }
  OutputWriter::addDatagram(
      *channel->out, channel->peer,
      {reinterpret_cast<const std::uint8_t*>(data), static_cast<std::size_t>(size)});
  return size;
}

int readDatagram(BIO* bio, char* data, int size) {
  BIO_clear_retry_flags(bio);
  DatagramChannel* channel = channelOf(bio);
  if (!channel || size < 0) return -1;
  if (channel->input.empty()) {
    BIO_set_retry_read(bio);
    return -1;
  }
  // Datagram semantics: what does not fit is lost, never read as the start of another.
  const std::size_t n = std::min(channel->input.size(), static_cast<std::size_t>(size));
  std::memcpy(data, channel->input.data(), n);
  channel->input = {};
  return static_cast<int>(n);
}

long control(BIO* bio, int command, long, void*) {
  DatagramChannel* channel = channelOf(bio);
  switch (command) {
    case BIO_CTRL_FLUSH:
      return 1;
    case BIO_CTRL_PENDING:
      return channel ? static_cast<long>(channel->input.size()) : 0;
    case BIO_CTRL_WPENDING:
      return 0;
    // Datagram BIO controls DTLS uses: accepted and ignored. The MTU is set on the SSL
    // (SSL_OP_NO_QUERY_MTU), the peer is the channel's, timers run on the server's tick.
    case BIO_CTRL_DGRAM_SET_CONNECTED:
    case BIO_CTRL_DGRAM_SET_PEER:
    case BIO_CTRL_DGRAM_SET_NEXT_TIMEOUT:
      return 1;
    default:
      return 0;  // includes DGRAM_GET_PEER (cookies use the channel's peer), QUERY_MTU
  }
}

int create(BIO* bio) {
  BIO_set_init(bio, 1);
  return 1;
}

const BIO_METHOD* method() {
  // Built once, never freed: the SSLs using it live until exit in the worst case.
  static BIO_METHOD* const instance = [] {
    BIO_METHOD* m =
        BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "parley datagram channel");
    if (m) {
      BIO_meth_set_write(m, writeDatagram);
      BIO_meth_set_read(m, readDatagram);
      BIO_meth_set_ctrl(m, control);
      BIO_meth_set_create(m, create);
    }
    return m;
  }();
  return instance;
}

}  // namespace

BIO* newDatagramBio(DatagramChannel* channel) {
  const BIO_METHOD* m = method();
  if (!m) return nullptr;
  BIO* bio = BIO_new(m);
  if (bio) BIO_set_data(bio, channel);
  return bio;
}

}  // namespace parley::tls::detail
