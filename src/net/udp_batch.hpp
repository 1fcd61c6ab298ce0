// recvmmsg/sendmmsg batches with buffers allocated once, and the IP_PKTINFO helpers that let
// a wildcard socket answer from the address a datagram reached.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <utility>

#include <netinet/in.h>
#include <sys/socket.h>

#include <parley/base/endpoint.hpp>

namespace parley::net {

inline constexpr std::size_t kBatch = 64;
// Large enough for ChannelData or a Send indication carrying a full-MTU media packet.
inline constexpr std::size_t kMaxDatagram = 4096;

using ControlBuffer = std::array<std::uint8_t, CMSG_SPACE(sizeof(in6_pktinfo))>;

void enablePacketInfo(int fd, bool v4);
// The local address a datagram was sent to, when the socket asked for packet info.
std::optional<IpAddress> packetDestination(const msghdr& header);
// Makes the kernel send from `source` rather than pick by route.
void setPacketSource(msghdr& header, ControlBuffer& control, const IpAddress& source);

// One batch's worth of datagram buffers and the headers recvmmsg/sendmmsg use, allocated once.
struct DatagramSlots {
  std::array<std::array<std::uint8_t, kMaxDatagram>, kBatch> buffers;
  std::array<sockaddr_storage, kBatch> peers;
  std::array<iovec, kBatch> iov;
  std::array<ControlBuffer, kBatch> control;
  std::array<mmsghdr, kBatch> messages;
};

class ReceiveBatch {
 public:
  ReceiveBatch();
  // Up to kBatch datagrams in one system call; 0 when none is queued.
  std::size_t receive(int fd);
  std::span<const std::uint8_t> payload(std::size_t i) const {
    return {slots_.buffers[i].data(), slots_.messages[i].msg_len};
  }
  bool truncated(std::size_t i) const {
    return (slots_.messages[i].msg_hdr.msg_flags & MSG_TRUNC) != 0;
  }
  const sockaddr_storage& peer(std::size_t i) const { return slots_.peers[i]; }
  socklen_t peerLength(std::size_t i) const { return slots_.messages[i].msg_hdr.msg_namelen; }
  std::optional<IpAddress> destination(std::size_t i) const {
    return packetDestination(slots_.messages[i].msg_hdr);
  }

 private:
  DatagramSlots slots_;
  std::size_t used_ = 0;
};

class SendBatch {
 public:
  // The buffer for the next datagram; commit() makes it part of the batch.
  std::span<std::uint8_t> next() { return slots_.buffers[count_]; }
  void commit(std::size_t length, const sockaddr_storage& peer, socklen_t peerLength,
              const std::optional<IpAddress>& source);
  // Copies `bytes` in as the next datagram (false if too large: nothing is queued).
  bool add(std::span<const std::uint8_t> bytes, const sockaddr_storage& peer, socklen_t peerLength,
           const std::optional<IpAddress>& source);
  bool full() const { return count_ == kBatch; }
  bool empty() const { return count_ == 0; }
  std::size_t size() const { return count_; }
  // Sends all queued datagrams; returns {sent, dropped}.
  std::pair<std::size_t, std::size_t> flush(int fd);

 private:
  DatagramSlots slots_;
  std::size_t count_ = 0;
};

}  // namespace parley::net
