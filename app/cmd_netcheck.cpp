// parley netcheck URL: whether this network carries Parley calls, and what to open if not
// (docs/netcheck.md). The checks run in src/netclient; this file reads the flags, shows the
// progress and the result, and maps the grade to the exit status.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <parley/netcheck/report.hpp>
#include <parley/netclient/runner.hpp>
#include <parley/version.hpp>

#include "commands.hpp"

namespace parley::app {

namespace {

struct NetcheckFlags {
  std::string url;
  bool json = false;
  std::string proxy;
  std::string proxyUser;
  bool noProxy = false;
  double timeoutSeconds = 50;
};

std::string_view verdictMark(netcheck::Verdict verdict, bool colour) {
  switch (verdict) {
    case netcheck::Verdict::Pass:
      return colour ? "\x1b[32m✓\x1b[0m" : "pass";
    case netcheck::Verdict::Warn:
      return colour ? "\x1b[33m!\x1b[0m" : "warn";
    case netcheck::Verdict::Fail:
      return colour ? "\x1b[31m✗\x1b[0m" : "FAIL";
    case netcheck::Verdict::Skipped:
      return colour ? "\x1b[2m-\x1b[0m" : "skip";
  }
  return "?";
}

std::string formatDuration(std::chrono::milliseconds duration) {
  return duration.count() < 1000 ? fmt::format("{} ms", duration.count())
                                 : fmt::format("{:.1f} s", duration.count() / 1000.0);
}

// The first `columns` characters of UTF-8 text (counting code points, which is close enough
// for the check's own text).
std::string clip(const std::string& text, std::size_t columns) {
  std::size_t count = 0;
  for (std::size_t i = 0; i < text.size(); ++i) {
    if ((static_cast<unsigned char>(text[i]) & 0xC0) == 0x80) continue;
    if (count == columns) return text.substr(0, i);
    ++count;
  }
  return text;
}

std::string checkLine(const netcheck::CheckResult& check) {
  return fmt::format("{:<34} {:>8}  {}", check.title, formatDuration(check.duration),
                     check.summary);
}

// Not a terminal: one line per finished check, in the order they finish.
void printFinished(const netcheck::CheckResult& check) {
  std::cout << fmt::format("[{}] {}", verdictMark(check.verdict, false), checkLine(check)) << '\n'
            << std::flush;
}

// On a terminal: every running check with a spinner and its time so far, each replaced by its
// verdict when done. Each redraw rewrites only the lines from the first unfinished check down,
// in one write, so nothing flickers and finished lines scroll away normally.
class LiveDisplay {
 public:
  LiveDisplay() : ticker_([this](std::stop_token stop) { tick(stop); }) {}
  ~LiveDisplay() { stop(); }

  void update(const netcheck::CheckResult& check, bool finished) {
    std::lock_guard lock(mutex_);
    auto line = std::find_if(lines_.begin(), lines_.end(),
                             [&](const Line& l) { return l.check.id == check.id; });
    if (line == lines_.end()) {
      lines_.push_back({check, finished, std::chrono::steady_clock::now()});
    } else {
      line->check = check;
      line->finished = finished;
    }
    redraw();
  }

  void stop() {
    if (!ticker_.joinable()) return;
    ticker_.request_stop();
    ticker_.join();
    std::lock_guard lock(mutex_);
    redraw();
  }

 private:
  struct Line {
    netcheck::CheckResult check;
    bool finished = false;
    std::chrono::steady_clock::time_point started;
  };

  void tick(std::stop_token stop) {
    while (!stop.stop_requested()) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      std::lock_guard lock(mutex_);
      ++frame_;
      redraw();
    }
  }

  static std::size_t columns() {
    winsize size{};
    if (::ioctl(STDOUT_FILENO, TIOCGWINSZ, &size) == 0 && size.ws_col > 10) return size.ws_col;
    return 80;
  }

  void redraw() {
    static constexpr std::string_view kSpinner[] = {"⠋", "⠙", "⠹", "⠸", "⠼",
                                                    "⠴", "⠦", "⠧", "⠇", "⠏"};
    const std::size_t width = columns() - 1;
    std::string out;
    if (drawn_ > 0) out += fmt::format("\x1b[{}A", drawn_);
    for (std::size_t i = committed_; i < lines_.size(); ++i) {
      const Line& line = lines_[i];
      out += "\r\x1b[2K";
      if (line.finished) {
        out += verdictMark(line.check.verdict, true);
        out += ' ';
        out += clip(checkLine(line.check), width - 2);
      } else {
        netcheck::CheckResult running = line.check;
        running.duration = std::chrono::duration_cast<std::chrono::milliseconds>(
            std::chrono::steady_clock::now() - line.started);
        running.summary = running.target.empty() ? "…" : running.target + " …";
        out += "\x1b[36m";
        out += kSpinner[frame_ % std::size(kSpinner)];
        out += "\x1b[0m ";
        out += clip(checkLine(running), width - 2);
      }
      out += '\n';
    }
    drawn_ = lines_.size() - committed_;
    // Finished lines at the top are final: later redraws leave them alone.
    while (committed_ < lines_.size() && lines_[committed_].finished) {
      ++committed_;
      --drawn_;
    }
    std::fwrite(out.data(), 1, out.size(), stdout);
    std::fflush(stdout);
  }

