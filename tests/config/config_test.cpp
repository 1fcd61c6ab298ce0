#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <parley/config/config.hpp>

namespace parley::config {
namespace {

namespace fs = std::filesystem;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

// Each test writes its files into a fresh directory of its own.
class ConfigTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = fs::temp_directory_path() /
           ("parley-config-test-" + std::to_string(::getpid()) + "-" + info->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    path_ = dir_ / "parley.toml";
  }
  void TearDown() override { fs::remove_all(dir_); }

  fs::path write(const std::string& text, const std::string& name = "parley.toml") {
    const fs::path path = dir_ / name;
    std::ofstream(path) << text;
    return path;
  }

  // The messages of a load that must fail.
  static std::vector<std::string> errorsOf(const tl::expected<Config, ConfigErrors>& result) {
    EXPECT_FALSE(result) << "expected the load to fail";
    std::vector<std::string> lines;
    if (!result) {
      for (const auto& error : result.error().errors)
        lines.push_back(error.toString());
    }
    return lines;
  }

  std::vector<std::string> fileErrors(const std::string& text,
                                      const std::vector<std::string>& overrides = {}) {
    path_ = write(text);
    return errorsOf(loadConfig(path_, overrides));
  }

  static std::vector<std::string> overrideErrors(const std::vector<std::string>& overrides) {
    return errorsOf(loadConfig(std::nullopt, overrides));
  }

  std::string at(int line, int column) const {
    return path_.string() + ":" + std::to_string(line) + ":" + std::to_string(column) + ": ";
  }

