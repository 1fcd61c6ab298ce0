#include "udp_batch.hpp"
#include <cerrno>
#include <cstring>

namespace parley::net {

void enablePacketInfo(int fd, bool v4) {
  const int on = 1;
  if (v4) {
    ::setsockopt(fd, IPPROTO_IP, IP_PKTINFO, &on, sizeof on);
  } else {
    ::setsockopt(fd, IPPROTO_IPV6, IPV6_RECVPKTINFO, &on, sizeof on);
  }
}

std::optional<IpAddress> packetDestination(const msghdr& header) {
  if (header.msg_controllen == 0) return std::nullopt;
  for (cmsghdr* c = CMSG_FIRSTHDR(const_cast<msghdr*>(&header)); c != nullptr;
       c = CMSG_NXTHDR(const_cast<msghdr*>(&header), c)) {
    if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_PKTINFO) {
      in_pktinfo info;
      std::memcpy(&info, CMSG_DATA(c), sizeof info);
      return IpAddress::v4(std::span<const std::uint8_t, 4>(
          reinterpret_cast<const std::uint8_t*>(&info.ipi_addr), 4));
    }
    if (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_PKTINFO) {
      in6_pktinfo info;
      std::memcpy(&info, CMSG_DATA(c), sizeof info);
      return IpAddress::v6(std::span<const std::uint8_t, 16>(
          reinterpret_cast<const std::uint8_t*>(&info.ipi6_addr), 16));
    }
  }
  return std::nullopt;
}

void setPacketSource(msghdr& header, ControlBuffer& control, const IpAddress& source) {
  control.fill(0);
  header.msg_control = control.data();
  cmsghdr* c = reinterpret_cast<cmsghdr*>(control.data());
  if (source.isV4()) {
    header.msg_controllen = CMSG_SPACE(sizeof(in_pktinfo));
    c->cmsg_level = IPPROTO_IP;
    c->cmsg_type = IP_PKTINFO;
    c->cmsg_len = CMSG_LEN(sizeof(in_pktinfo));
    in_pktinfo info{};
    std::memcpy(&info.ipi_spec_dst, source.bytes().data(), 4);
    std::memcpy(CMSG_DATA(c), &info, sizeof info);
  } else {
    header.msg_controllen = CMSG_SPACE(sizeof(in6_pktinfo));
    c->cmsg_level = IPPROTO_IPV6;
    c->cmsg_type = IPV6_PKTINFO;
    c->cmsg_len = CMSG_LEN(sizeof(in6_pktinfo));
    in6_pktinfo info{};
    std::memcpy(&info.ipi6_addr, source.bytes().data(), 16);
    std::memcpy(CMSG_DATA(c), &info, sizeof info);
  }
}

ReceiveBatch::ReceiveBatch() {
  for (std::size_t i = 0; i < kBatch; ++i) {
    slots_.iov[i] = {slots_.buffers[i].data(), slots_.buffers[i].size()};
    msghdr& header = slots_.messages[i].msg_hdr;
    header = msghdr{};
    header.msg_name = &slots_.peers[i];
    header.msg_namelen = sizeof(sockaddr_storage);
    header.msg_iov = &slots_.iov[i];
    header.msg_iovlen = 1;
    header.msg_control = slots_.control[i].data();
    header.msg_controllen = slots_.control[i].size();
  }
}

std::size_t ReceiveBatch::receive(int fd) {
  // recvmmsg overwrites only the name and control lengths of the entries it filled; restore
  // just those instead of rewriting all 64 headers on every call.
  for (std::size_t i = 0; i < used_; ++i) {
    slots_.messages[i].msg_hdr.msg_namelen = sizeof(sockaddr_storage);
    slots_.messages[i].msg_hdr.msg_controllen = slots_.control[i].size();
  }
  const int received = ::recvmmsg(fd, slots_.messages.data(), kBatch, MSG_DONTWAIT, nullptr);
  used_ = received > 0 ? static_cast<std::size_t>(received) : 0;
  return used_;
}

void SendBatch::commit(std::size_t length, const sockaddr_storage& peer, socklen_t peerLength,
                       const std::optional<IpAddress>& source) {
  const std::size_t i = count_++;
  std::memcpy(&slots_.peers[i], &peer, peerLength);
  slots_.iov[i] = {slots_.buffers[i].data(), length};
  msghdr& header = slots_.messages[i].msg_hdr;
  header = msghdr{};
  header.msg_name = &slots_.peers[i];
  header.msg_namelen = peerLength;
  header.msg_iov = &slots_.iov[i];
  header.msg_iovlen = 1;
  if (source) setPacketSource(header, slots_.control[i], *source);
}

bool SendBatch::add(std::span<const std::uint8_t> bytes, const sockaddr_storage& peer,
                    socklen_t peerLength, const std::optional<IpAddress>& source) {
  if (bytes.size() > kMaxDatagram) return false;
  std::memcpy(slots_.buffers[count_].data(), bytes.data(), bytes.size());
  commit(bytes.size(), peer, peerLength, source);
  return true;
}

std::pair<std::size_t, std::size_t> SendBatch::flush(int fd) {
  std::size_t sent = 0;
  std::size_t dropped = 0;
  std::size_t done = 0;
  while (done < count_) {
    const int n =
        ::sendmmsg(fd, slots_.messages.data() + done, static_cast<unsigned>(count_ - done), 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      // Buffer full or the destination unreachable: UDP may lose it; skip that one datagram.
      ++dropped;
      ++done;
      continue;
    }
    sent += static_cast<std::size_t>(n);
    done += static_cast<std::size_t>(n);
  }
  count_ = 0;
  return {sent, dropped};
}

}  // namespace parley::net
