// Fuzzes the TURN server state machine: client bytes over a UDP and a TCP 5-tuple, peer
// datagrams on relays, clock advances, expiry and closed streams, all chosen by the input.
// Requests can be re-signed by the harness (op 3) so that mutations reach the authenticated
// handlers, not just the 401. The fake RelayIo checks what the server asks of it.
//
// Input: records of [op][length hi][length lo][length bytes].
//   op % 6: 0 client bytes (UDP), 1 client bytes (TCP), 2 peer datagram (first byte picks the
//   relay and the peer), 3 re-signed request (type, transaction ID, unpadded attribute TLVs;
//   bit 7 picks TCP, bit 6 SHA-256),
//   4 advance the clock by the first byte in seconds and expire(), 5 close a client.
//
// Built with -DTURN_FUZZ_WRITE_SEEDS it is instead a program that writes the seed corpus to
// the directory given as its argument (the seeds hold nonces valid for this harness only).
#include <algorithm>
#include <array>
#include <cstdint>
#include <cstdlib>
#include <optional>
#include <string>
#include <vector>

#include <parley/base/log.hpp>
#include <parley/stun/builder.hpp>
#include <parley/stun/framer.hpp>
#include <parley/stun/integrity.hpp>
#include <parley/stun/message.hpp>
#include <parley/turn/server.hpp>

using namespace parley;
using namespace parley::turn;

namespace {

constexpr std::array<std::uint8_t, 32> kNonceKey = {0x5a, 1, 2, 3};

IpAddress ip(const char* text) {
  return *IpAddress::parse(text);
}

class CheckingRelayIo : public RelayIo {
 public:
  tl::expected<OpenedRelay, int> openRelay(const RelayRequest& request) override {
    ++opened_;
    if (opened_ % 7 == 0) return tl::unexpected(508);  // exercise the failure paths
    if (request.reservationToken && *request.reservationToken != 0x1122334455667788ULL) {
      return tl::unexpected(400);
    }
    OpenedRelay relay;
    relay.id = nextId_++;
    relay.advertised = {request.family == AddressFamily::V4 ? ip("203.0.113.1") : ip("2001:db8::1"),
                        static_cast<std::uint16_t>(40000 + relay.id)};
    if (request.reserveNext) relay.reservationToken = 0x1122334455667788ULL;
    open_.push_back(relay.id);
    return relay;
  }
  void closeRelay(RelayId relay) override {
    const auto found = std::find(open_.begin(), open_.end(), relay);
    if (found == open_.end()) std::abort();  // closed twice or never opened
    open_.erase(found);
  }
  void sendToPeer(RelayId relay, const Endpoint&, Bytes payload, bool) override {
    if (std::find(open_.begin(), open_.end(), relay) == open_.end()) std::abort();
    if (payload.size() > 0xFFFF) std::abort();
  }
  void sendToClient(const FiveTuple&, Bytes message) override {
    if (message.empty()) std::abort();
    if (stun::isChannelDataFirstByte(message[0])) {
      if (message.size() < 4) std::abort();
      const std::size_t length = message[2] << 8 | message[3];
      if (4 + length > message.size() || message.size() > 4 + length + 3) std::abort();
      return;
    }
    if (!stun::Message::parse(message)) std::abort();  // everything else is well-formed STUN
    last_.assign(message.begin(), message.end());
  }
  bool allClosed() const { return open_.empty(); }
  const std::vector<std::uint8_t>& lastMessage() const { return last_; }

 private:
  std::vector<RelayId> open_;
  RelayId nextId_ = 1;
  unsigned opened_ = 0;
  std::vector<std::uint8_t> last_;
};

struct Harness {
  Harness() {
    options.users = {{"fuzz", "fuzz-pass"}};
    options.restSecrets = {"fuzz-secret"};
    options.maxPermissionsPerAllocation = 8;
    options.maxAllocationsPerUser = 3;
    options.bandwidthPerAllocation = 100000;
    options.software = "fuzz";
    server.emplace(options, shared, filter, io);
    // Learn the nonce the server hands this client address: op 3 signs with it.
    std::array<std::uint8_t, 64> buffer{};
    const stun::TransactionId id{};
    stun::MessageBuilder builder(
        buffer, stun::messageType(stun::method::kAllocate, stun::MessageClass::Request), id);
    const auto bytes = builder.finish();
    server->onClientBytes(udp, *bytes, now);
    const auto reply = stun::Message::parse(io.lastMessage());
    if (!reply) std::abort();
    const auto nonceAttr = reply->find(stun::attr::kNonce);
    if (!nonceAttr) std::abort();
    nonce.assign(nonceAttr->value.begin(), nonceAttr->value.end());
  }
  ~Harness() {
    server.reset();
    if (!io.allClosed()) std::abort();  // the destructor closes every relay
    if (shared.allocations() != 0) std::abort();
  }

