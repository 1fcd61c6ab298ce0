// STUN Binding, RFC 5780 NAT behaviour discovery and a TURN allocation (RFC 8656) as the network
// check's client: blocking, with deadlines, over any MessageTransport. Messages are built and
// parsed with parley::stun; buffers are allocated once per transaction or allocation.
#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <openssl/rand.h>

#include <parley/netclient/media.hpp>
#include <parley/stun/builder.hpp>
#include <parley/stun/integrity.hpp>
#include <parley/stun/message.hpp>

#include "socket_util.hpp"

namespace parley::netclient {
namespace {

using namespace std::chrono_literals;
using stun::MessageClass;

// RFC 8489 §6.2.1 starts at RTO = 500 ms (or less when the path is known to be quick); a check
// has seconds, not the 39.5 s of a full retransmission schedule, so start at 250 ms and double.
constexpr auto kFirstRetransmit = 250ms;
constexpr std::size_t kMaxMessage = 65'535 + 20;
// RFC 8656 §12: the first channel number of the range.
constexpr std::uint16_t kChannel = 0x4000;
// RFC 8656 §14.7: REQUESTED-TRANSPORT carries the IANA protocol number, 17 = UDP, then RFFU.
constexpr std::uint32_t kRequestedUdp = 17u << 24;

stun::TransactionId randomTransactionId() {
  stun::TransactionId id{};
  if (RAND_bytes(id.data(), static_cast<int>(id.size())) != 1) {
    // Unpredictability matters little for a check; uniqueness does.
    static std::uint64_t counter = 0;
    const auto now =
        static_cast<std::uint64_t>(Clock::now().time_since_epoch().count()) + ++counter;
    std::memcpy(id.data(), &now, sizeof now);
  }
  return id;
}

std::string errorText(const stun::Message& response) {
  const auto attribute = response.find(stun::attr::kErrorCode);
  if (!attribute) return "an error without ERROR-CODE";
  const auto value = stun::decodeErrorCode(*attribute);
  if (!value) return "a malformed ERROR-CODE";
  return fmt::format("{} {}", value->code, value->reason);
}

int errorCodeOf(const stun::Message& response) {
  const auto attribute = response.find(stun::attr::kErrorCode);
  if (!attribute) return 0;
  const auto value = stun::decodeErrorCode(*attribute);
  return value ? value->code : 0;
}

bool sameTransaction(const stun::Message& message, std::span<const std::uint8_t, 12> id) {
  return std::equal(id.begin(), id.end(), message.transactionId().begin());
}

// Sends `request` and waits for the response with its transaction ID and method, retransmitting
// on unreliable transports (RTO doubling) until the deadline. Other frames are skipped. The
// response's bytes are in `response` (a prefix of the given size).
Result<std::size_t> transact(MessageTransport& transport, stun::Bytes request,
                             std::span<std::uint8_t> response, Deadline deadline,
                             std::string_view what, Clock::time_point* lastSent = nullptr) {
  const auto requestMessage = stun::Message::parse(request);
  if (!requestMessage)
    return tl::unexpected(Failure{"protocol", fmt::format("could not build {}", what)});
  const auto method = requestMessage->method();
  const auto start = Clock::now();
  auto rto = std::chrono::duration_cast<Clock::duration>(kFirstRetransmit);
  Clock::time_point sentAt = start;
  if (auto sent = transport.send(request, deadline); !sent) return tl::unexpected(sent.error());
  if (lastSent != nullptr) *lastSent = sentAt;
  Clock::time_point retransmitAt = transport.reliable() ? deadline : start + rto;
  // Each pass receives (waiting at most until the next retransmission or the deadline).
  for (int pass = 0; pass < 10'000; ++pass) {
    auto got = transport.receive(response, std::min(retransmitAt, deadline));
    if (got) {
      const auto message = stun::Message::parse(response.first(*got));
      if (!message || message->method() != method ||
          !sameTransaction(*message, requestMessage->transactionId()) ||
          (message->messageClass() != MessageClass::SuccessResponse &&
           message->messageClass() != MessageClass::ErrorResponse))
        continue;
      return *got;
    }
    if (got.error().code != "timeout") return tl::unexpected(got.error());
    const auto now = Clock::now();
    if (now >= deadline)
      return tl::unexpected(Failure{
          "timeout",
          fmt::format("{}: no answer to {} within {} ms", transport.describe(), what,
                      std::chrono::duration_cast<std::chrono::milliseconds>(now - start).count())});
    if (!transport.reliable() && now >= retransmitAt) {
      if (auto sent = transport.send(request, deadline); !sent) return tl::unexpected(sent.error());
      sentAt = now;
      if (lastSent != nullptr) *lastSent = sentAt;
      rto *= 2;
      retransmitAt = now + rto;
    }
  }
  return tl::unexpected(
      Failure{"timeout", fmt::format("{}: no answer to {}", transport.describe(), what)});
}

struct BindingAnswer {
  Endpoint mapped;
  std::optional<Endpoint> otherAddress;
  std::optional<Endpoint> responseOrigin;
};

Result<BindingAnswer> readBindingAnswer(const stun::Message& response, std::string_view where) {
  if (response.messageClass() == MessageClass::ErrorResponse)
    return tl::unexpected(Failure{
        "protocol", fmt::format("{}: Binding answered with {}", where, errorText(response))});
  BindingAnswer answer;
  if (const auto xorMapped = response.find(stun::attr::kXorMappedAddress)) {
    auto mapped = response.decodeXorAddress(*xorMapped);
    if (!mapped)
      return tl::unexpected(
          Failure{"protocol", fmt::format("{}: malformed XOR-MAPPED-ADDRESS", where)});
    answer.mapped = *mapped;
  } else if (const auto plain = response.find(stun::attr::kMappedAddress)) {
    auto mapped = stun::Message::decodeAddress(*plain);
    if (!mapped)
      return tl::unexpected(
          Failure{"protocol", fmt::format("{}: malformed MAPPED-ADDRESS", where)});
    answer.mapped = *mapped;
  } else {
    return tl::unexpected(
        Failure{"protocol", fmt::format("{}: Binding answer without a mapped address", where)});
  }
  if (const auto other = response.find(stun::attr::kOtherAddress))
    if (auto decoded = stun::Message::decodeAddress(*other)) answer.otherAddress = *decoded;
  if (const auto origin = response.find(stun::attr::kResponseOrigin))
    if (auto decoded = stun::Message::decodeAddress(*origin)) answer.responseOrigin = *decoded;
  return answer;
}

Result<stun::Bytes> buildBinding(std::span<std::uint8_t> buffer, const stun::TransactionId& id,
                                 std::optional<std::uint32_t> change) {
  stun::MessageBuilder builder(
      buffer, stun::messageType(stun::method::kBinding, MessageClass::Request), id);
  if (change) builder.addUint32(stun::attr::kChangeRequest, *change);
  builder.addFingerprint();
  auto bytes = builder.finish();
  if (!bytes) return tl::unexpected(Failure{"protocol", "could not build a Binding request"});
  return *bytes;
}

// ---- RFC 5780 over one unconnected UDP socket ----

class NatProber {
 public:
  NatProber(detail::OwnedFd fd, Endpoint local) : fd_(std::move(fd)), local_(local) {}
  const Endpoint& local() const { return local_; }

