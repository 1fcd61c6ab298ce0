// Fuzzes the STUN parser and everything that reads a parsed message: every decoder, the
// integrity checks, the Binding service, and a re-serialisation that must parse again.
#include <array>
#include <cstdint>
#include <cstdlib>
#include <parley/stun/binding.hpp>
#include <parley/stun/builder.hpp>
#include <parley/stun/integrity.hpp>
#include <parley/stun/message.hpp>

using namespace parley;
using namespace parley::stun;

namespace {

void decodeEverything(const Message& message) {
  for (const Attribute& attribute : message) {
    (void)Message::decodeAddress(attribute);
    (void)message.decodeXorAddress(attribute);
    (void)decodeErrorCode(attribute);
    (void)decodeUint32(attribute);
    (void)decodeText(attribute);
    if (auto list = decodeUnknownAttributes(attribute)) {
      for (std::size_t i = 0; i < list->size(); ++i) (void)(*list)[i];
    }
    (void)decodePasswordAlgorithm(attribute);
    (void)forEachPasswordAlgorithm(attribute, [](const PasswordAlgorithm&) {});
  }
  const std::uint8_t key[] = {'k', 'e', 'y'};
  (void)checkFingerprint(message);
  (void)checkMessageIntegrity(message, key);
  (void)checkMessageIntegritySha256(message, key);
}

void reserialise(const Message& message) {
  // Copy every visible attribute into a new message; it must parse with the same attributes.
  static std::array<std::uint8_t, 70000> buffer;
  MessageBuilder builder = message.isClassic()
                               ? MessageBuilder::classic(buffer, message.type(),
                                                         message.legacyTransactionId())
                               : MessageBuilder(buffer, message.type(), message.transactionId());
  std::size_t count = 0;
  for (const Attribute& attribute : message) {
    builder.addAttribute(attribute.type, attribute.value);
    ++count;
  }
  const auto built = builder.finish();
  if (!built) std::abort();  // the input fit, so its attributes must fit again
  const auto again = Message::parse(*built);
  if (!again) std::abort();
  std::size_t countAgain = 0;
  for (const Attribute& attribute : *again) {
    (void)attribute;
    ++countAgain;
  }
  // Attributes hidden after MESSAGE-INTEGRITY are not copied, so the counts must agree.
  if (countAgain != count) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const Bytes bytes(data, size);
  if (const auto message = Message::parse(bytes)) {
    decodeEverything(*message);
    reserialise(*message);
  }
  (void)looksLikeStun(bytes);
  BindingContext context{Endpoint{*IpAddress::parse("192.0.2.1"), 1234},
                         Endpoint{*IpAddress::parse("192.0.2.2"), 3478}, Transport::Udp,
                         Endpoint{*IpAddress::parse("192.0.2.3"), 3479}, "fuzz"};
  std::array<std::uint8_t, 1280> out;
  const auto result = answerBinding(bytes, context, out);
  if (result.outcome != Outcome::Drop && !Message::parse(result.response)) std::abort();
  return 0;
}
