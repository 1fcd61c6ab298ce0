#include <cstdlib>
#include <filesystem>
#include <fstream>
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
  const auto config = loadConfig(write("[stun]\nlisten = [\"::1\", \"0.0.0.0\"]\n"), {});
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
      fileErrors("verbose = true\n[turn]\nrealm = \"x\"\n[log.modules]\nstnu = \"debug\"\n");
  EXPECT_THAT(errors, ElementsAre(at(1, 1) + "unknown key 'verbose'",
                                  at(2, 1) + "unknown table 'turn'",  // no 'stun': two edits
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
      std::nullopt, {"stun.listen=[\"2001:db8::1\"]", "stun.alternate_address=2001:db8::2"});
  ASSERT_TRUE(config) << config.error().toString();
  EXPECT_EQ(config->stun.alternateAddress, ip("2001:db8::2"));
}

TEST_F(ConfigTest, DuplicateAndEmptyListen) {
  EXPECT_THAT(fileErrors("[stun]\nlisten = [\"::1\", \"::1\"]\n"),
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
  const auto config = loadConfig(
      file, {"stun.port=4001", "stun.listen=[\"0.0.0.0\", \"::\"]", "log.level=\"debug\"",
             "server.threads=2", "log.modules.net=trace", "stun.port=4002"});
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
  const auto loaded = loadConfig(write(toToml(v6)), {});
  ASSERT_TRUE(loaded) << loaded.error().toString();
  EXPECT_EQ(*loaded, v6);
}

TEST_F(ConfigTest, ToTomlPrintsEveryKeyWithAComment) {
  const std::string text = toToml(Config{});
  for (const char* key :
       {"threads", "level", "format", "listen", "port", "udp", "tcp", "alternate_address",
        "alternate_port", "software", "tcp_idle_timeout_seconds", "tcp_max_connections",
        "tcp_max_message_size"}) {
    const auto at = text.find("\n" + std::string(key) + " = ");
    ASSERT_NE(at, std::string::npos) << key;
    const auto previousLine = text.rfind('\n', at - 1);
    EXPECT_EQ(text[previousLine + 1], '#') << key;
  }
  for (const char* table : {"[server]", "[log]", "[log.modules]", "[stun]"}) {
    EXPECT_THAT(text, HasSubstr(table));
  }
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