  std::mutex mutex_;
  std::vector<Line> lines_;
  std::size_t committed_ = 0;  // lines above this are finished and final
  std::size_t drawn_ = 0;      // lines below them drawn last time
  std::size_t frame_ = 0;
  std::jthread ticker_;
};

void printAssessment(const netcheck::Report& report, bool colour) {
  const auto& assessment = report.assessment;
  const std::string_view grade = netcheck::gradeTitle(assessment.grade);
  std::string shown(grade);
  if (colour) {
    const char* code = assessment.grade == netcheck::Grade::Best      ? "\x1b[1;32m"
                       : assessment.grade == netcheck::Grade::Blocked ? "\x1b[1;31m"
                                                                      : "\x1b[1;33m";
    shown = code + shown + "\x1b[0m";
  }
  std::cout << '\n'
            << fmt::format("Result: {} ({} in {})", shown, report.url,
                           formatDuration(report.duration))
            << '\n';
  if (!assessment.headline.empty()) std::cout << assessment.headline << '\n';
  if (!assessment.remedies.empty()) {
    std::cout << "\nWhat to change (for the network's administrator):\n";
    for (std::size_t i = 0; i < assessment.remedies.size(); ++i)
      std::cout << fmt::format("  {}. {}", i + 1, assessment.remedies[i]) << '\n';
  }
}

int exitStatus(netcheck::Grade grade) {
  switch (grade) {
    case netcheck::Grade::Best:
      return kExitNetcheckBest;
    case netcheck::Grade::Works:
    case netcheck::Grade::Reduced:
      return kExitNetcheckDegraded;
    case netcheck::Grade::Blocked:
      return kExitNetcheckBlocked;
  }
  return kExitNetcheckBlocked;
}

int usageError(const std::string& message) {
  std::cerr << "parley netcheck: " << message << '\n'
            << "Run 'parley netcheck --help' for the options.\n";
  return kExitNetcheckUsage;
}

int runNetcheck(const NetcheckFlags& flags) {
  // A bad URL is a usage error before anything is tried.
  const auto url = netclient::parseServerUrl(flags.url);
  if (!url) return usageError(url.error().message);

  netclient::RunOptions options;
  options.url = flags.url;
  options.client = std::string("parley-netcheck ") + kVersion;
  options.budget = std::chrono::milliseconds(static_cast<long>(flags.timeoutSeconds * 1000));
  std::string proxyUrl = flags.proxy;
  const char* proxySource = "--proxy";
  if (proxyUrl.empty() && !flags.noProxy) {
    proxyUrl = netclient::proxyUrlFromEnvironment(url->host);
    proxySource = "HTTPS_PROXY";
  }
  if (!proxyUrl.empty()) {
    auto proxy = netclient::parseProxyUrl(proxyUrl);
    if (!proxy) return usageError(fmt::format("{}: {}", proxySource, proxy.error().message));
    if (!flags.proxyUser.empty()) proxy->userColonPassword = flags.proxyUser;
    options.proxy = std::move(*proxy);
  } else if (!flags.proxyUser.empty()) {
    std::cerr << "parley netcheck: warning: --proxy-user is ignored: no proxy is used\n";
  }

  const bool terminal = !flags.json && ::isatty(STDOUT_FILENO) == 1;
  std::unique_ptr<LiveDisplay> live;
  netclient::Progress progress;
  if (terminal) {
    std::cout << fmt::format("Checking the network for Parley at {}{}\n\n", url->origin(),
                             options.proxy ? " through the proxy " + options.proxy->display()
                                           : std::string())
              << std::flush;
    live = std::make_unique<LiveDisplay>();
    progress = [&live](const netcheck::CheckResult& check, bool finished) {
      live->update(check, finished);
    };
  } else if (!flags.json) {
    progress = [](const netcheck::CheckResult& check, bool finished) {
      if (finished) printFinished(check);
    };
  }

  const netcheck::Report report = netclient::runChecks(options, progress);
  if (live) live->stop();

  if (flags.json) {
    std::cout << netcheck::toJson(report).dump(2) << '\n';
  } else {
    printAssessment(report, terminal);
  }
  return exitStatus(report.assessment.grade);
}

}  // namespace

void addNetcheckCommand(CLI::App& app, Action& run) {
  CLI::App* command = app.add_subcommand(
      "netcheck",
      "Check whether this network carries Parley calls to a server, and what to open if not: "
      "DNS, TLS, HTTPS, WebSocket, STUN and TURN on every transport, path quality and "
      "bandwidth. Exit status: 0 best experience, 1 works (perhaps with reduced quality), "
      "2 blocked, 3 usage error");
  command->footer("Honours HTTPS_PROXY and NO_PROXY like curl. See docs/netcheck.md.");
  auto flags = std::make_shared<NetcheckFlags>();
  command->add_option("URL", flags->url, "The server, e.g. https://parley.example.com")->required();
  command->add_flag("--json", flags->json,
                    "Print one JSON report (docs/netcheck.schema.json) and nothing else");
  CLI::Option* proxy =
      command
          ->add_option("--proxy", flags->proxy,
                       "HTTP proxy to use (CONNECT), e.g. http://10.10.0.1:3128; default: "
                       "HTTPS_PROXY unless NO_PROXY exempts the server")
          ->type_name("URL");
  command
      ->add_option("--proxy-user", flags->proxyUser,
                   "Basic credentials for the proxy (never printed)")
      ->type_name("USER:PASSWORD");
  command->add_flag("--no-proxy", flags->noProxy, "Ignore HTTPS_PROXY: connect directly")
      ->excludes(proxy);
  command
      ->add_option("--timeout", flags->timeoutSeconds,
                   "Longest the whole check may take, in seconds (each step has its own, "
                   "shorter deadline)")
      ->check(CLI::Range(5.0, 600.0))
      ->type_name("SECONDS")
      ->capture_default_str();
  command->callback([&run, flags] { run = [flags] { return runNetcheck(*flags); }; });
}

}  // namespace parley::app
