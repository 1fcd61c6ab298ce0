#include <array>

#include <parley/stun/binding.hpp>
#include <parley/stun/builder.hpp>
#include <parley/stun/integrity.hpp>

#include "wire.hpp"

namespace parley::stun {

namespace {

constexpr std::size_t kMaxReportedUnknown = 16;

// Comprehension-required attributes a Binding server understands. Deliberately absent:
// RFC 3489 RESPONSE-ADDRESS (0x0002), which would let a request aim the response at a third
// party; it is answered with 420. RFC 5780 RESPONSE-PORT only changes the port on the
// requester's own address, and PADDING is bounded, so neither reflects nor amplifies.
bool understoodInBindingRequest(std::uint16_t type) {
  switch (type) {
    case attr::kUsername:
    case attr::kMessageIntegrity:
    case attr::kMessageIntegritySha256:
    case attr::kUserhash:
    case attr::kRealm:
    case attr::kNonce:
    case attr::kPasswordAlgorithm:
    case attr::kPriority:
    case attr::kUseCandidate:
    case attr::kChangeRequest:
    case attr::kResponsePort:
    case attr::kPadding:
    case attr::kErrorCode:
    case attr::kUnknownAttributes:
    case attr::kMappedAddress:
    case attr::kXorMappedAddress:
      return true;
    default:
      return !attr::isComprehensionRequired(type);
  }
}

BindingResult dropped(DropReason reason) {
  BindingResult result;
  result.dropReason = reason;
  return result;
}

MessageBuilder startResponse(const Message& request, MessageClass cls,
                             std::span<std::uint8_t> out) {
  const std::uint16_t type = messageType(request.method(), cls);
  // RFC 5389 §12.2: echo an RFC 3489 client's 128-bit transaction ID, cookie bytes included.
  if (request.isClassic()) return MessageBuilder::classic(out, type, request.legacyTransactionId());
  return MessageBuilder(out, type, request.transactionId());
}

BindingResult finish(const MessageBuilder& builder, Outcome outcome, ReplyFrom from) {
  auto bytes = builder.finish();
  if (!bytes) return dropped(DropReason::BufferTooSmall);
  BindingResult result;
  result.outcome = outcome;
  result.response = *bytes;
  result.replyFrom = from;
  return result;
}

BindingResult errorResponse(const Message& request, const BindingContext& context, int code,
                            std::string_view reason, std::span<const std::uint16_t> unknown,
                            std::span<std::uint8_t> out) {
  MessageBuilder builder = startResponse(request, MessageClass::ErrorResponse, out);
  builder.addErrorCode(code, reason);
  if (!unknown.empty()) builder.addUnknownAttributes(unknown);
  if (!request.isClassic()) {
    if (!context.software.empty()) builder.addText(attr::kSoftware, context.software);
    builder.addFingerprint();
  }
  return finish(builder, Outcome::RespondError, ReplyFrom::Same);
}

}  // namespace

bool looksLikeStun(Bytes bytes) {
  if (bytes.size() < kHeaderSize || (bytes[0] & 0xC0) != 0) return false;
  const std::size_t length = wire::read16(bytes.data() + 2);
  return length % 4 == 0 && length + kHeaderSize == bytes.size();
}

BindingResult answerBinding(Bytes request, const BindingContext& context,
                            std::span<std::uint8_t> out) {
  const auto parsed = Message::parse(request);
  if (!parsed) return dropped(DropReason::Malformed);
  const Message& message = *parsed;
  if (message.messageClass() != MessageClass::Request) {
    return dropped(DropReason::NotARequest);
  }
  // RFC 8489 §7.3: a message whose FINGERPRINT does not match is not STUN; drop it silently.
  if (!message.isClassic() && checkFingerprint(message) == Check::Invalid) {
    return dropped(DropReason::BadFingerprint);
  }
  if (message.method() != method::kBinding) {
    return errorResponse(message, context, error::kBadRequest, "Method not supported here", {},
                         out);
  }

  // RFC 8489 §6.3.1: unknown comprehension-required attributes -> 420 listing them.
  std::array<std::uint16_t, kMaxReportedUnknown> unknown{};
  std::size_t unknownCount = 0;
  for (const Attribute& attribute : message) {
    if (!understoodInBindingRequest(attribute.type) && unknownCount < unknown.size()) {
      unknown[unknownCount++] = attribute.type;
    }
  }
  if (unknownCount > 0) {
    return errorResponse(message, context, error::kUnknownAttribute,
                         error::defaultReason(error::kUnknownAttribute),
                         std::span(unknown.data(), unknownCount), out);
  }

  // RFC 5780 §6.1 / RFC 3489 §9.2: CHANGE-REQUEST picks the socket the response leaves from.
  ReplyFrom from = ReplyFrom::Same;
  if (const auto change = message.find(attr::kChangeRequest)) {
    const auto flags = decodeUint32(*change);
    if (!flags) {
      return errorResponse(message, context, error::kBadRequest, "Malformed CHANGE-REQUEST", {},
                           out);
    }
    const bool changeIp = (*flags & kChangeIp) != 0;
    const bool changePort = (*flags & kChangePort) != 0;
    if (changeIp || changePort) {
      // Without a second address, or on a connection, the request cannot be honoured.
      if (!context.otherAddress || context.transport == Transport::Tcp) {
        const std::uint16_t changeRequest[] = {attr::kChangeRequest};
        return errorResponse(message, context, error::kUnknownAttribute,
                             error::defaultReason(error::kUnknownAttribute), changeRequest, out);
      }
      from = changeIp ? (changePort ? ReplyFrom::ChangedIpAndPort : ReplyFrom::ChangedIp)
                      : ReplyFrom::ChangedPort;
    }
  }

  // RFC 5780 §6.1 / §7.5: RESPONSE-PORT redirects the response to another port of the
  // client's address; meaningless on a connection.
  std::optional<std::uint16_t> responsePort;
  if (const auto port = message.find(attr::kResponsePort)) {
    if (port->value.size() != 4 || context.transport == Transport::Tcp) {
      return errorResponse(message, context, error::kBadRequest, "RESPONSE-PORT not usable here",
                           {}, out);
    }
    responsePort = wire::read16(port->value.data());
  }
  // RFC 5780 §7.6: PADDING in the request is mirrored in the response so both directions
  // carry a message of that size (fragmentation tests); bounded, so no amplification.
  std::size_t padding = 0;
  if (const auto pad = message.find(attr::kPadding)) {
    if (pad->value.size() > kMaxPadding) {
      return errorResponse(message, context, error::kBadRequest, "PADDING too large", {}, out);
    }
    padding = pad->value.size();
  }

  Endpoint origin = context.local;
  if (from == ReplyFrom::ChangedIp || from == ReplyFrom::ChangedIpAndPort) {
    origin.address = context.otherAddress->address;
  }
  if (from == ReplyFrom::ChangedPort || from == ReplyFrom::ChangedIpAndPort) {
    origin.port = context.otherAddress->port;
  }

  MessageBuilder builder = startResponse(message, MessageClass::SuccessResponse, out);
  if (message.isClassic()) {
    // RFC 3489 §11.2: MAPPED-ADDRESS, SOURCE-ADDRESS and CHANGED-ADDRESS; nothing the classic
    // client would not understand.
    builder.addAddress(attr::kMappedAddress, context.source);
    builder.addAddress(attr::kSourceAddress, origin);
    if (context.otherAddress) builder.addAddress(attr::kChangedAddress, *context.otherAddress);
  } else {
    builder.addXorAddress(attr::kXorMappedAddress, context.source);
    // A wildcard listener does not know which of its addresses the request reached.
    if (!origin.address.isUnspecified()) builder.addAddress(attr::kResponseOrigin, origin);
    if (context.otherAddress) builder.addAddress(attr::kOtherAddress, *context.otherAddress);
    if (!context.software.empty()) builder.addText(attr::kSoftware, context.software);
    if (padding > 0) {
      static constexpr std::array<std::uint8_t, kMaxPadding> kZeros{};
      builder.addAttribute(attr::kPadding, Bytes(kZeros.data(), padding));
    }
    builder.addFingerprint();
  }
  BindingResult result = finish(builder, Outcome::Respond, from);
  result.responsePort = responsePort;
  return result;
}

}  // namespace parley::stun