  struct Answer {
    BindingAnswer binding;
    Endpoint from;
  };
  // A Binding to `to` (with CHANGE-REQUEST flags), retransmitted until `until`. nullopt when
  // nothing answered by then.
  Result<std::optional<Answer>> bind(const Endpoint& to, std::optional<std::uint32_t> change,
                                     Deadline until) {
    const stun::TransactionId id = randomTransactionId();
    std::array<std::uint8_t, 64> requestBuffer{};
    auto request = buildBinding(requestBuffer, id, change);
    if (!request) return tl::unexpected(request.error());
    sockaddr_storage target{};
    const socklen_t targetLength = detail::toSockaddr(to, target);
    auto rto = std::chrono::duration_cast<Clock::duration>(kFirstRetransmit);
    Clock::time_point retransmitAt = Clock::now();
    for (int pass = 0; pass < 10'000; ++pass) {
      const auto now = Clock::now();
      if (now >= until) return std::optional<Answer>{};
      if (now >= retransmitAt) {
        // A send error (ICMP from an earlier datagram, a full buffer) only costs this copy.
        (void)::sendto(fd_.get(), request->data(), request->size(), 0,
                       reinterpret_cast<const sockaddr*>(&target), targetLength);
        retransmitAt = now + rto;
        rto *= 2;
      }
      if (!detail::waitFor(fd_.get(), POLLIN, std::min(retransmitAt, until))) continue;
      sockaddr_storage from{};
      socklen_t fromLength = sizeof from;
      const ssize_t n = ::recvfrom(fd_.get(), buffer_.data(), buffer_.size(), 0,
                                   reinterpret_cast<sockaddr*>(&from), &fromLength);
      if (n <= 0) continue;
      const auto message =
          stun::Message::parse(stun::Bytes(buffer_.data(), static_cast<std::size_t>(n)));
      if (!message || !sameTransaction(*message, id) || message->method() != stun::method::kBinding)
        continue;
      auto answer = readBindingAnswer(*message, fmt::format("udp {}", to.toString()));
      if (!answer) return tl::unexpected(answer.error());
      const auto source = detail::fromSockaddr(from);
      return std::optional<Answer>(Answer{*answer, source.value_or(to)});
    }
    return std::optional<Answer>{};
  }

