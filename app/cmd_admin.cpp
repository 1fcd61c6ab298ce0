// parley admin: create advisors, rooms and invitation links from a shell, on the same data
// directory (SQLite in WAL mode, so it works while `parley serve` runs).
#include <iostream>
#include <memory>
#include <string>

#include <termios.h>
#include <unistd.h>

#include <parley/api/platform.hpp>
#include <parley/auth/auth.hpp>
#include <parley/store/store.hpp>

#include "commands.hpp"

namespace parley::app {
namespace {

std::int64_t nowSeconds() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// The config the admin commands share with `parley serve`: data_dir, public_url, [auth].
std::optional<config::Config> loadAdminConfig(const ConfigFlags& flags) {
  auto config = config::loadConfig(
      config::resolveConfigPath(flags.configFile.empty()
                                    ? std::nullopt
                                    : std::optional<std::filesystem::path>(flags.configFile)),
      toOverrides(flags));
  if (!config) {
    printErrors(config.error());
    return std::nullopt;
  }
  return std::move(*config);
}

std::unique_ptr<store::Store> openStore(const config::Config& config) {
  std::filesystem::create_directories(config.server.dataDir);
  return store::Store::open(databasePath(config));
}

// One line from stdin; on a terminal without echo.
std::string readSecretLine(const char* prompt) {
  const bool terminal = isatty(STDIN_FILENO) != 0;
  termios saved{};
  if (terminal) {
    std::cerr << prompt << std::flush;
    tcgetattr(STDIN_FILENO, &saved);
    termios quiet = saved;
    quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO);
    tcsetattr(STDIN_FILENO, TCSANOW, &quiet);
  }
  std::string line;
  std::getline(std::cin, line);
  if (terminal) {
    tcsetattr(STDIN_FILENO, TCSANOW, &saved);
    std::cerr << '\n';
  }
  if (!line.empty() && line.back() == '\r') line.pop_back();
  return line;
}

struct AdvisorArgs {
  ConfigFlags config;
  std::string username;
  std::string displayName;
  bool passwordStdin = false;
};

int createAdvisor(const AdvisorArgs& args) {
  const auto config = loadAdminConfig(args.config);
  if (!config) return kExitUsage;
  std::string password;
  if (args.passwordStdin || isatty(STDIN_FILENO) == 0) {
    password = readSecretLine("");
  } else {
    password = readSecretLine("Password: ");
    if (readSecretLine("Repeat password: ") != password) {
      std::cerr << "parley: the passwords differ\n";
      return kExitUsage;
    }
  }
  const auto policy = passwordPolicy(*config);
  if (auto problem = auth::checkPasswordPolicy(password, policy)) {
    std::cerr << "parley: " << *problem << '\n';
    return kExitUsage;
  }
  auto store = openStore(*config);
  const std::string displayName = args.displayName.empty() ? args.username : args.displayName;
  const auto advisor = store->createAdvisor(args.username, displayName,
                                            auth::hashPassword(password, policy), nowSeconds());
  if (!advisor) {
    std::cerr << "parley: an advisor named '" << args.username << "' already exists\n";
    return kExitRuntime;
  }
  std::cout << "advisor " << advisor->username << " created\n";
  return kExitOk;
}

struct RoomArgs {
  ConfigFlags config;
  std::string name;
  std::string advisor;
};

int createRoom(const RoomArgs& args) {
  const auto config = loadAdminConfig(args.config);
  if (!config) return kExitUsage;
  auto store = openStore(*config);
  const auto advisor = store->findAdvisorByUsername(args.advisor);
  if (!advisor) {
    std::cerr << "parley: there is no advisor named '" << args.advisor << "'\n";
    return kExitRuntime;
  }
  const auto room = store->createRoom(auth::randomToken(16), advisor->id, args.name, nowSeconds());
  store->appendAudit(room.id, room.createdAt, advisor->username, "created", room.name, "admin cli");
  std::cout << room.id << '\n';
  return kExitOk;
}

struct InviteArgs {
  ConfigFlags config;
  std::string room;
  long long expiresIn = 0;
  bool singleUse = false;
};

int invite(const InviteArgs& args) {
  const auto config = loadAdminConfig(args.config);
  if (!config) return kExitUsage;
  auto store = openStore(*config);
  if (!store->findRoom(args.room)) {
    std::cerr << "parley: there is no room '" << args.room
              << "' ('parley admin create-room' makes one)\n";
    return kExitRuntime;
  }
  const auth::TokenSigner signer({auth::loadOrCreateKey(tokenKeyPath(*config))});
  const std::int64_t now = nowSeconds();
  const std::int64_t lifetime =
      args.expiresIn > 0 ? args.expiresIn : config->auth.invitationTtlSeconds;
  const auto invitation = api::Platform::createInvitation(
      *store, signer, config->publicUrl(), args.room, now, now + lifetime, args.singleUse);
  store->appendAudit(args.room, now, "admin", "invited", invitation.id,
                     args.singleUse ? "single-use, admin cli" : "admin cli");
  std::cout << invitation.url << '\n';
  return kExitOk;
}

}  // namespace

void addAdminCommands(CLI::App& app, Action& run) {
  CLI::App* admin = app.add_subcommand("admin", "Create advisors, rooms and invitation links");
  admin->require_subcommand(1);

  auto advisor = std::make_shared<AdvisorArgs>();
  CLI::App* createAdvisorCommand =
      admin->add_subcommand("create-advisor", "Create an advisor account (password from stdin)");
  createAdvisorCommand->add_option("USERNAME", advisor->username, "Login name")->required();
  createAdvisorCommand->add_option("--display-name", advisor->displayName,
                                   "Name shown to customers (default: the username)");
  createAdvisorCommand->add_flag("--password-stdin", advisor->passwordStdin,
                                 "Read the password from stdin (one line) without prompting");
  addConfigFlags(*createAdvisorCommand, advisor->config);
  createAdvisorCommand->callback(
      [&run, advisor] { run = [advisor] { return createAdvisor(*advisor); }; });

  auto room = std::make_shared<RoomArgs>();
  CLI::App* createRoomCommand =
      admin->add_subcommand("create-room", "Create a room; prints its id");
  createRoomCommand->add_option("NAME", room->name, "Room name")->required();
  createRoomCommand->add_option("--advisor", room->advisor, "Username of the room's advisor")
      ->required();
  addConfigFlags(*createRoomCommand, room->config);
  createRoomCommand->callback([&run, room] { run = [room] { return createRoom(*room); }; });

  auto invitation = std::make_shared<InviteArgs>();
  CLI::App* inviteCommand =
      admin->add_subcommand("invite", "Create an invitation link for a room; prints the link");
  inviteCommand->add_option("ROOM", invitation->room, "Room id")->required();
  inviteCommand
      ->add_option("--expires-in", invitation->expiresIn,
                   "Validity in seconds (default: auth.invitation_ttl_seconds)")
      ->check(CLI::Range(1LL, 31'536'000LL));
  inviteCommand->add_flag("--single-use", invitation->singleUse,
                          "The link admits one customer only");
  addConfigFlags(*inviteCommand, invitation->config);
  inviteCommand->callback(
      [&run, invitation] { run = [invitation] { return invite(*invitation); }; });
}

}  // namespace parley::app