  fs::path dir_;
  fs::path path_;
};

IpAddress ip(const char* text) {
  return *IpAddress::parse(text);
}

TEST_F(ConfigTest, DefaultsWithoutFileOrOverrides) {
  const auto config = loadConfig(std::nullopt, {});
  ASSERT_TRUE(config) << config.error().toString();
  EXPECT_EQ(*config, Config{});
  EXPECT_EQ(config->server.threads, 0u);
  EXPECT_EQ(config->log.level, "info");
  EXPECT_EQ(config->log.format, log::Format::Text);
  EXPECT_TRUE(config->log.moduleLevels.empty());
  EXPECT_THAT(config->stun.listen, ElementsAre(ip("127.0.0.1")));
  EXPECT_EQ(config->stun.port, 3478);
  EXPECT_TRUE(config->stun.udp);
  EXPECT_TRUE(config->stun.tcp);
  EXPECT_FALSE(config->stun.alternateAddress);
  EXPECT_EQ(config->stun.alternatePort, 3479);
  EXPECT_EQ(config->stun.software, "parley");
  EXPECT_EQ(config->stun.tcpIdleTimeoutSeconds, 30u);
  EXPECT_EQ(config->stun.tcpMaxConnections, 10'000u);
  EXPECT_EQ(config->stun.tcpMaxMessageSize, 65'555u);
  EXPECT_TRUE(Config{}.validate().empty());
}

TEST_F(ConfigTest, EmptyFileGivesDefaults) {
  const auto config = loadConfig(write(""), {});
  ASSERT_TRUE(config) << config.error().toString();
  EXPECT_EQ(*config, Config{});
}

TEST_F(ConfigTest, ReadsEveryKey) {
  const auto config = loadConfig(write(R"(
[server]
threads = 4
[log]
level = "debug"
format = "json"
[log.modules]
stun = "trace"
net = "warn"
[stun]
listen = ["192.0.2.1"]
port = 3480
udp = true
tcp = false
alternate_address = "192.0.2.2"
alternate_port = 3481
software = "my server"
tcp_idle_timeout_seconds = 60
tcp_max_connections = 500
tcp_max_message_size = 2048
)"),
                                 {});
  ASSERT_TRUE(config) << config.error().toString();
  EXPECT_EQ(config->server.threads, 4u);
  EXPECT_EQ(config->log.level, "debug");
  EXPECT_EQ(config->log.format, log::Format::Json);
  EXPECT_EQ(config->log.moduleLevels,
            (std::map<std::string, std::string>{{"net", "warn"}, {"stun", "trace"}}));
  EXPECT_THAT(config->stun.listen, ElementsAre(ip("192.0.2.1")));
  EXPECT_EQ(config->stun.port, 3480);
  EXPECT_FALSE(config->stun.tcp);
  EXPECT_EQ(config->stun.alternateAddress, ip("192.0.2.2"));
  EXPECT_EQ(config->stun.alternatePort, 3481);
  EXPECT_EQ(config->stun.software, "my server");
  EXPECT_EQ(config->stun.tcpIdleTimeoutSeconds, 60u);
  EXPECT_EQ(config->stun.tcpMaxConnections, 500u);
  EXPECT_EQ(config->stun.tcpMaxMessageSize, 2048u);
}

TEST_F(ConfigTest, ReadsIpv6Listen) {
  const auto config =
      loadConfig(write("[stun]\nlisten = [\"::1\", \"0.0.0.0\"]\n[turn]\nenabled = false\n"), {});
  ASSERT_TRUE(config) << config.error().toString();
  EXPECT_THAT(config->stun.listen, ElementsAre(ip("::1"), ip("0.0.0.0")));
}

TEST_F(ConfigTest, UnknownKeyNamesPlaceAndSuggestion) {
  const auto errors = fileErrors("[stun]\nport = 3478\nprot = 3479\n");
  EXPECT_THAT(errors,
              ElementsAre(at(3, 1) + "unknown key 'stun.prot' (did you mean 'stun.port'?)"));
}

TEST_F(ConfigTest, UnknownKeyInOtherSectionSuggestsTheRightOne) {
  const auto errors = fileErrors("[server]\nport = 1\n");
  EXPECT_THAT(errors,
              ElementsAre(at(2, 1) + "unknown key 'server.port' (did you mean 'stun.port'?)"));
}

TEST_F(ConfigTest, UnknownTableAndTopLevelKey) {
  const auto errors =
      fileErrors("verbose = true\n[video]\nrealm = \"x\"\n[log.modules]\nstnu = \"debug\"\n");
  EXPECT_THAT(errors,
              ElementsAre(at(1, 1) + "unknown key 'verbose'", at(2, 1) + "unknown table 'video'",
                          at(5, 1) + "unknown key 'log.modules.stnu' (did you mean "
                                     "'log.modules.stun'?)"));
}

TEST_F(ConfigTest, IntegerOutOfRange) {
  const auto errors = fileErrors("[stun]\n\nport = 70000\n");
  EXPECT_THAT(errors,
              ElementsAre(at(3, 8) + "stun.port: expected an integer from 0 to 65535, got 70000"));
}

TEST_F(ConfigTest, EveryRangeIsChecked) {
  const auto errors = fileErrors(R"([server]
threads = -1
[stun]
alternate_port = 0
tcp_idle_timeout_seconds = 0
tcp_max_connections = 1000001
tcp_max_message_size = 547
)");
  EXPECT_THAT(
      errors,
      ElementsAre(at(2, 11) + "server.threads: expected an integer from 0 to 1024, got -1",
                  at(4, 18) + "stun.alternate_port: expected an integer from 1 to 65535, got 0",
                  at(5, 28) + "stun.tcp_idle_timeout_seconds: expected an integer from 1 "
                              "to 3600, got 0",
                  at(6, 23) + "stun.tcp_max_connections: expected an integer from 1 to "
                              "1000000, got 1000001",
                  at(7, 24) + "stun.tcp_max_message_size: expected an integer from 548 to "
                              "65555, got 547"));
}

TEST_F(ConfigTest, InvalidListenAddress) {
  const auto errors = fileErrors("[stun]\nlisten = [\"10.0.0.1\", \"10.0.0.300\"]\n");
  EXPECT_THAT(errors,
              ElementsAre(at(2, 23) + "stun.listen[1]: \"10.0.0.300\" is not an IP address"));
}

TEST_F(ConfigTest, WrongTypes) {
  const auto errors = fileErrors(R"([stun]
listen = "127.0.0.1"
port = "3478"
udp = "yes"
software = 5
alternate_address = ["192.0.2.9"]
[log]
level = 3
modules = "debug"
)");
  EXPECT_THAT(errors,
              ElementsAre(at(2, 10) + "stun.listen: expected an array of IP address strings, got "
                                      "string",
                          at(3, 8) + "stun.port: expected an integer from 0 to 65535, got string",
                          at(4, 7) + "stun.udp: expected a boolean, got string",
                          at(5, 12) + "stun.software: expected a string, got integer",
                          at(6, 21) + "stun.alternate_address: expected a string, got array",
                          at(8, 9) + "log.level: expected a string, got integer",
                          at(9, 11) + "log.modules: expected a table of module = \"level\", got "
                                      "string"));
}

TEST_F(ConfigTest, SectionThatIsNotATable) {
  const auto errors = fileErrors("stun = 5\n");
  EXPECT_THAT(errors, ElementsAre(at(1, 8) + "stun: expected a table, got integer"));
}

TEST_F(ConfigTest, InvalidLevelsAndFormat) {
  const auto errors =
      fileErrors("[log]\nlevel = \"verbose\"\nformat = \"xml\"\n[log.modules]\nnet = \"loud\"\n");
  EXPECT_THAT(errors,
              ElementsAre(at(2, 9) + "log.level: expected one of trace, debug, info, warn, error, "
                                     "off, got \"verbose\"",
                          at(3, 10) + "log.format: expected \"text\" or \"json\", got \"xml\"",
                          at(5, 7) + "log.modules.net: expected one of trace, debug, info, warn, "
                                     "error, off, got \"loud\""));
}

TEST_F(ConfigTest, SyntaxErrorNamesFileLineAndColumn) {
  const auto errors = fileErrors("[stun]\nport = 3478\nudp = tru\n");
  ASSERT_EQ(errors.size(), 1u);
  // toml++ points at where it gave up and describes the problem.
  EXPECT_THAT(errors[0], ::testing::MatchesRegex(path_.string() + ":3:[0-9]+: .*boolean.*"));
  EXPECT_EQ(errors[0].find('\n'), std::string::npos) << "one line per error";
}

TEST_F(ConfigTest, MissingFile) {
  const fs::path missing = dir_ / "missing.toml";
  EXPECT_THAT(errorsOf(loadConfig(missing, {})),
              ElementsAre("cannot read " + missing.string() + ": No such file or directory"));
}

TEST_F(ConfigTest, DirectoryIsNotReadable) {
  EXPECT_THAT(errorsOf(loadConfig(dir_, {})),
              ElementsAre("cannot read " + dir_.string() + ": Is a directory"));
}

TEST_F(ConfigTest, ReportsEveryProblemAtOnceInFileOrder) {
  const auto errors = fileErrors(R"([stun]
listen = ["1.2.3.4", "nope"]
port = 70000
udp = false
tcp = false
prot = 1
[log]
level = "loud"
)");
  EXPECT_THAT(errors,
              ElementsAre(at(2, 22) + "stun.listen[1]: \"nope\" is not an IP address",
                          at(3, 8) + "stun.port: expected an integer from 0 to 65535, got 70000",
                          at(4, 7) + "stun.udp: at least one of stun.udp and stun.tcp must be true",
                          at(6, 1) + "unknown key 'stun.prot' (did you mean 'stun.port'?)",
                          at(8, 9) + "log.level: expected one of trace, debug, info, warn, error, "
                                     "off, got \"loud\""));
}

TEST_F(ConfigTest, AlternateAddressRules) {
  EXPECT_THAT(fileErrors("[stun]\nlisten = [\"192.0.2.1\", \"192.0.2.3\"]\n"
                         "alternate_address = \"192.0.2.2\"\n"),
              ElementsAre(at(3, 21) + "stun.alternate_address: needs exactly one stun.listen "
                                      "address, got 2"));
  EXPECT_THAT(fileErrors("[stun]\nlisten = [\"192.0.2.1\"]\nalternate_address = \"192.0.2.1\"\n"),
              ElementsAre(at(3, 21) + "stun.alternate_address: must differ from the listen "
                                      "address 192.0.2.1"));
  EXPECT_THAT(fileErrors("[stun]\nlisten = [\"192.0.2.1\"]\nalternate_address = \"2001:db8::2\"\n"),
              ElementsAre(at(3, 21) + "stun.alternate_address: 2001:db8::2 is not the same "
                                      "address family as the listen address 192.0.2.1"));
  // A default that clashes with a file value points at the value in the file.
  EXPECT_THAT(fileErrors("[stun]\nlisten = [\"192.0.2.1\"]\nalternate_address = \"192.0.2.2\"\n"
                         "port = 3479\n"),
              ElementsAre(at(4, 8) + "stun.alternate_port: must differ from stun.port (both are "
                                     "3479)"));
  EXPECT_THAT(fileErrors("[stun]\nalternate_address = \"0.0.0.0\"\nlisten = [\"0.0.0.1\"]\n"),
              ElementsAre(at(2, 21) + "stun.alternate_address: 0.0.0.0 is not a concrete address"));
}

TEST_F(ConfigTest, AlternateAddressEmptyMeansNone) {
  const auto config = loadConfig(write("[stun]\nalternate_address = \"\"\n"), {});
  ASSERT_TRUE(config) << config.error().toString();
  EXPECT_FALSE(config->stun.alternateAddress);
}

TEST_F(ConfigTest, ValidAlternateAddress) {
  const auto config = loadConfig(
      std::nullopt, {"stun.listen=[\"2001:db8::1\"]", "stun.alternate_address=2001:db8::2",
                     "turn.relay_address_v6=2001:db8::1"});
  ASSERT_TRUE(config) << config.error().toString();
  EXPECT_EQ(config->stun.alternateAddress, ip("2001:db8::2"));
}

TEST_F(ConfigTest, DuplicateAndEmptyListen) {
  EXPECT_THAT(
      fileErrors("[stun]\nlisten = [\"::1\", \"::1\"]\n[turn]\nrelay_address_v6 = \"::1\"\n"),
      ElementsAre(at(2, 18) + "stun.listen[1]: ::1 is listed twice"));
  EXPECT_THAT(fileErrors("[stun]\nlisten = []\n"),
              ElementsAre(at(2, 10) + "stun.listen: needs at least one IP address"));
}

TEST_F(ConfigTest, SoftwareLengthLimit) {
  EXPECT_THAT(fileErrors("[stun]\nsoftware = \"" + std::string(128, 'x') + "\"\n"),
              ElementsAre(at(2, 12) + "stun.software: must be at most 127 characters and 763 "
                                      "bytes (RFC 5389 section 15.10)"));
  const auto config = loadConfig(std::nullopt, {"stun.software=\"" + std::string(127, 'x') + "\""});
  EXPECT_TRUE(config);
}

TEST_F(ConfigTest, OverridesBeatTheFile) {
  const fs::path file =
      write("[stun]\nport = 4000\nlisten = [\"192.0.2.1\"]\n[log]\nlevel = \"warn\"\n");
  const auto config =
      loadConfig(file, {"stun.port=4001", "stun.listen=[\"0.0.0.0\", \"::\"]",
                        "log.level=\"debug\"", "server.threads=2", "log.modules.net=trace",
                        "stun.port=4002", "turn.relay_address=192.0.2.1"});
  ASSERT_TRUE(config) << config.error().toString();
  EXPECT_EQ(config->stun.port, 4002);  // the last override wins
  EXPECT_THAT(config->stun.listen, ElementsAre(ip("0.0.0.0"), ip("::")));
  EXPECT_EQ(config->log.level, "debug");
  EXPECT_EQ(config->server.threads, 2u);
  EXPECT_EQ(config->log.moduleLevels.at("net"), "trace");
}

TEST_F(ConfigTest, OverrideBareWordIsAString) {
  const auto config =
      loadConfig(std::nullopt, {"log.level=debug", "stun.software=my stun", "log.format = json"});
  ASSERT_TRUE(config) << config.error().toString();
  EXPECT_EQ(config->log.level, "debug");
  EXPECT_EQ(config->stun.software, "my stun");
  EXPECT_EQ(config->log.format, log::Format::Json);
}

TEST_F(ConfigTest, OverrideErrorsNameTheOverride) {
  EXPECT_THAT(overrideErrors({"stun.port=70000"}),
              ElementsAre("--set stun.port: expected an integer from 0 to 65535, got 70000"));
  EXPECT_THAT(overrideErrors({"stun.udp=yes"}),
              ElementsAre("--set stun.udp: expected a boolean, got string"));
  EXPECT_THAT(
      overrideErrors({"stun.listen=[\"1.2.3.4\", \"10.0.0.300\"]"}),
      ElementsAre("--set stun.listen: stun.listen[1]: \"10.0.0.300\" is not an IP address"));
  EXPECT_THAT(overrideErrors({"stun.prot=1"}),
              ElementsAre("--set stun.prot: unknown key 'stun.prot' (did you mean 'stun.port'?)"));
  EXPECT_THAT(overrideErrors({"log.modules={stnu = \"debug\"}"}),
              ElementsAre("--set log.modules: unknown key 'log.modules.stnu' (did you mean "
                          "'log.modules.stun'?)"));
  EXPECT_THAT(overrideErrors({"stun.port"}),
              ElementsAre("--set stun.port: expected KEY=VALUE, e.g. stun.port=3479"));
  EXPECT_THAT(overrideErrors({"stun..port=1"}),
              ElementsAre("--set stun..port: expected a dotted key like stun.port before '='"));
  EXPECT_THAT(overrideErrors({"stun.port="}),
              ElementsAre("--set stun.port: expected a value after '='"));
  EXPECT_THAT(overrideErrors({"stun.port=1", "stun.port.x=1"}),
              ElementsAre("--set stun.port.x: 'stun.port' is not a table (got integer)"));
  EXPECT_THAT(overrideErrors({"stun.port.x=1"}),
              ElementsAre("--set stun.port.x: stun.port: expected an integer from 0 to 65535, got "
                          "table"));
  const auto quoted = overrideErrors({"log.level=\"debug"});
  ASSERT_EQ(quoted.size(), 1u);
  EXPECT_THAT(quoted[0], HasSubstr("--set log.level: invalid TOML value: "));
  EXPECT_THAT(overrideErrors({"stun.port=1\nstun.udp=false"}),
              ElementsAre("--set stun.port: expected a single TOML value after '='"));
}

TEST_F(ConfigTest, CrossFieldErrorPointsAtTheOverride) {
  EXPECT_THAT(overrideErrors({"stun.udp=false", "stun.tcp=false"}),
              ElementsAre("--set stun.udp: at least one of stun.udp and stun.tcp must be true"));
  EXPECT_THAT(overrideErrors({"stun.tcp=false", "stun.udp=false"}),
              ElementsAre("--set stun.udp: at least one of stun.udp and stun.tcp must be true"));
  EXPECT_TRUE(loadConfig(std::nullopt, {"stun.tcp=false"}));
}

TEST_F(ConfigTest, FileAndOverrideErrorsTogether) {
  const auto errors = fileErrors("[stun]\nport = 99999\n", {"stun.udp=1", "server.threads=x"});
  EXPECT_THAT(errors,
              ElementsAre(at(2, 8) + "stun.port: expected an integer from 0 to 65535, got 99999",
                          "--set stun.udp: expected a boolean, got integer",
                          "--set server.threads: expected an integer from 0 to 1024, got string"));
}

TEST_F(ConfigTest, OverridesAreIgnoredWhenTheFileCannotBeRead) {
  EXPECT_THAT(errorsOf(loadConfig(dir_ / "nope.toml", {"stun.port=70000"})).size(), 1u);
}

const char* const kSecrets[] = {"s3cret-password-alice", "pa55-bob", "0123456789abcdef-rest",
                                "second-rest-secret-rotated"};

Config configWithCredentials() {
  Config config;
  config.turn.users = {{"alice", kSecrets[0]}, {"bob", kSecrets[1]}};
  config.turn.secrets = {kSecrets[2], kSecrets[3]};
  return config;
}

Config nonDefaultConfig() {
  Config config;
  config.server.threads = 3;
  config.log.level = "debug";
  config.log.format = log::Format::Json;
  config.log.moduleLevels = {{"stun", "trace"}, {"app", "off"}};
  config.stun.listen = {ip("192.0.2.10")};
  config.stun.port = 0;
  config.stun.udp = false;
  config.stun.alternateAddress = ip("192.0.2.11");
  config.stun.alternatePort = 4000;
  config.stun.software = "quote \" backslash \\ tab \t caf\xc3\xa9";
  config.stun.tcpIdleTimeoutSeconds = 3600;
  config.stun.tcpMaxConnections = 1;
  config.stun.tcpMaxMessageSize = 548;
  return config;
}

TEST_F(ConfigTest, ToTomlRoundTrips) {
  for (const Config& config : {Config{}, nonDefaultConfig()}) {
    ASSERT_TRUE(config.validate().empty()) << config.validate().toString();
    const std::string text = toToml(config);
    const auto loaded = loadConfig(write(text), {});
    ASSERT_TRUE(loaded) << loaded.error().toString() << text;
    EXPECT_EQ(*loaded, config) << text;
  }
  Config v6;
  v6.stun.listen = {ip("::1"), ip("0.0.0.0")};
  v6.turn.enabled = false;
  const auto loaded = loadConfig(write(toToml(v6)), {});
  ASSERT_TRUE(loaded) << loaded.error().toString();
  EXPECT_EQ(*loaded, v6);
}

TEST_F(ConfigTest, ToTomlPrintsEveryKeyWithAComment) {
  // Every key of every table, each right below a comment line.
  const std::vector<std::string> expected = {"server.threads",
                                             "server.data_dir",
                                             "log.level",
                                             "log.format",
                                             "stun.listen",
                                             "stun.port",
                                             "stun.udp",
                                             "stun.tcp",
                                             "stun.alternate_address",
                                             "stun.alternate_port",
                                             "stun.software",
                                             "stun.tcp_idle_timeout_seconds",
                                             "stun.tcp_max_connections",
                                             "stun.tcp_max_message_size",
                                             "turn.enabled",
                                             "turn.realm",
                                             "turn.users",
                                             "turn.secrets",
                                             "turn.nonce_lifetime_seconds",
                                             "turn.default_lifetime_seconds",
                                             "turn.max_lifetime_seconds",
                                             "turn.permission_lifetime_seconds",
                                             "turn.channel_lifetime_seconds",
                                             "turn.max_allocations",
                                             "turn.max_allocations_per_user",
                                             "turn.max_permissions_per_allocation",
                                             "turn.bandwidth_per_allocation_kbps",
                                             "turn.total_bandwidth_kbps",
                                             "turn.relay_address",
                                             "turn.relay_address_v6",
                                             "turn.external_address",
                                             "turn.external_address_v6",
                                             "turn.relay_port_min",
                                             "turn.relay_port_max",
                                             "turn.allowed_peers",
                                             "turn.denied_peers",
                                             "turn.relay_socket_buffer_bytes",
                                             "turn.unauthenticated_per_second",
                                             "turn.credential_ttl_seconds",
                                             "tls.enabled",
                                             "tls.dtls",
                                             "tls.port",
                                             "tls.cert_file",
                                             "tls.key_file",
                                             "web.listen",
                                             "web.https_port",
                                             "web.http_port",
                                             "web.http_redirect",
                                             "web.public_url",
                                             "web.client_dir",
                                             "web.turn_over_https",
                                             "web.proxy_protocol_from",
                                             "web.max_header_bytes",
                                             "web.max_body_bytes",
                                             "web.max_connections",
                                             "web.header_timeout_seconds",
                                             "web.idle_timeout_seconds",
                                             "web.requests_per_second_per_ip",
                                             "web.request_burst_per_ip",
                                             "web.ws_max_message_bytes",
                                             "web.ws_max_queued_bytes",
                                             "web.ws_ping_interval_seconds",
                                             "web.shutdown_grace_seconds",
                                             "web.client_errors_per_minute",
                                             "auth.session_ttl_seconds",
                                             "auth.invitation_ttl_seconds",
                                             "auth.guest_ttl_seconds",
                                             "auth.setup_ttl_seconds",
                                             "auth.login_max_failures",
                                             "auth.login_window_seconds",
                                             "auth.login_lockout_seconds",
                                             "auth.password_memory_kib",
                                             "auth.password_iterations",
                                             "rooms.max_participants",
                                             "rooms.max_lobby",
                                             "rooms.chat_history",
                                             "rooms.reconnect_grace_seconds",
                                             "deployment.domain",
                                             "deployment.organisation",
                                             "deployment.contact",
                                             "deployment.nodes",
                                             "netcheck.enabled",
                                             "netcheck.sessions_per_minute",
                                             "netcheck.ttl_seconds",
                                             "netcheck.max_kbps",
                                             "netcheck.max_seconds",
                                             "netcheck.probe_port"};
  for (const Config& config : {Config{}, configWithCredentials()}) {
    const std::string text = toToml(config);
    std::vector<std::string> keys;
    std::string table;
    std::string previous;
    std::istringstream lines(text);
    for (std::string line; std::getline(lines, line); previous = line) {
      if (line.starts_with("[")) {
        table = line.substr(1, line.size() - 2);
        continue;
      }
      const auto equals = line.find(" = ");
      if (line.empty() || line[0] == '#' || line[0] == ' ' || line[0] == ']' ||
          equals == std::string::npos) {
        continue;
      }
      keys.push_back(table + "." + line.substr(0, equals));
      EXPECT_EQ(previous.substr(0, 1), "#") << keys.back();
    }
    EXPECT_EQ(keys, expected) << text;
  }
}

TEST_F(ConfigTest, WebSectionsLoadAndValidate) {
  const auto config = loadConfig(
      std::nullopt, {"web.https_port=8443", "web.listen=[\"::1\"]", "auth.login_max_failures=3",
                     "rooms.max_lobby=7", "web.public_url=https://meet.example.com/"});
  ASSERT_TRUE(config) << config.error().toString();
  EXPECT_EQ(config->web.httpsPort, 8443);
  EXPECT_EQ(config->web.listen, std::vector<IpAddress>{*IpAddress::parse("::1")});
  EXPECT_EQ(config->auth.loginMaxFailures, 3u);
  EXPECT_EQ(config->rooms.maxLobby, 7u);
  EXPECT_EQ(config->publicUrl(), "https://meet.example.com");

  EXPECT_EQ(Config{}.publicUrl(), "https://localhost");
  Config testPort;
  testPort.web.httpsPort = 8443;
  EXPECT_EQ(testPort.publicUrl(), "https://localhost:8443");

  const auto bad = loadConfig(
      std::nullopt, {"web.public_url=http://x", "rooms.max_participants=1", "web.http_port=443"});
  ASSERT_FALSE(bad);
  const std::string text = bad.error().toString();
  EXPECT_THAT(text, HasSubstr("web.public_url"));
  EXPECT_THAT(text, HasSubstr("rooms.max_participants"));
  EXPECT_THAT(text, HasSubstr("must differ from web.https_port"));
}

// ---- [netcheck] ----

TEST_F(ConfigTest, NetcheckDefaultsAndKeys) {
  const Config defaults;
  EXPECT_TRUE(defaults.netcheck.enabled);
  EXPECT_EQ(defaults.netcheck.sessionsPerMinute, 6u);
  EXPECT_EQ(defaults.netcheck.ttlSeconds, 300u);
  EXPECT_EQ(defaults.netcheck.maxKbps, 10'000u);
  EXPECT_EQ(defaults.netcheck.maxSeconds, 4u);
  EXPECT_EQ(defaults.netcheck.probePort, 0u);

  const auto config = fileErrors("[netcheck]\nenabled = \"yes\"\n");
  EXPECT_THAT(config, ElementsAre(HasSubstr("netcheck.enabled")));
  const auto loaded =
      loadConfig(std::nullopt, {"netcheck.enabled=false", "netcheck.sessions_per_minute=2",
                                "netcheck.ttl_seconds=60", "netcheck.max_kbps=5000",
                                "netcheck.max_seconds=2", "netcheck.probe_port=40000"});
  ASSERT_TRUE(loaded) << loaded.error().toString();
  EXPECT_FALSE(loaded->netcheck.enabled);
  EXPECT_EQ(loaded->netcheck.sessionsPerMinute, 2u);
  EXPECT_EQ(loaded->netcheck.ttlSeconds, 60u);
  EXPECT_EQ(loaded->netcheck.maxKbps, 5000u);
  EXPECT_EQ(loaded->netcheck.maxSeconds, 2u);
  EXPECT_EQ(loaded->netcheck.probePort, 40000u);
  // toToml prints it back.
  const auto again = loadConfig(write(toToml(*loaded)), {});
  ASSERT_TRUE(again) << again.error().toString();
  EXPECT_EQ(again->netcheck, loaded->netcheck);
}

TEST_F(ConfigTest, NetcheckRangesAndTheAllocationLimit) {
  const auto errors = overrideErrors({"netcheck.sessions_per_minute=0", "netcheck.ttl_seconds=5",
                                      "netcheck.max_seconds=31", "netcheck.probe_port=70000"});
  EXPECT_THAT(
      errors,
      ElementsAre(HasSubstr("netcheck.sessions_per_minute"), HasSubstr("netcheck.ttl_seconds"),
                  HasSubstr("netcheck.max_seconds"), HasSubstr("netcheck.probe_port")));
  // The probe's rate runs through one allocation: above its limit is a config error...
  const auto over =
      overrideErrors({"turn.bandwidth_per_allocation_kbps=8000", "netcheck.max_kbps=9000"});
  ASSERT_EQ(over.size(), 1u);
  EXPECT_THAT(over[0], HasSubstr("netcheck.max_kbps"));
  EXPECT_THAT(over[0], HasSubstr("must not exceed turn.bandwidth_per_allocation_kbps (8000)"));
  // ... equal is fine, and 0 (unlimited) allows any rate.
  EXPECT_TRUE(loadConfig(std::nullopt,
                         {"turn.bandwidth_per_allocation_kbps=8000", "netcheck.max_kbps=8000"}));
  EXPECT_TRUE(loadConfig(std::nullopt,
                         {"turn.bandwidth_per_allocation_kbps=0", "netcheck.max_kbps=1000000"}));
}

TEST_F(ConfigTest, ValidateReportsEveryProblemWithKeys) {
  Config config;
  config.server.threads = 5000;
  config.log.level = "loud";
  config.log.moduleLevels = {{"rtp", "info"}};
  config.stun.listen.clear();
  config.stun.udp = config.stun.tcp = false;
  config.stun.tcpMaxMessageSize = 100;
  const ConfigErrors errors = config.validate();
  std::vector<std::string> keys;
  for (const auto& error : errors.errors) {
    EXPECT_TRUE(error.where.empty());
    keys.push_back(error.key);
  }
  EXPECT_THAT(keys, ElementsAre("server.threads", "log.level", "log.modules.rtp", "stun.listen",
                                "stun.udp", "stun.tcp_max_message_size"));
  EXPECT_THAT(errors.toString(), HasSubstr("log.modules.rtp: unknown module 'rtp'"));
}

// ---- [server] data_dir, [turn], [tls] ----

TEST_F(ConfigTest, TurnAndTlsDefaults) {
  const Config config;
  EXPECT_EQ(config.server.dataDir, "parley-data");
  const TurnConfig& turn = config.turn;
  EXPECT_TRUE(turn.enabled);
  EXPECT_EQ(turn.realm, "parley");
  EXPECT_TRUE(turn.users.empty());
  EXPECT_TRUE(turn.secrets.empty());
  EXPECT_EQ(turn.nonceLifetimeSeconds, 600u);
  EXPECT_EQ(turn.defaultLifetimeSeconds, 600u);
  EXPECT_EQ(turn.maxLifetimeSeconds, 3600u);
  EXPECT_EQ(turn.permissionLifetimeSeconds, 300u);
  EXPECT_EQ(turn.channelLifetimeSeconds, 600u);
  EXPECT_EQ(turn.maxAllocations, 10'000u);
  EXPECT_EQ(turn.maxAllocationsPerUser, 50u);
  EXPECT_EQ(turn.maxPermissionsPerAllocation, 64u);
  EXPECT_EQ(turn.bandwidthPerAllocationKbps, 20'000u);
  EXPECT_FALSE(turn.relayAddress);
  EXPECT_FALSE(turn.relayAddressV6);
  EXPECT_FALSE(turn.externalAddress);
  EXPECT_FALSE(turn.externalAddressV6);
  EXPECT_EQ(turn.relayPortMin, 49152);
  EXPECT_EQ(turn.relayPortMax, 65535);
  EXPECT_TRUE(turn.allowedPeers.empty());
  EXPECT_TRUE(turn.deniedPeers.empty());
  EXPECT_EQ(turn.relaySocketBufferBytes, 1'048'576u);
  EXPECT_EQ(turn.unauthenticatedPerSecond, 10u);
  EXPECT_TRUE(config.tls.enabled);
  EXPECT_TRUE(config.tls.dtls);
  EXPECT_EQ(config.tls.port, 5349);
  EXPECT_EQ(config.tls.certFile, "");
  EXPECT_EQ(config.tls.keyFile, "");
  // The relay binds to the first IPv4 listen address when none is named.
  EXPECT_EQ(config.relayAddressV4(), ip("127.0.0.1"));
}

TEST_F(ConfigTest, ReadsEveryTurnAndTlsKey) {
  const auto config = loadConfig(write(R"(
[server]
data_dir = "/var/lib/parley"
[stun]
listen = ["0.0.0.0", "::"]
[turn]
enabled = true
realm = "example.org"
users = [{ name = "alice", password = "wonderland" }, { password = "b0b", name = "bob" }]
secrets = ["0123456789abcdef", "fedcba9876543210-next"]
nonce_lifetime_seconds = 30
default_lifetime_seconds = 60
max_lifetime_seconds = 86400
permission_lifetime_seconds = 3600
channel_lifetime_seconds = 3600
max_allocations = 1
max_allocations_per_user = 10000
max_permissions_per_allocation = 1000
bandwidth_per_allocation_kbps = 0
relay_address = "192.0.2.1"
relay_address_v6 = "2001:db8::1"
external_address = "203.0.113.1"
external_address_v6 = "2001:db8:1::1"
relay_port_min = 1024
relay_port_max = 1024
allowed_peers = ["127.0.0.0/8", "::1/128", "10.1.2.3"]
denied_peers = ["198.51.100.7/24"]
relay_socket_buffer_bytes = 65536
unauthenticated_per_second = 100000
[tls]
enabled = false
dtls = false
port = 3478
cert_file = "/etc/parley/cert.pem"
key_file = "/etc/parley/key.pem"
)"),
                                 {});
  ASSERT_TRUE(config) << config.error().toString();
  EXPECT_EQ(config->server.dataDir, "/var/lib/parley");
  const TurnConfig& turn = config->turn;
  EXPECT_EQ(turn.realm, "example.org");
  EXPECT_THAT(turn.users, ElementsAre(TurnUser{"alice", "wonderland"}, TurnUser{"bob", "b0b"}));
  EXPECT_THAT(turn.secrets, ElementsAre("0123456789abcdef", "fedcba9876543210-next"));
  EXPECT_EQ(turn.nonceLifetimeSeconds, 30u);
  EXPECT_EQ(turn.defaultLifetimeSeconds, 60u);
  EXPECT_EQ(turn.maxLifetimeSeconds, 86'400u);
  EXPECT_EQ(turn.permissionLifetimeSeconds, 3600u);
  EXPECT_EQ(turn.channelLifetimeSeconds, 3600u);
  EXPECT_EQ(turn.maxAllocations, 1u);
  EXPECT_EQ(turn.maxAllocationsPerUser, 10'000u);
  EXPECT_EQ(turn.maxPermissionsPerAllocation, 1000u);
  EXPECT_EQ(turn.bandwidthPerAllocationKbps, 0u);
  EXPECT_EQ(turn.relayAddress, ip("192.0.2.1"));
  EXPECT_EQ(turn.relayAddressV6, ip("2001:db8::1"));
  EXPECT_EQ(turn.externalAddress, ip("203.0.113.1"));
  EXPECT_EQ(turn.externalAddressV6, ip("2001:db8:1::1"));
  EXPECT_EQ(turn.relayPortMin, 1024);
  EXPECT_EQ(turn.relayPortMax, 1024);
  EXPECT_THAT(turn.allowedPeers, ElementsAre(Cidr{ip("127.0.0.0"), 8}, Cidr{ip("::1"), 128},
                                             Cidr{ip("10.1.2.3"), 32}));
  EXPECT_THAT(turn.deniedPeers, ElementsAre(Cidr{ip("198.51.100.7"), 24}));
  EXPECT_EQ(turn.relaySocketBufferBytes, 65'536u);
  EXPECT_EQ(turn.unauthenticatedPerSecond, 100'000u);
  EXPECT_FALSE(config->tls.enabled);
  EXPECT_FALSE(config->tls.dtls);
  EXPECT_EQ(config->tls.port, 3478);  // may equal stun.port while TLS and DTLS are off
  EXPECT_EQ(config->tls.certFile, "/etc/parley/cert.pem");
  EXPECT_EQ(config->tls.keyFile, "/etc/parley/key.pem");
  EXPECT_EQ(config->relayAddressV4(), ip("192.0.2.1"));
}

TEST_F(ConfigTest, UsersAsArrayOfTables) {
  const auto config = loadConfig(write(R"([[turn.users]]
name = "alice"
password = "pw1"
[[turn.users]]
name = "bob"
password = "pw2"
)"),
                                 {});
  ASSERT_TRUE(config) << config.error().toString();
  EXPECT_THAT(config->turn.users, ElementsAre(TurnUser{"alice", "pw1"}, TurnUser{"bob", "pw2"}));
}

TEST_F(ConfigTest, TurnAndTlsRangesAreChecked) {
  const auto errors = fileErrors(R"([turn]
nonce_lifetime_seconds = 29
default_lifetime_seconds = 3601
max_lifetime_seconds = 86401
permission_lifetime_seconds = 29
channel_lifetime_seconds = 59
max_allocations = 0
max_allocations_per_user = 10001
max_permissions_per_allocation = 0
bandwidth_per_allocation_kbps = -1
relay_port_min = 1023
relay_port_max = 65536
relay_socket_buffer_bytes = 65535
unauthenticated_per_second = 0
[tls]
port = 65536
)");
  EXPECT_THAT(
      errors,
      ElementsAre(
          at(2, 26) + "turn.nonce_lifetime_seconds: expected an integer from 30 to 86400, got 29",
          at(3, 28) + "turn.default_lifetime_seconds: expected an integer from 60 to 3600, got "
                      "3601",
          at(4, 24) + "turn.max_lifetime_seconds: expected an integer from 60 to 86400, got 86401",
          at(5, 31) + "turn.permission_lifetime_seconds: expected an integer from 30 to 3600, got "
                      "29",
          at(6, 28) + "turn.channel_lifetime_seconds: expected an integer from 60 to 3600, got 59",
          at(7, 19) + "turn.max_allocations: expected an integer from 1 to 1000000, got 0",
          at(8, 28) + "turn.max_allocations_per_user: expected an integer from 1 to 10000, got "
                      "10001",
          at(9, 34) + "turn.max_permissions_per_allocation: expected an integer from 1 to 1000, "
                      "got 0",
          at(10, 33) + "turn.bandwidth_per_allocation_kbps: expected an integer from 0 to "
                       "100000000, got -1",
          at(11, 18) + "turn.relay_port_min: expected an integer from 1024 to 65535, got 1023",
          at(12, 18) + "turn.relay_port_max: expected an integer from 1024 to 65535, got 65536",
          at(13, 29) + "turn.relay_socket_buffer_bytes: expected an integer from 65536 to "
                       "67108864, got 65535",
          at(14, 30) + "turn.unauthenticated_per_second: expected an integer from 1 to 100000, "
                       "got 0",
          at(16, 8) + "tls.port: expected an integer from 0 to 65535, got 65536"));
}

TEST_F(ConfigTest, TurnWrongTypes) {
  const auto errors = fileErrors(R"([server]
data_dir = 5
[turn]
enabled = "yes"
realm = 1
users = "alice:pw"
secrets = "0123456789abcdef"
relay_address = 10
allowed_peers = "10.0.0.0/8"
denied_peers = [8]
[tls]
dtls = 1
cert_file = true
certfile = 1
)");
  EXPECT_THAT(
      errors,
      ElementsAre(at(2, 12) + "server.data_dir: expected a string, got integer",
                  at(4, 11) + "turn.enabled: expected a boolean, got string",
                  at(5, 9) + "turn.realm: expected a string, got integer",
                  at(6, 9) + "turn.users: expected an array of tables { name = \"...\", password "
                             "= \"...\" }, got string",
                  at(7, 11) + "turn.secrets: expected an array of strings, got string",
                  at(8, 17) + "turn.relay_address: expected a string, got integer",
                  at(9, 17) + "turn.allowed_peers: expected an array of address range strings, "
                              "got string",
                  at(10, 17) + "turn.denied_peers[0]: expected a string, got integer",
                  at(12, 8) + "tls.dtls: expected a boolean, got integer",
                  at(13, 13) + "tls.cert_file: expected a string, got boolean",
                  at(14, 1) + "unknown key 'tls.certfile' (did you mean 'tls.cert_file'?)"));
}

TEST_F(ConfigTest, UnknownTurnKeySuggestsTheRightOne) {
  EXPECT_THAT(fileErrors("[turn]\nrelam = \"x\"\n"),
              ElementsAre(at(2, 1) + "unknown key 'turn.relam' (did you mean 'turn.realm'?)"));
  EXPECT_THAT(fileErrors("[tsl]\nport = 1\n"),
              ElementsAre(at(1, 1) + "unknown table 'tsl' (did you mean 'tls'?)"));
  EXPECT_THAT(overrideErrors({"turn.secret=[]"}),
              ElementsAre("--set turn.secret: unknown key 'turn.secret' (did you mean "
                          "'turn.secrets'?)"));
}

TEST_F(ConfigTest, CidrErrors) {
  const auto errors = fileErrors(R"([turn]
allowed_peers = ["10.0.0.0/33", "::1/129", "nope/8", "10.0.0.0/", "10.0.0.0/x", "10.0.0.0/-1"]
denied_peers = ["10.0.0.0/8/8", "", "0.0.0.0/0", "::/0"]
)");
  const std::string v4 = "the prefix length must be 0 to 32 for IPv4";
  const std::string bad = "expected ADDRESS/LENGTH, e.g. \"10.0.0.0/8\" or \"::1/128\"";
  EXPECT_THAT(
      errors,
      ElementsAre(at(2, 18) +
                      "turn.allowed_peers[0]: \"10.0.0.0/33\" is not an address "
                      "range: " +
                      v4,
                  at(2, 33) + "turn.allowed_peers[1]: \"::1/129\" is not an address "
                              "range: the prefix length must be 0 to 128 for IPv6",
                  at(2, 44) + "turn.allowed_peers[2]: \"nope/8\" is not an address range: " + bad,
                  at(2, 54) +
                      "turn.allowed_peers[3]: \"10.0.0.0/\" is not an address "
                      "range: " +
                      v4,
                  at(2, 67) +
                      "turn.allowed_peers[4]: \"10.0.0.0/x\" is not an address "
                      "range: " +
                      v4,
                  at(2, 81) +
                      "turn.allowed_peers[5]: \"10.0.0.0/-1\" is not an address "
                      "range: " +
                      v4,
                  at(3, 17) +
                      "turn.denied_peers[0]: \"10.0.0.0/8/8\" is not an address "
                      "range: " +
                      v4,
                  at(3, 33) + "turn.denied_peers[1]: \"\" is not an address range: " + bad));
}

TEST_F(ConfigTest, CidrParse) {
  EXPECT_EQ(Cidr::parse("10.1.2.3/8"), (Cidr{ip("10.1.2.3"), 8}));  // host bits may be set
  EXPECT_EQ(Cidr::parse("0.0.0.0/0"), (Cidr{ip("0.0.0.0"), 0}));
  EXPECT_EQ(Cidr::parse("2001:db8::/32"), (Cidr{ip("2001:db8::"), 32}));
  EXPECT_EQ(Cidr::parse("::1"), (Cidr{ip("::1"), 128}));
  EXPECT_EQ(Cidr::parse("192.0.2.1"), (Cidr{ip("192.0.2.1"), 32}));
  EXPECT_EQ(Cidr::parse("192.0.2.1/32")->toString(), "192.0.2.1/32");
  EXPECT_EQ(Cidr::parse("::ffff:0:0/96")->toString(), "::ffff:0.0.0.0/96");
  for (const char* bad : {"", "/8", "1.2.3.4/33", "1.2.3.4/ 8", "1.2.3.4/0008", "[::1]/128",
                          "::1/200", "10.0.0.0/8 "}) {
    std::string error;
    EXPECT_FALSE(Cidr::parse(bad, &error)) << bad;
    EXPECT_FALSE(error.empty()) << bad;
  }
}

TEST_F(ConfigTest, UsersTableErrors) {
  const auto errors = fileErrors(R"([turn]
users = [
  { name = "alice" },
  { password = "pw" },
  { name = "alice", password = "pw" },
  "bob:pw",
  { name = 7, password = 8 },
  { name = "carol", pasword = "pw", password = "pw" },
  { name = "", password = "" },
  { name = "alice", password = "pw" },
]
)");
  EXPECT_THAT(errors,
              ElementsAre(at(3, 3) + "turn.users[0]: missing 'password'",
                          at(4, 3) + "turn.users[1]: missing 'name'",
                          at(6, 3) + "turn.users[3]: expected a table { name = \"...\", password = "
                                     "\"...\" }, got string",
                          at(7, 12) + "turn.users[4].name: expected a string, got integer",
                          at(7, 26) + "turn.users[4].password: expected a string, got integer",
                          at(8, 21) + "unknown key 'turn.users[5].pasword' (did you mean "
                                      "'turn.users[5].password'?)"));
  // Once the shapes are right, the values are checked: the first pass stops at the shapes.
  EXPECT_THAT(fileErrors(R"([turn]
users = [
  { name = "alice", password = "pw" },
  { name = "", password = "" },
  { name = "alice", password = "pw2" },
  { name = ")" + std::string(513, 'x') +
                         R"(", password = "pw" },
]
)"),
              ElementsAre(at(4, 12) + "turn.users[1].name: must be 1 to 512 bytes, got 0",
                          at(4, 27) + "turn.users[1].password: must not be empty",
                          at(5, 12) + "turn.users[2].name: user \"alice\" is listed twice (also "
                                      "turn.users[0])",
                          at(6, 12) + "turn.users[3].name: must be 1 to 512 bytes, got 513"));
  EXPECT_THAT(overrideErrors({"turn.users=[{name=\"a\"}]"}),
              ElementsAre("--set turn.users: turn.users[0]: missing 'password'"));
  EXPECT_TRUE(loadConfig(
      std::nullopt, {"turn.users=[{name=\"" + std::string(512, 'x') + "\", password=\"p\"}]"}));
}

TEST_F(ConfigTest, SecretsErrorsNeverShowTheSecret) {
  const auto errors = fileErrors(R"([turn]
secrets = ["short-secret", "0123456789abcdef", "caf\u00e9caf\u00e9caf\u00e9xyz", 42]
)");
  EXPECT_THAT(errors, ElementsAre(at(2, 82) + "turn.secrets[3]: expected a string, got integer"));
  const auto shortOnes = fileErrors(R"([turn]
secrets = ["short-secret", "0123456789abcdef", "caf\u00e9caf\u00e9caf\u00e9xyz"]
)");
  EXPECT_THAT(shortOnes,
              ElementsAre(at(2, 12) + "turn.secrets[0]: must be at least 16 characters, got 12",
                          at(2, 48) + "turn.secrets[2]: must be at least 16 characters, got 15"));
  for (const auto& line : shortOnes) {
    EXPECT_THAT(line, ::testing::Not(HasSubstr("short-secret")));
    EXPECT_THAT(line, ::testing::Not(HasSubstr("caf")));
  }
}

TEST_F(ConfigTest, TurnCrossFieldRules) {
  EXPECT_THAT(fileErrors("[turn]\ndefault_lifetime_seconds = 1200\nmax_lifetime_seconds = 900\n"),
              ElementsAre(at(3, 24) + "turn.max_lifetime_seconds: must be at least "
                                      "turn.default_lifetime_seconds (1200), got 900"));
  EXPECT_TRUE(loadConfig(write("[turn]\ndefault_lifetime_seconds = 3600\n"), {}));
  // The default max (3600) against a file value: points at the value in the file.
  EXPECT_THAT(fileErrors("[turn]\ndefault_lifetime_seconds = 3600\nmax_lifetime_seconds = 60\n"),
              ElementsAre(at(3, 24) + "turn.max_lifetime_seconds: must be at least "
                                      "turn.default_lifetime_seconds (3600), got 60"));
  EXPECT_THAT(fileErrors("[turn]\nrelay_port_min = 60000\nrelay_port_max = 50000\n"),
              ElementsAre(at(2, 18) + "turn.relay_port_min: must not be greater than "
                                      "turn.relay_port_max (60000 > 50000)"));
  EXPECT_THAT(overrideErrors({"turn.relay_port_max=2000"}),
              ElementsAre("--set turn.relay_port_max: turn.relay_port_min: must not be greater "
                          "than turn.relay_port_max (49152 > 2000)"));
  EXPECT_THAT(fileErrors("[turn]\nrealm = \"\"\n"),
              ElementsAre(at(2, 9) + "turn.realm: must be 1 to 127 characters and at most 763 "
                                     "bytes (RFC 8489 section 14.9)"));
  EXPECT_TRUE(loadConfig(std::nullopt, {"turn.realm=\"" + std::string(127, 'r') + "\""}));
  EXPECT_EQ(overrideErrors({"turn.realm=\"" + std::string(128, 'r') + "\""}).size(), 1u);
  EXPECT_THAT(fileErrors("[server]\ndata_dir = \"\"\n"),
              ElementsAre(at(2, 12) + "server.data_dir: must not be empty (\".\" is the working "
                                      "directory)"));
}

TEST_F(ConfigTest, RelayAddressRules) {
  // 0.0.0.0 cannot be the relay address: one must be named, or TURN turned off.
  EXPECT_THAT(fileErrors("[stun]\nlisten = [\"::1\", \"0.0.0.0\", \"192.0.2.1\"]\n"),
              ElementsAre(at(2, 10) + "turn.relay_address: required when turn.enabled is true "
                                      "and the first IPv4 stun.listen address is 0.0.0.0: name "
                                      "the IPv4 address relay sockets bind to (or set "
                                      "turn.enabled = false)"));
  EXPECT_THAT(overrideErrors({"stun.listen=[\"::1\"]"}),
              ElementsAre("--set stun.listen: turn.relay_address: required when turn.enabled is "
                          "true and stun.listen has no IPv4 address: name the IPv4 address relay "
                          "sockets bind to, or set turn.relay_address_v6 (or set turn.enabled = "
                          "false)"));
  EXPECT_TRUE(loadConfig(std::nullopt, {"stun.listen=[\"0.0.0.0\"]", "turn.enabled=false"}));
  EXPECT_TRUE(loadConfig(std::nullopt, {"stun.listen=[\"::1\"]", "turn.relay_address_v6=::1"}));
  {
    const auto config =
        loadConfig(std::nullopt, {"stun.listen=[\"0.0.0.0\"]", "turn.relay_address=192.0.2.5"});
    ASSERT_TRUE(config) << config.error().toString();
    EXPECT_EQ(config->relayAddressV4(), ip("192.0.2.5"));
  }
  {
    const auto config = loadConfig(std::nullopt, {"stun.listen=[\"::1\", \"192.0.2.7\"]"});
    ASSERT_TRUE(config) << config.error().toString();
    EXPECT_EQ(config->relayAddressV4(), ip("192.0.2.7"));
  }
  EXPECT_THAT(
      fileErrors(R"([turn]
relay_address = "2001:db8::1"
relay_address_v6 = "192.0.2.1"
external_address = "0.0.0.0"
external_address_v6 = "2001:db8::9"
)"),
      ElementsAre(at(2, 17) + "turn.relay_address: 2001:db8::1 is not an IPv4 address (IPv6 "
                              "addresses go in turn.relay_address_v6)",
                  at(3, 20) + "turn.relay_address_v6: 192.0.2.1 is not an IPv6 address (IPv4 "
                              "addresses go in turn.relay_address)",
                  at(4, 20) + "turn.external_address: 0.0.0.0 is not a concrete address"));
  EXPECT_THAT(fileErrors("[turn]\nexternal_address_v6 = \"2001:db8::9\"\n"),
              ElementsAre(at(2, 23) + "turn.external_address_v6: needs turn.relay_address_v6 to "
                                      "advertise it for"));
  EXPECT_THAT(fileErrors("[turn]\nrelay_address = \"0.0.0.0\"\nrelay_address_v6 = \"::\"\n"),
              ElementsAre(at(2, 17) + "turn.relay_address: 0.0.0.0 is not a concrete address",
                          at(3, 20) + "turn.relay_address_v6: :: is not a concrete address"));
  EXPECT_THAT(overrideErrors({"stun.listen=[\"0.0.0.0\"]", "turn.enabled=false",
                              "turn.external_address=203.0.113.1"}),
              ElementsAre("--set turn.external_address: needs an IPv4 relay address "
                          "(turn.relay_address) to advertise it for"));
  EXPECT_TRUE(loadConfig(std::nullopt, {"turn.relay_address=\"\"",
                                        "turn.external_address="
                                        "\"203.0.113.1\""}));
}

TEST_F(ConfigTest, TlsRules) {
  EXPECT_THAT(fileErrors("[tls]\ncert_file = \"c.pem\"\n"),
              ElementsAre(at(2, 13) + "tls.key_file: must be set when tls.cert_file is (set both "
                                      "or neither)"));
  EXPECT_THAT(overrideErrors({"tls.key_file=k.pem"}),
              ElementsAre("--set tls.key_file: tls.cert_file: must be set when tls.key_file is "
                          "(set both or neither)"));
  EXPECT_THAT(fileErrors("[stun]\nport = 5000\n[tls]\nport = 5000\n"),
              ElementsAre(at(4, 8) + "tls.port: must differ from stun.port (both are 5000)"));
  EXPECT_TRUE(loadConfig(std::nullopt, {"stun.port=0", "tls.port=0"}));  // both free ports
  EXPECT_TRUE(loadConfig(std::nullopt, {"tls.port=3478", "tls.enabled=false", "tls.dtls=false"}));
}

Config turnConfig() {
  Config config;
  config.server.dataDir = "/var/lib/parley data";
  TurnConfig& turn = config.turn;
  turn.realm = "r\xc3\xa9\"alm";
  turn.nonceLifetimeSeconds = 30;
  turn.defaultLifetimeSeconds = 3600;
  turn.maxLifetimeSeconds = 86'400;
  turn.permissionLifetimeSeconds = 3600;
  turn.channelLifetimeSeconds = 60;
  turn.maxAllocations = 1'000'000;
  turn.maxAllocationsPerUser = 1;
  turn.maxPermissionsPerAllocation = 1;
  turn.bandwidthPerAllocationKbps = 0;
  turn.relayAddress = ip("192.0.2.1");
  turn.relayAddressV6 = ip("2001:db8::1");
  turn.externalAddress = ip("203.0.113.1");
  turn.externalAddressV6 = ip("2001:db8:1::1");
  turn.relayPortMin = 1024;
  turn.relayPortMax = 1024;
  turn.allowedPeers = {{ip("127.0.0.1"), 8}, {ip("::1"), 128}};
  turn.deniedPeers = {{ip("0.0.0.0"), 0}};
  turn.relaySocketBufferBytes = 67'108'864;
  turn.unauthenticatedPerSecond = 1;
  config.tls = {false, false, 0, "/etc/parley/c.pem", "/etc/parley/k.pem"};
  return config;
}

TEST_F(ConfigTest, ToTomlRoundTripsTurnAndTls) {
  for (Config config : {turnConfig(), Config{}}) {
    config.turn.enabled = !config.turn.enabled;
    for (int i = 0; i < 2; ++i) {
      config.turn.enabled = !config.turn.enabled;
      ASSERT_TRUE(config.validate().empty()) << config.validate().toString();
      const std::string text = toToml(config);
      const auto loaded = loadConfig(write(text), {});
      ASSERT_TRUE(loaded) << loaded.error().toString() << text;
      EXPECT_EQ(*loaded, config) << text;
    }
  }
}

TEST_F(ConfigTest, ToTomlRedactsPasswordsAndSecrets) {
  const Config config = configWithCredentials();
  ASSERT_TRUE(config.validate().empty()) << config.validate().toString();
  const std::string text = toToml(config);
  for (const char* secret : kSecrets) {
    EXPECT_THAT(text, ::testing::Not(HasSubstr(secret))) << text;
  }
  EXPECT_THAT(text, HasSubstr("users = [\n  { name = \"alice\", password = \"<redacted>\" },\n"
                              "  { name = \"bob\", password = \"<redacted>\" },\n]\n"));
  EXPECT_THAT(text, HasSubstr("secrets = [\"<redacted>\", \"<redacted>\"]\n"));
  EXPECT_THAT(text, HasSubstr("passwords are not printed"));
  // Reading the printed text back names every placeholder instead of using it as a password.
  path_ = write(text);
  const auto errors = errorsOf(loadConfig(path_, {}));
  ASSERT_EQ(errors.size(), 4u);
  EXPECT_THAT(errors[0], HasSubstr("turn.users[0].password: is the placeholder \"<redacted>\" "
                                   "that 'parley config print' writes; put the real password "
                                   "here"));
  EXPECT_THAT(errors[3], HasSubstr("turn.secrets[1]: is the placeholder"));
  // Names, the rest of the config and its shape survive.
  Config redacted = config;
  for (auto& user : redacted.turn.users)
    user.password = std::string(kRedacted);
  for (auto& secret : redacted.turn.secrets)
    secret = std::string(kRedacted);
  EXPECT_EQ(toToml(redacted), text);
}

TEST_F(ConfigTest, NoErrorMessageShowsAPasswordOrSecret) {
  // Every way a credential can be wrong, from the file and from overrides.
  const std::string file = std::string(R"([turn]
secrets = ["s3cret", "0123456789abcdef-rest", "0123456789abcdef-rest"]
users = [{ name = "alice", password = "s3cret-password-alice", extra = "s3cret-x" },
         { name = "alice", password = "s3cret-password-alice" }]
realm = ""
)");
  std::vector<std::string> all = fileErrors(file);
  const auto overrides = overrideErrors({"turn.secrets=[\"s3cret\"]",
                                         "turn.users=[{name=\"\", password=\"s3cret-pw\"}]",
                                         "turn.secrets=s3cret-bare",
                                         "turn.users=[{name=\"x\", password=\"s3cret-pw\"}, "
                                         "{name=\"x\", password=\"s3cret-pw\"}]"});
  all.insert(all.end(), overrides.begin(), overrides.end());
  const auto duplicate = fileErrors(R"([turn]
users = [{ name = "alice", password = "s3cret-one" }, { name = "alice", password = "s3cret-two" }]
secrets = ["s3cret-short"]
)");
  all.insert(all.end(), duplicate.begin(), duplicate.end());
  ASSERT_GE(all.size(), 6u);
  for (const auto& line : all) {
    EXPECT_THAT(line, ::testing::Not(HasSubstr("s3cret"))) << line;
  }
}

TEST_F(ConfigTest, ValidateReportsTurnAndTlsProblems) {
  Config config;
  config.server.dataDir.clear();
  config.stun.listen = {ip("0.0.0.0")};
  config.turn.realm.clear();
  config.turn.users = {{"", "pw"}};
  config.turn.secrets = {"short"};
  config.turn.maxLifetimeSeconds = 60;
  config.turn.relayPortMin = 80;
  config.turn.allowedPeers = {{ip("10.0.0.0"), 33}};
  config.turn.deniedPeers = {{ip("::"), 129}};
  config.turn.bandwidthPerAllocationKbps = 100'000'001;
  config.tls.certFile = "c.pem";
  config.tls.port = 3478;
  std::vector<std::string> keys;
  for (const auto& error : config.validate().errors)
    keys.push_back(error.key);
  EXPECT_THAT(keys,
              ElementsAre("server.data_dir", "turn.realm", "turn.users[0].name", "turn.secrets[0]",
                          "turn.max_lifetime_seconds", "turn.bandwidth_per_allocation_kbps",
                          "turn.relay_address", "turn.relay_port_min", "turn.allowed_peers[0]",
                          "turn.denied_peers[0]", "tls.key_file", "tls.port"));
}

// ---- [deployment] ----

TEST_F(ConfigTest, DeploymentDefaults) {
  const Config config;
  EXPECT_EQ(config.deployment.domain, "");
  EXPECT_EQ(config.deployment.organisation, "");
  EXPECT_EQ(config.deployment.contact, "");
  EXPECT_TRUE(config.deployment.nodes.empty());
  EXPECT_EQ(config.deploymentDomain(), "localhost");
}

TEST_F(ConfigTest, ReadsTheDeploymentSection) {
  const auto tables = loadConfig(write(R"([web]
public_url = "https://Meet.Example.com:8443/"
[deployment]
domain = "meet.example.com"
organisation = "Example Bank"
contact = "it-support@example.com"
[[deployment.nodes]]
name = "main"
region = "eu-central"
addresses = ["203.0.113.10", "2001:db8:10::/64"]
[[deployment.nodes]]
name = "turn-dub"
role = "turn"
addresses = ["192.0.2.128/26"]
)"),
                                 {});
  ASSERT_TRUE(tables) << tables.error().toString();
  const DeploymentConfig& deployment = tables->deployment;
  EXPECT_EQ(deployment.domain, "meet.example.com");
  EXPECT_EQ(deployment.organisation, "Example Bank");
  EXPECT_EQ(deployment.contact, "it-support@example.com");
  ASSERT_EQ(deployment.nodes.size(), 2u);
  EXPECT_EQ(deployment.nodes[0],
            (DeploymentNode{"main",
                            NodeRole::Main,
                            "eu-central",
                            {{ip("203.0.113.10"), 32}, {ip("2001:db8:10::"), 64}}}));
  EXPECT_EQ(deployment.nodes[1],
            (DeploymentNode{"turn-dub", NodeRole::Turn, "", {{ip("192.0.2.128"), 26}}}));
  EXPECT_EQ(tables->deploymentDomain(), "meet.example.com");
}

TEST_F(ConfigTest, DeploymentDomainDefaultsToThePublicUrlHost) {
  const auto named = loadConfig(std::nullopt, {"web.public_url=\"https://Meet.Example.com:8443\""});
  ASSERT_TRUE(named) << named.error().toString();
  EXPECT_EQ(named->deploymentDomain(), "meet.example.com");
  for (const char* url : {"https://203.0.113.10", "https://[2001:db8::1]:8443"}) {
    const auto address = loadConfig(std::nullopt, {std::string("web.public_url=\"") + url + "\""});
    ASSERT_TRUE(address) << address.error().toString();
    EXPECT_EQ(address->deploymentDomain(), "") << url;
  }
  // Without a public URL the domain may be named here (e.g. on the machine that prints the page).
  const auto own = loadConfig(std::nullopt, {"deployment.domain=\"meet.example.com\""});
  ASSERT_TRUE(own) << own.error().toString();
  EXPECT_EQ(own->deploymentDomain(), "meet.example.com");
}

TEST_F(ConfigTest, DeploymentValueErrors) {
  const auto errors = fileErrors(R"([web]
public_url = "https://meet.example.com"
[deployment]
domain = "*.example.com"
organisation = "line\nbreak"
nodes = [
  { name = "main node", role = "turn", region = "eu", addresses = ["203.0.113.10"] },
  { name = "b", role = "turn", addresses = ["198.51.100.5/28", "0.0.0.0/0", "2001:db8::/8"] },
  { name = "b", role = "media", addresses = [] },
]
)");
  EXPECT_THAT(errors,
              ElementsAre(at(4, 10) + "deployment.domain: expected one domain name like "
                                      "\"meet.example.com\" (no wildcard, scheme, port or path), "
                                      "got \"*.example.com\"",
                          at(5, 16) + "deployment.organisation: must be at most 200 characters "
                                      "without line breaks or other control characters",
                          at(6, 9) + "deployment.nodes: needs a node with role = \"main\": the "
                                     "one web.public_url reaches",
                          at(7, 12) + "deployment.nodes[0].name: must be 1 to 64 letters, digits, "
                                      "'.', '_' or '-', got \"main node\"",
                          at(8, 45) + "deployment.nodes[1].addresses[0]: 198.51.100.5/28 has host "
                                      "bits set: did you mean 198.51.100.0/28?",
                          at(8, 64) + "deployment.nodes[1].addresses[1]: 0.0.0.0/0 is not a node's "
                                      "address: give its addresses, or a range of /8 or narrower "
                                      "for IPv4",
                          at(8, 77) + "deployment.nodes[1].addresses[2]: 2001:db8::/8 is not a "
                                      "node's address: give its addresses, or a range of /16 or "
                                      "narrower for IPv6",
                          at(9, 12) + "deployment.nodes[2].name: node \"b\" is listed twice (also "
                                      "deployment.nodes[1])",
                          at(9, 45) + "deployment.nodes[2].addresses: must list at least one "
                                      "address or range"));

  EXPECT_THAT(fileErrors("[web]\npublic_url = \"https://meet.example.com\"\n[deployment]\n"
                         "domain = \"other.example.com\"\n"),
              ElementsAre(at(4, 10) + "deployment.domain: \"other.example.com\" differs from the "
                                      "host of web.public_url (\"meet.example.com\"), which is "
                                      "the name browsers use; leave deployment.domain empty or "
                                      "make them agree"));
  EXPECT_THAT(overrideErrors({"deployment.domain=\"203.0.113.10\""}),
              ElementsAre("--set deployment.domain: \"203.0.113.10\" is an address, not a domain "
                          "name; leave deployment.domain empty and list addresses in "
                          "deployment.nodes"));
  for (const char* bad : {"https://meet.example.com", "meet.example.com:443", "-x.example.com",
                          "a..b", "meet.example.com."}) {
    EXPECT_EQ(overrideErrors({std::string("deployment.domain=\"") + bad + "\""}).size(), 1u) << bad;
  }
  EXPECT_TRUE(loadConfig(std::nullopt, {"deployment.domain=\"MEET.example.com\"",
                                        "web.public_url=\"https://meet.example.COM\""}));
}

TEST_F(ConfigTest, DeploymentNodeShapeErrors) {
  const auto errors = fileErrors(R"([deployment]
nodes = [
  { name = "main", role = "edge", addresses = ["203.0.113.10"] },
  { name = "a", adresses = ["203.0.113.11"] },
  "main",
  { name = 7, role = "main", region = 3, addresses = "203.0.113.12" },
  { name = "c", addresses = ["203.0.113.300", 5] },
]
)");
  EXPECT_THAT(
      errors,
      ElementsAre(at(3, 27) + "deployment.nodes[0].role: expected one of \"main\", \"failover\", "
                              "\"turn\", \"media\", got \"edge\"",
                  at(4, 3) + "deployment.nodes[1]: missing 'addresses'",
                  at(4, 17) + "unknown key 'deployment.nodes[1].adresses' (did you mean "
                              "'deployment.nodes[1].addresses'?)",
                  at(5, 3) + "deployment.nodes[2]: expected a table { name = \"...\", role = "
                             "\"...\", region = \"...\", addresses = [...] }, got string",
                  at(6, 12) + "deployment.nodes[3].name: expected a string, got integer",
                  at(6, 39) + "deployment.nodes[3].region: expected a string, got integer",
                  at(6, 54) + "deployment.nodes[3].addresses: expected an array of address or "
                              "range strings, got string",
                  at(7, 30) + "deployment.nodes[4].addresses[0]: \"203.0.113.300\" is not an "
                              "address range: expected ADDRESS/LENGTH, e.g. \"10.0.0.0/8\" or "
                              "\"::1/128\"",
                  at(7, 47) + "deployment.nodes[4].addresses[1]: expected a string, got integer"));
  EXPECT_THAT(overrideErrors({"deployment.nodes=[{name=\"a\"}]"}),
              ElementsAre("--set deployment.nodes: deployment.nodes[0]: missing 'addresses'"));
  EXPECT_THAT(overrideErrors({"deployment.nodes=\"main\""}),
              ElementsAre("--set deployment.nodes: expected an array of tables { name = \"...\", "
                          "role = \"...\", addresses = [...] }, got string"));
}

TEST_F(ConfigTest, ToTomlRoundTripsTheDeployment) {
  Config config;
  config.web.publicUrl = "https://meet.example.com";
  config.deployment.domain = "meet.example.com";
  config.deployment.organisation = "Caf\xc3\xa9 \"Bank\"";
  config.deployment.contact = "it@example.com";
  config.deployment.nodes = {
      {"main", NodeRole::Main, "eu-central", {{ip("203.0.113.10"), 32}, {ip("2001:db8::"), 64}}},
      {"standby", NodeRole::Failover, "", {{ip("198.51.100.0"), 28}}},
      {"relay", NodeRole::Turn, "eu-west", {{ip("192.0.2.1"), 32}}},
      {"sfu", NodeRole::Media, "", {{ip("192.0.2.2"), 32}}},
  };
  ASSERT_TRUE(config.validate().empty()) << config.validate().toString();
  const std::string text = toToml(config);
  EXPECT_THAT(text, HasSubstr("  { name = \"main\", role = \"main\", region = \"eu-central\", "
                              "addresses = [\"203.0.113.10/32\", \"2001:db8::/64\"] },\n"));
  const auto loaded = loadConfig(write(text), {});
  ASSERT_TRUE(loaded) << loaded.error().toString() << text;
  EXPECT_EQ(*loaded, config) << text;
}

TEST_F(ConfigTest, ErrorToString) {
  EXPECT_EQ((ConfigError{"f.toml:1:2", "stun.port", "bad"}).toString(),
            "f.toml:1:2: stun.port: bad");
  EXPECT_EQ((ConfigError{"--set stun.port", "stun.port", "bad"}).toString(),
            "--set stun.port: bad");
  EXPECT_EQ((ConfigError{"", "stun.port", "bad"}).toString(), "stun.port: bad");
  EXPECT_EQ((ConfigError{"", "", "cannot read x"}).toString(), "cannot read x");
}

TEST_F(ConfigTest, TomlQuote) {
  EXPECT_EQ(tomlQuote("plain"), "\"plain\"");
  EXPECT_EQ(tomlQuote("a\"b\\c\nd\x01"), "\"a\\\"b\\\\c\\nd\\u0001\"");
}

TEST_F(ConfigTest, ExampleFileInDocsLoads) {
  const fs::path example = fs::path(PARLEY_SOURCE_DIR) / "docs" / "parley.example.toml";
  const auto config = loadConfig(example, {});
  ASSERT_TRUE(config) << config.error().toString();
  EXPECT_EQ(config->stun.port, 3478);
}

// resolveConfigPath reads the environment and the working directory, so it restores both.
class ResolveConfigPathTest : public ConfigTest {
 protected:
  void SetUp() override {
    ConfigTest::SetUp();
    previousDir_ = fs::current_path();
    fs::current_path(dir_);
    if (const char* value = std::getenv("PARLEY_CONFIG")) previousEnv_ = value;
    ::unsetenv("PARLEY_CONFIG");
  }
  void TearDown() override {
    fs::current_path(previousDir_);
    if (previousEnv_) {
      ::setenv("PARLEY_CONFIG", previousEnv_->c_str(), 1);
    } else {
      ::unsetenv("PARLEY_CONFIG");
    }
    ConfigTest::TearDown();
  }
  fs::path previousDir_;
  std::optional<std::string> previousEnv_;
};

TEST_F(ResolveConfigPathTest, NothingMeansDefaults) {
  EXPECT_EQ(resolveConfigPath(std::nullopt), std::nullopt);
}

TEST_F(ResolveConfigPathTest, ParleyTomlInWorkingDirectory) {
  write("");
  EXPECT_EQ(resolveConfigPath(std::nullopt), fs::path("parley.toml"));
}

TEST_F(ResolveConfigPathTest, EnvironmentBeatsWorkingDirectory) {
  write("");
  ::setenv("PARLEY_CONFIG", "/etc/parley/parley.toml", 1);
  EXPECT_EQ(resolveConfigPath(std::nullopt), fs::path("/etc/parley/parley.toml"));
  ::setenv("PARLEY_CONFIG", "", 1);  // empty is the same as unset
  EXPECT_EQ(resolveConfigPath(std::nullopt), fs::path("parley.toml"));
}

TEST_F(ResolveConfigPathTest, ExplicitFileBeatsEverything) {
  write("");
  ::setenv("PARLEY_CONFIG", "/etc/parley/parley.toml", 1);
  EXPECT_EQ(resolveConfigPath(fs::path("mine.toml")), fs::path("mine.toml"));
}

}  // namespace
}  // namespace parley::config