 private:
  detail::OwnedFd fd_;
  Endpoint local_;
  std::array<std::uint8_t, 1500> buffer_{};
};

// The local address the route to `server` uses (a connected UDP socket learns it; nothing is
// sent), then a socket bound to it: the mapped address can then be compared with ours.
Result<NatProber> openProber(const Endpoint& server) {
  auto probe = detail::connectedUdpSocket(server);
  if (!probe) return tl::unexpected(probe.error());
  const auto route = detail::localEndpointOf(probe->get());
  if (!route)
    return tl::unexpected(
        Failure{"unreachable", fmt::format("UDP {}: no local address for it", server.toString())});
  detail::OwnedFd fd = detail::openSocket(server.address.family(), SOCK_DGRAM);
  sockaddr_storage local{};
  const socklen_t length = detail::toSockaddr(Endpoint{route->address, 0}, local);
  if (!fd.valid() || ::bind(fd.get(), reinterpret_cast<const sockaddr*>(&local), length) != 0)
    return tl::unexpected(
        Failure{"unreachable", fmt::format("UDP {}: cannot bind a socket: {}", server.toString(),
                                           detail::errnoText(errno))});
  const auto bound = detail::localEndpointOf(fd.get());
  return NatProber(std::move(fd), bound.value_or(*route));
}

// ---- TURN ----

class TurnClient final : public TurnAllocation {
 public:
  TurnClient(std::unique_ptr<MessageTransport> transport, TurnCredentials credentials)
      : transport_(std::move(transport)),
        credentials_(std::move(credentials)),
        request_(2048),
        response_(kMaxMessage),
        frame_(kMaxMessage),
        outgoing_(4 + kMaxMessage + 4) {}

  ~TurnClient() override {
    if (!allocated_) return;
    // RFC 8656 §7: a Refresh with LIFETIME 0 deletes the allocation at once rather than when it
    // expires. Best effort: a short wait, failures ignored.
    (void)request(
        stun::method::kRefresh,
        [](stun::MessageBuilder& builder) { builder.addUint32(stun::attr::kLifetime, 0); },
        Clock::now() + 300ms, "Refresh");
  }

  Result<void> allocate(Deadline deadline) {
    auto response = request(
        stun::method::kAllocate,
        [](stun::MessageBuilder& builder) {
          builder.addUint32(stun::attr::kRequestedTransport, kRequestedUdp);
        },
        deadline, "Allocate");
    if (!response) return tl::unexpected(response.error());
    const auto relayed = response->find(stun::attr::kXorRelayedAddress);
    const auto mapped = response->find(stun::attr::kXorMappedAddress);
    auto relayedAddress = relayed ? response->decodeXorAddress(*relayed)
                                  : tl::unexpected(stun::DecodeError::WrongSize);
    if (!relayedAddress)
      return tl::unexpected(Failure{
          "protocol", fmt::format("{}: Allocate answer without XOR-RELAYED-ADDRESS", describe())});
    relayed_ = *relayedAddress;
    if (mapped)
      if (auto decoded = response->decodeXorAddress(*mapped)) mapped_ = *decoded;
    allocated_ = true;
    return {};
  }

  Endpoint relayed() const override { return relayed_; }
  Endpoint mapped() const override { return mapped_; }
  std::string describe() const override { return transport_->describe(); }
  bool reliable() const override { return transport_->reliable(); }