  // Type (2 bytes), transaction ID (12 bytes), then unpadded TLVs, re-encoded with padding,
  // USERNAME, REALM, NONCE, MESSAGE-INTEGRITY(-SHA256) and FINGERPRINT.
  std::vector<std::uint8_t> sign(Bytes data, bool sha256) {
    std::vector<std::uint8_t> out(70000);
    if (data.size() < 14) return {};
    stun::TransactionId id;
    std::copy_n(data.begin() + 2, 12, id.begin());
    stun::MessageBuilder builder(out, static_cast<std::uint16_t>((data[0] & 0x3F) << 8 | data[1]),
                                 id);
    for (std::size_t at = 14; at + 4 <= data.size();) {
      const std::uint16_t type = static_cast<std::uint16_t>(data[at] << 8 | data[at + 1]);
      const std::size_t length =
          std::min<std::size_t>(data[at + 2] << 8 | data[at + 3], data.size() - at - 4);
      builder.addAttribute(type, data.subspan(at + 4, length));
      at += 4 + length;
    }
    builder.addText(stun::attr::kUsername, "fuzz")
        .addText(stun::attr::kRealm, options.realm)
        .addAttribute(stun::attr::kNonce, nonce);
    if (sha256) {
      // RFC 8489 §9.2.4: echo the offered PASSWORD-ALGORITHMS and choose SHA-256.
      static constexpr std::array<std::uint8_t, 8> kOffered = {0, 2, 0, 0, 0, 1, 0, 0};
      static constexpr std::array<std::uint8_t, 4> kSha256 = {0, 2, 0, 0};
      builder.addAttribute(stun::attr::kPasswordAlgorithms, kOffered)
          .addAttribute(stun::attr::kPasswordAlgorithm, kSha256)
          .addMessageIntegritySha256(keySha256);
    } else {
      builder.addMessageIntegrity(keyMd5);
    }
    builder.addFingerprint();
    const auto built = builder.finish();
    if (!built) return {};
    out.resize(built->size());
    return out;
  }

  void run(Bytes input) {
    for (std::size_t at = 0; at + 3 <= input.size();) {
      const std::uint8_t op = input[at];
      const std::size_t length =
          std::min<std::size_t>(input[at + 1] << 8 | input[at + 2], input.size() - at - 3);
      const Bytes data = input.subspan(at + 3, length);
      at += 3 + length;
      const FiveTuple& client = (op & 0x80) != 0 ? tcp : udp;
      switch (op % 6) {
        case 0:
          server->onClientBytes(udp, data, now);
          break;
        case 1:
          server->onClientBytes(tcp, data, now);
          break;
        case 2: {
          if (data.empty()) break;
          const RelayId relay = 1 + data[0] % 4;
          const Endpoint peer = (data[0] & 0x10) != 0   ? Endpoint{ip("8.8.8.8"), 5000}
                                : (data[0] & 0x20) != 0 ? Endpoint{ip("2001:4860::1"), 5000}
                                                        : Endpoint{ip("8.8.8.8"), 5001};
          server->onPeerBytes(relay, peer, data.subspan(1), now);
          break;
        }
        case 3: {
          const auto signed_ = sign(data, (op & 0x40) != 0);
          if (!signed_.empty()) server->onClientBytes(client, signed_, now);
          break;
        }
        case 4: {
          const int seconds = data.empty() ? 1 : data[0];
          now.steady += std::chrono::seconds(seconds);
          now.wall += std::chrono::seconds(seconds);
          server->expire(now);
          break;
        }
        case 5:
          server->onClientClosed(client, now);
          break;
      }
    }
    const Counters& counters = server->counters();
    if (counters.allocationsActive != server->allocationCount()) std::abort();
    if (shared.allocations() != server->allocationCount()) std::abort();
  }

