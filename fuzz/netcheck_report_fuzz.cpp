// Fuzzes what POST /api/v1/netcheck/grade does with a posted body: parse the JSON, read its
// checks strictly, grade them against a multi-node contract and against the input read as a
// requirements document, and write the report JSON. Checks that are accepted must survive
// toJson -> checksFromJson unchanged, grading must always give a headline, and nothing throws.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include <nlohmann/json.hpp>

#include <parley/netcheck/report.hpp>

using namespace parley::netcheck;

namespace {

Contract multiNode() {
  Contract contract;
  contract.url = "https://meet.example.com";
  contract.domain = "meet.example.com";
  contract.addresses = {"203.0.113.10", "2001:db8:10::10", "198.51.100.0/28"};
  contract.relayPorts = "40000-44999";
  return contract;
}

void grade(const std::vector<CheckResult>& checks, const Contract& contract) {
  Report report;
  report.url = contract.url;
  report.checks = checks;
  report.assessment = assess(checks, contract);
  if (report.assessment.headline.empty()) std::abort();
  for (const auto& remedy : report.assessment.remedies) {
    if (remedy.empty()) std::abort();
  }
  const nlohmann::json json = toJson(report);
  (void)json.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  const auto again = checksFromJson(json);
  if (!again || again->size() != checks.size()) std::abort();
  for (std::size_t i = 0; i < checks.size(); ++i) {
    const CheckResult& a = checks[i];
    const CheckResult& b = (*again)[i];
    if (a.id != b.id || a.verdict != b.verdict || a.duration != b.duration ||
        a.summary != b.summary || a.failure != b.failure || a.target != b.target ||
        a.details != b.details) {
      std::abort();
    }
  }
  if (assess(*again, contract).remedies != report.assessment.remedies) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const nlohmann::json json = nlohmann::json::parse(text, nullptr, false);
  if (json.is_discarded()) return 0;
  const auto contract = contractFromRequirements(json);
  const auto checks = checksFromJson(json);
  if (!checks) {
    if (checks.error().empty()) std::abort();
    return 0;
  }
  grade(*checks, multiNode());
  grade(*checks, Contract{});
  if (contract) grade(*checks, *contract);
  return 0;
}