  Result<void> bindPeer(const Endpoint& peer, Deadline deadline) override {
    // RFC 8656 §9: a permission for the peer's IP; §12: a channel for its IP and port. A
    // ChannelBind installs the permission too, but an explicit CreatePermission tells apart
    // "this peer is forbidden" (403) from a channel problem.
    auto permission = request(
        stun::method::kCreatePermission,
        [&peer](stun::MessageBuilder& builder) {
          builder.addXorAddress(stun::attr::kXorPeerAddress, peer);
        },
        deadline, "CreatePermission");
    if (!permission) return tl::unexpected(permission.error());
    auto channel = request(
        stun::method::kChannelBind,
        [&peer](stun::MessageBuilder& builder) {
          builder.addUint32(stun::attr::kChannelNumber, std::uint32_t{kChannel} << 16)
              .addXorAddress(stun::attr::kXorPeerAddress, peer);
        },
        deadline, "ChannelBind");
    if (!channel) return tl::unexpected(channel.error());
    peer_ = peer;
    return {};
  }

  Result<void> sendToPeer(std::span<const std::uint8_t> data, Deadline deadline) override {
    if (!peer_)
      return tl::unexpected(Failure{"protocol", "no peer is bound to the allocation yet"});
    if (data.size() > kMaxMessage)
      return tl::unexpected(Failure{"protocol", "the data is too large for one ChannelData"});
    // RFC 8656 §12.4: channel number, length, data; over streams padded to 4 (§12.5).
    outgoing_[0] = static_cast<std::uint8_t>(kChannel >> 8);
    outgoing_[1] = static_cast<std::uint8_t>(kChannel & 0xFF);
    outgoing_[2] = static_cast<std::uint8_t>(data.size() >> 8);
    outgoing_[3] = static_cast<std::uint8_t>(data.size() & 0xFF);
    std::memcpy(outgoing_.data() + 4, data.data(), data.size());
    std::size_t size = 4 + data.size();
    if (transport_->reliable())
      while (size % 4 != 0)
        outgoing_[size++] = 0;
    return transport_->send(std::span<const std::uint8_t>(outgoing_.data(), size), deadline);
  }

  Result<std::size_t> receiveFromPeer(std::span<std::uint8_t> buffer, Deadline deadline) override {
    // Each pass takes one frame; frames that are not the peer's data are skipped.
    for (int pass = 0; pass < 100'000; ++pass) {
      auto got = transport_->receive(frame_, deadline);
      if (!got) return tl::unexpected(got.error());
      const std::span<const std::uint8_t> frame(frame_.data(), *got);
      if (frame.size() >= 4 && (frame[0] & 0xC0) == 0x40) {
        const auto channel = static_cast<std::uint16_t>(frame[0] << 8 | frame[1]);
        const std::size_t length = static_cast<std::size_t>(frame[2] << 8 | frame[3]);
        if (channel != kChannel || 4 + length > frame.size()) continue;
        if (length > buffer.size())
          return tl::unexpected(Failure{"protocol", "the peer's data does not fit the buffer"});
        std::memcpy(buffer.data(), frame.data() + 4, length);
        return length;
      }
      // RFC 8656 §11.6: a Data indication (before the channel was bound, or from a server
      // that prefers them).
      const auto message = stun::Message::parse(frame);
      if (!message || message->method() != stun::method::kData ||
          message->messageClass() != MessageClass::Indication)
        continue;
      const auto data = message->find(stun::attr::kData);
      if (!data) continue;
      if (data->value.size() > buffer.size())
        return tl::unexpected(Failure{"protocol", "the peer's data does not fit the buffer"});
      std::memcpy(buffer.data(), data->value.data(), data->value.size());
      return data->value.size();
    }
    return tl::unexpected(Failure{"timeout", fmt::format("{}: no data from the peer", describe())});
  }

 private:
  using Attributes = std::function<void(stun::MessageBuilder&)>;

  Result<stun::Bytes> build(std::uint16_t method, const Attributes& attributes) {
    const stun::TransactionId id = randomTransactionId();
    stun::MessageBuilder builder(request_, stun::messageType(method, MessageClass::Request), id);
    attributes(builder);
    if (key_) {
      // RFC 8489 §9.2.3: USERNAME, REALM, NONCE, then MESSAGE-INTEGRITY over all of it.
      builder.addText(stun::attr::kUsername, credentials_.username)
          .addText(stun::attr::kRealm, realm_)
          .addText(stun::attr::kNonce, nonce_)
          .addMessageIntegrity(*key_);
    }
    builder.addFingerprint();
    auto bytes = builder.finish();
    if (!bytes)
      return tl::unexpected(Failure{"protocol", "a TURN request does not fit its buffer"});
    return *bytes;
  }