  Options options;
  SharedState shared{16, kNonceKey};
  PeerFilter filter;
  CheckingRelayIo io;
  std::optional<Server> server;
  Now now{std::chrono::steady_clock::time_point{} + std::chrono::hours(1),
          std::chrono::system_clock::from_time_t(1'700'000'000)};
  const FiveTuple udp{{ip("198.51.100.1"), 1000}, {ip("192.0.2.1"), 3478}, Transport::Udp};
  const FiveTuple tcp{{ip("198.51.100.1"), 1001}, {ip("192.0.2.1"), 3478}, Transport::Tcp};
  std::vector<std::uint8_t> nonce;
  // RFC 8489 §9.2.2 keys of "fuzz:parley:fuzz-pass".
  std::array<std::uint8_t, 16> keyMd5 = *stun::longTermKeyMd5("fuzz", "parley", "fuzz-pass");
  std::array<std::uint8_t, 32> keySha256 = *stun::longTermKeySha256("fuzz", "parley", "fuzz-pass");
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const bool quiet = [] {
    log::Options options;
    options.level = "off";  // allocation start/end lines would dominate the run time
    log::configure(options);
    return true;
  }();
  (void)quiet;
  Harness harness;
  harness.run(Bytes(data, size));
  return 0;
}

#ifdef TURN_FUZZ_WRITE_SEEDS
#include <fstream>
#include <functional>
#include <iostream>

namespace {

struct Seed {
  std::vector<std::uint8_t> bytes;
  Seed& record(std::uint8_t op, const std::vector<std::uint8_t>& data) {
    bytes.push_back(op);
    bytes.push_back(static_cast<std::uint8_t>(data.size() >> 8));
    bytes.push_back(static_cast<std::uint8_t>(data.size()));
    bytes.insert(bytes.end(), data.begin(), data.end());
    return *this;
  }
};

// Op 3 payload: message type, transaction ID, then TLVs.
std::vector<std::uint8_t> unsigned_(std::uint16_t type, std::uint8_t txid,
                                    std::vector<std::vector<std::uint8_t>> attributes) {
  std::vector<std::uint8_t> out = {static_cast<std::uint8_t>(type >> 8),
                                   static_cast<std::uint8_t>(type)};
  for (int i = 0; i < 12; ++i)
    out.push_back(txid);
  for (const auto& a : attributes)
    out.insert(out.end(), a.begin(), a.end());
  return out;
}

std::vector<std::uint8_t> tlv(std::uint16_t type, std::vector<std::uint8_t> value) {
  std::vector<std::uint8_t> out = {
      static_cast<std::uint8_t>(type >> 8), static_cast<std::uint8_t>(type),
      static_cast<std::uint8_t>(value.size() >> 8), static_cast<std::uint8_t>(value.size())};
  out.insert(out.end(), value.begin(), value.end());  // unpadded: the harness pads
  return out;
}

std::vector<std::uint8_t> built(std::uint16_t type, std::uint8_t txid,
                                const std::function<void(stun::MessageBuilder&)>& body) {
  std::vector<std::uint8_t> out(4096);
  stun::TransactionId id;
  id.fill(txid);
  stun::MessageBuilder builder(out, type, id);
  body(builder);
  out.resize(builder.finish()->size());
  return out;
}

using stun::MessageClass;
namespace attr = stun::attr;
namespace method = stun::method;

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: " << argv[0] << " <corpus dir>\n";
    return 2;
  }
  const auto request = [](std::uint16_t m) { return stun::messageType(m, MessageClass::Request); };
  const auto transportUdp = tlv(attr::kRequestedTransport, {17, 0, 0, 0});
  // XOR-PEER-ADDRESS of 8.8.8.8:5000 (port ^ 0x2112, address ^ 0x2112A442).
  const std::vector<std::uint8_t> xorPeer = {0,        1,        0x13 ^ 0x21, 0x88 ^ 0x12,
                                             8 ^ 0x21, 8 ^ 0x12, 8 ^ 0xA4,    8 ^ 0x42};
  const auto xorPeerAttr = tlv(attr::kXorPeerAddress, xorPeer);

  Harness probe;  // its nonce and keys are those the fuzz target will see
  std::vector<std::pair<std::string, Seed>> seeds;

  // 1. A complete Allocate with MESSAGE-INTEGRITY, as raw client bytes over UDP.
  {
    const auto bytes = built(request(method::kAllocate), 1, [&](stun::MessageBuilder& b) {
      b.addAttribute(attr::kRequestedTransport, std::vector<std::uint8_t>{17, 0, 0, 0})
          .addText(attr::kUsername, "fuzz")
          .addText(attr::kRealm, "parley")
          .addAttribute(attr::kNonce, probe.nonce)
          .addMessageIntegrity(probe.keyMd5)
          .addFingerprint();
    });
    Seed seed;
    seed.record(0, bytes);
    seeds.push_back({"allocate_md5_udp", seed});
  }
  // 2. Allocate, CreatePermission, Send indication, peer datagram back, Refresh 0.
  {
    Seed seed;
    seed.record(3, unsigned_(request(method::kAllocate), 2, {transportUdp}))
        .record(3, unsigned_(request(method::kCreatePermission), 3, {xorPeerAttr}))
        .record(0, built(stun::messageType(method::kSend, MessageClass::Indication), 4,
                         [&](stun::MessageBuilder& b) {
                           b.addAttribute(attr::kXorPeerAddress, xorPeer)
                               .addAttribute(attr::kData, std::vector<std::uint8_t>{1, 2, 3});
                         }))
        .record(2, {0x10, 9, 9, 9})
        .record(3, unsigned_(request(method::kRefresh), 5, {tlv(attr::kLifetime, {0, 0, 0, 0})}));
    seeds.push_back({"permission_send_data_udp", seed});
  }
  // 3. Over TCP with SHA-256 integrity: Allocate, ChannelBind, ChannelData both ways, close.
  {
    Seed seed;
    seed.record(0x80 | 0x40 | 3, unsigned_(request(method::kAllocate), 6, {transportUdp}))
        .record(0x80 | 0x40 | 3,
                unsigned_(request(method::kChannelBind), 7,
                          {tlv(attr::kChannelNumber, {0x40, 0x00, 0, 0}), xorPeerAttr}))
        .record(1, {0x40, 0x00, 0x00, 0x03, 7, 7, 7})
        .record(2, {0x10, 1, 2, 3, 4, 5})
        .record(5 | 0x80, {});
    seeds.push_back({"channel_tcp_sha256", seed});
  }
  // 4. A dual allocation with EVEN-PORT, a refresh, the clock past every lifetime.
  {
    Seed seed;
    seed.record(3, unsigned_(request(method::kAllocate), 8,
                             {transportUdp, tlv(attr::kAdditionalAddressFamily, {2, 0, 0, 0}),
                              tlv(attr::kEvenPort, {0x80}), tlv(attr::kLifetime, {0, 0, 4, 0})}))
        .record(3, unsigned_(request(method::kRefresh), 9, {tlv(attr::kLifetime, {0, 0, 2, 0})}))
        .record(4, {200})
        .record(4, {250})
        .record(4, {255})
        .record(4, {255});
    seeds.push_back({"dual_even_port_expiry", seed});
  }
  // 5. Binding, an unauthenticated Allocate, and junk.
  {
    Seed seed;
    seed.record(0, built(request(method::kBinding), 10,
                         [](stun::MessageBuilder& b) { b.addFingerprint(); }))
        .record(1, built(request(method::kAllocate), 11, [](stun::MessageBuilder&) {}))
        .record(0, {0x41, 0x00, 0xff, 0xff, 1});
    seeds.push_back({"binding_and_challenge", seed});
  }

  for (const auto& [name, seed] : seeds) {
    {
      Harness check;
      check.run(seed.bytes);
      const Counters& c = check.server->counters();
      std::cout << name << ": allocations " << c.allocationsCreated << ", permissions "
                << c.permissionsCreated << ", channels " << c.channelsBound << ", to peer "
                << c.packetsToPeer << ", to client " << c.packetsToClient << ", auth failures "
                << c.authFailures << "\n";
    }
    std::ofstream file(std::string(argv[1]) + "/" + name, std::ios::binary);
    file.write(reinterpret_cast<const char*>(seed.bytes.data()),
               static_cast<std::streamsize>(seed.bytes.size()));
  }
  return 0;
}
#endif