  // A request with long-term credentials (RFC 8489 §9.2): the first 401 brings REALM and NONCE,
  // a 438 a fresh NONCE (retried once each); a 401 after credentials were sent is a refusal.
  Result<stun::Message> request(std::uint16_t method, const Attributes& attributes,
                                Deadline deadline, std::string_view what) {
    bool challenged = false;
    bool staleRetried = false;
    for (int attempt = 0; attempt < 4; ++attempt) {
      auto bytes = build(method, attributes);
      if (!bytes) return tl::unexpected(bytes.error());
      auto got = transact(*transport_, *bytes, response_, deadline, what);
      if (!got) return tl::unexpected(got.error());
      auto response = stun::Message::parse(stun::Bytes(response_.data(), *got));
      if (!response)
        return tl::unexpected(
            Failure{"protocol", fmt::format("{}: malformed answer to {}", describe(), what)});
      if (response->messageClass() == MessageClass::SuccessResponse) {
        if (key_ && stun::checkMessageIntegrity(*response, *key_) == stun::Check::Invalid)
          return tl::unexpected(Failure{
              "protocol", fmt::format("{}: the answer to {} carries a wrong MESSAGE-INTEGRITY",
                                      describe(), what)});
        return *response;
      }
      const int code = errorCodeOf(*response);
      if (code == stun::error::kUnauthenticated && !key_ && !challenged) {
        challenged = true;
        if (auto taken = takeChallenge(*response, what); !taken)
          return tl::unexpected(taken.error());
        continue;
      }
      if (code == stun::error::kStaleNonce && key_ && !staleRetried) {
        staleRetried = true;
        if (auto taken = takeChallenge(*response, what); !taken)
          return tl::unexpected(taken.error());
        continue;
      }
      if (code == stun::error::kUnauthenticated || code == stun::error::kWrongCredentials)
        return tl::unexpected(Failure{
            "auth_failed", fmt::format("{}: the TURN server refused the credentials of {} ({})",
                                       describe(), credentials_.username, errorText(*response))});
      if (code == stun::error::kAllocationQuotaReached ||
          code == stun::error::kInsufficientCapacity)
        return tl::unexpected(Failure{"rate_limited", fmt::format("{}: {} answered {}", describe(),
                                                                  what, errorText(*response))});
      return tl::unexpected(Failure{
          "protocol", fmt::format("{}: {} answered {}", describe(), what, errorText(*response))});
    }
    return tl::unexpected(
        Failure{"protocol", fmt::format("{}: {} kept being challenged", describe(), what)});
  }

  Result<void> takeChallenge(const stun::Message& response, std::string_view what) {
    const auto realm = response.find(stun::attr::kRealm);
    const auto nonce = response.find(stun::attr::kNonce);
    const auto realmText =
        realm ? stun::decodeText(*realm) : tl::unexpected(stun::DecodeError::WrongSize);
    const auto nonceText =
        nonce ? stun::decodeText(*nonce) : tl::unexpected(stun::DecodeError::WrongSize);
    if (!nonceText || (!realmText && realm_.empty()))
      return tl::unexpected(
          Failure{"protocol",
                  fmt::format("{}: {} was challenged without REALM and NONCE", describe(), what)});
    nonce_ = std::string(*nonceText);
    if (realmText) realm_ = std::string(*realmText);
    key_ = stun::longTermKeyMd5(credentials_.username, realm_, credentials_.password);
    if (!key_)
      return tl::unexpected(
          Failure{"auth_failed", "the TURN password is not valid for STUN (SASLprep rejects it)"});
    return {};
  }

  std::unique_ptr<MessageTransport> transport_;
  TurnCredentials credentials_;
  std::string realm_;
  std::string nonce_;
  std::optional<std::array<std::uint8_t, 16>> key_;
  Endpoint relayed_;
  Endpoint mapped_;
  std::optional<Endpoint> peer_;
  bool allocated_ = false;
  // Allocated once: requests, responses, frames from the server, outgoing ChannelData.
  std::vector<std::uint8_t> request_;
  std::vector<std::uint8_t> response_;
  std::vector<std::uint8_t> frame_;
  std::vector<std::uint8_t> outgoing_;
};

}  // namespace

Result<BindingOutcome> stunBinding(MessageTransport& transport, Deadline deadline) {
  const stun::TransactionId id = randomTransactionId();
  std::array<std::uint8_t, 64> requestBuffer{};
  auto request = buildBinding(requestBuffer, id, std::nullopt);
  if (!request) return tl::unexpected(request.error());
  std::vector<std::uint8_t> response(kMaxMessage);
  Clock::time_point sentAt{};
  auto got = transact(transport, *request, response, deadline, "the STUN Binding request", &sentAt);
  if (!got) return tl::unexpected(got.error());
  const auto rtt = Clock::now() - sentAt;
  const auto message = stun::Message::parse(stun::Bytes(response.data(), *got));
  if (!message) return tl::unexpected(Failure{"protocol", "malformed Binding answer"});
  auto answer = readBindingAnswer(*message, transport.describe());
  if (!answer) return tl::unexpected(answer.error());
  return BindingOutcome{answer->mapped, answer->otherAddress,
                        std::chrono::duration_cast<std::chrono::milliseconds>(rtt)};
}

Result<NatBehaviour> natBehaviour(const Endpoint& server, const Endpoint& otherAddress,
                                  Deadline deadline) {
  auto prober = openProber(server);
  if (!prober) return tl::unexpected(prober.error());
  const auto noAnswer = [&](std::string_view test, const Endpoint& to) {
    return Failure{"timeout", fmt::format("UDP {}: no answer to the RFC 5780 {} in time",
                                          to.toString(), test)};
  };

  NatBehaviour behaviour;
  // §4.3 test I: the mapped address from the primary address.
  auto first = prober->bind(server, std::nullopt, deadline);
  if (!first) return tl::unexpected(first.error());
  if (!*first) return tl::unexpected(noAnswer("mapping test I", server));
  const Endpoint mapped1 = (*first)->binding.mapped;
  if (mapped1 == prober->local()) {
    behaviour.mapping = "no-nat";
  } else {
    // Test II: the other IP address with the primary port.
    const Endpoint secondTarget{otherAddress.address, server.port};
    auto second = prober->bind(secondTarget, std::nullopt, deadline);
    if (!second) return tl::unexpected(second.error());
    if (!*second) return tl::unexpected(noAnswer("mapping test II", secondTarget));
    const Endpoint mapped2 = (*second)->binding.mapped;
    if (mapped2 == mapped1) {
      behaviour.mapping = "endpoint-independent";
    } else {
      // Test III: the other address and port.
      auto third = prober->bind(otherAddress, std::nullopt, deadline);
      if (!third) return tl::unexpected(third.error());
      if (!*third) return tl::unexpected(noAnswer("mapping test III", otherAddress));
      behaviour.mapping =
          (*third)->binding.mapped == mapped2 ? "address-dependent" : "address-and-port-dependent";
    }
  }

  // §4.4: no answer is the result here, so each test waits for a share of the time left (at
  // most 1.5 s: the responses travel the same path as test I's, which came back).
  const auto share = [&deadline] {
    const auto left = deadline - Clock::now();
    return Clock::now() + std::min<Clock::duration>(left / 2, 1500ms);
  };
  // Test II: CHANGE-REQUEST for another IP and port.
  const auto unsupported = [&server](const Failure& failure) {
    return Failure{failure.code,
                   fmt::format("UDP {}: the server does not support RFC 5780 CHANGE-REQUEST: {}",
                               server.toString(), failure.message)};
  };
  auto changed = prober->bind(server, stun::kChangeIp | stun::kChangePort, share());
  if (!changed) return tl::unexpected(unsupported(changed.error()));
  if (*changed) {
    const Endpoint& from = (*changed)->from;
    if (from.address == server.address || from.port == server.port)
      return tl::unexpected(Failure{
          "protocol", fmt::format("UDP {}: the server ignored CHANGE-REQUEST (answered from {})",
                                  server.toString(), from.toString())});
    behaviour.filtering = "endpoint-independent";
    return behaviour;
  }
  // Test III: CHANGE-REQUEST for another port only.
  auto portChanged = prober->bind(server, stun::kChangePort, share());
  if (!portChanged) return tl::unexpected(unsupported(portChanged.error()));
  if (*portChanged && (*portChanged)->from.port == server.port)
    return tl::unexpected(Failure{
        "protocol", fmt::format("UDP {}: the server ignored CHANGE-REQUEST (answered from {})",
                                server.toString(), (*portChanged)->from.toString())});
  behaviour.filtering = *portChanged ? "address-dependent" : "address-and-port-dependent";
  return behaviour;
}

Result<std::unique_ptr<TurnAllocation>> allocate(std::unique_ptr<MessageTransport> transport,
                                                 const TurnCredentials& credentials,
                                                 Deadline deadline) {
  auto client = std::make_unique<TurnClient>(std::move(transport), credentials);
  if (auto done = client->allocate(deadline); !done) return tl::unexpected(done.error());
  return std::unique_ptr<TurnAllocation>(std::move(client));
}

}  // namespace parley::netclient
