// The page for people: one document (headings, paragraphs, lists, tables, warnings) built from
// the contract, written out as Markdown or as a self-contained HTML page, so both always say
// the same. Operator-supplied text (organisation, contact, node names, regions) only ever goes
// into plain spans, which each writer escapes.
#include <algorithm>
#include <set>

#include <fmt/format.h>

#include "render.hpp"

namespace parley::requirements {
namespace detail {

const std::string_view kHtmlStyle =
    "body{margin:0;font:16px/1.5 system-ui,-apple-system,'Segoe UI',sans-serif;color:#1f2328;"
    "background:#fff}"
    "main{max-width:62rem;margin:0 auto;padding:1.5rem}"
    "h1{font-size:1.7rem;line-height:1.25}h2{font-size:1.3rem;margin-top:2.2rem}"
    "h3{font-size:1.1rem}"
    "table{border-collapse:collapse;width:100%;margin:1rem 0}"
    "th,td{border:1px solid #d0d7de;padding:.35rem .6rem;text-align:left;vertical-align:top}"
    "th{background:#f6f8fa}"
    "code{font:.9em ui-monospace,'SFMono-Regular',Menlo,Consolas,monospace;background:#f6f8fa;"
    "padding:.1em .25em;border-radius:4px;white-space:nowrap}"
    ".warning{border-left:4px solid #bc4c00;background:#fff8f2;padding:.5rem 1rem}"
    "footer{margin-top:2.5rem;color:#59636e;font-size:.9rem}"
    "@media print{main{max-width:none;padding:0}code{background:none}}";

namespace {

// ---- the document -----------------------------------------------------------------------

struct Span {
  enum class Style { Plain, Code, Strong };
  Style style = Style::Plain;
  std::string text;
};
using Text = std::vector<Span>;

Span plain(std::string text) {
  return {Span::Style::Plain, std::move(text)};
}
Span code(std::string text) {
  return {Span::Style::Code, std::move(text)};
}
Span strong(std::string text) {
  return {Span::Style::Strong, std::move(text)};
}

struct Block {
  enum class Kind { Title, Heading, Subheading, Paragraph, List, Table, Warning, Footer };
  Kind kind = Kind::Paragraph;
  Text text;                      // Title, Heading, Subheading, Paragraph, Warning, Footer
  std::vector<Text> items;        // List
  std::vector<std::string> head;  // Table
  std::vector<std::vector<Text>> rows;
};

class Document {
 public:
  void title(Text text) { blocks_.push_back({Block::Kind::Title, std::move(text), {}, {}, {}}); }
  void heading(std::string text) {
    blocks_.push_back({Block::Kind::Heading, {plain(std::move(text))}, {}, {}, {}});
  }
  void subheading(Text text) {
    blocks_.push_back({Block::Kind::Subheading, std::move(text), {}, {}, {}});
  }
  void paragraph(Text text) {
    blocks_.push_back({Block::Kind::Paragraph, std::move(text), {}, {}, {}});
  }
  void list(std::vector<Text> items) {
    blocks_.push_back({Block::Kind::List, {}, std::move(items), {}, {}});
  }
  void table(std::vector<std::string> head, std::vector<std::vector<Text>> rows) {
    blocks_.push_back({Block::Kind::Table, {}, {}, std::move(head), std::move(rows)});
  }
  void warning(Text text) {
    blocks_.push_back({Block::Kind::Warning, std::move(text), {}, {}, {}});
  }
  void footer(Text text) { blocks_.push_back({Block::Kind::Footer, std::move(text), {}, {}, {}}); }

  const std::vector<Block>& blocks() const { return blocks_; }

 private:
  std::vector<Block> blocks_;
};

// Code spans for each item, separated by ", ".
Text codeList(const std::vector<std::string>& items) {
  Text text;
  for (std::size_t i = 0; i < items.size(); ++i) {
    if (i > 0) text.push_back(plain(", "));
    text.push_back(code(items[i]));
  }
  return text;
}

std::string kbps(unsigned value) {
  return fmt::format("{} kbit/s", value);
}

// "main and failover nodes", or "all nodes" when every node of the deployment serves it.
std::string destinationText(const Contract& contract, const std::vector<Role>& roles) {
  const auto& nodes = contract.deployment.nodes;
  const auto serves = [&](const Node& node) {
    return std::find(roles.begin(), roles.end(), node.role) != roles.end();
  };
  if (!nodes.empty() && std::all_of(nodes.begin(), nodes.end(), serves)) return "all nodes";
  std::vector<std::string> names;
  for (const Role role : roles) {
    const bool present = std::any_of(nodes.begin(), nodes.end(),
                                     [role](const Node& node) { return node.role == role; });
    if (present || nodes.empty()) {
      names.push_back(role == Role::Turn ? "TURN" : std::string(toString(role)));
    }
  }
  if (names.empty()) {
    for (const Role role : roles)
      names.push_back(role == Role::Turn ? "TURN" : std::string(toString(role)));
  }
  return joinAnd(names) + (names.size() == 1 ? " node" : " nodes");
}

std::string roleDescription(Role role) {
  switch (role) {
    case Role::Main:
      return "the web app, signaling and the STUN/TURN relay";
    case Role::Failover:
      return "takes over from the main node when it fails; clients reconnect by themselves";
    case Role::Turn:
      return "a STUN/TURN relay";
    case Role::Media:
      return "the media server for group calls";
  }
  return "";
}

// ---- the content ------------------------------------------------------------------------

void introduction(const Contract& contract, Document& doc) {
  const Deployment& d = contract.deployment;
  doc.title({plain("Network requirements for Parley at " + subject(contract))});
  Text intro;
  if (!d.organisation.empty()) {
    intro.push_back(plain(d.organisation + " holds video consultations with Parley at "));
  } else {
    intro.push_back(plain("Video consultations with Parley run at "));
  }
  intro.push_back(code(d.url));
  intro.push_back(
      plain(". Calls run in an ordinary browser and nothing is installed. This page lists what a "
            "network must allow for calls to connect from it: ports, addresses, the one domain, "
            "proxy settings and bandwidth."));
  if (!d.contact.empty()) intro.push_back(plain(" Questions: " + d.contact + "."));
  doc.paragraph(std::move(intro));
  for (const auto& warning : contract.warnings)
    doc.warning({plain(warning)});
}

void summary(const Contract& contract, Document& doc) {
  const Deployment& d = contract.deployment;
  const std::string where =
      d.domain.empty() ? "the addresses below" : "the domain and the addresses below";
  doc.heading("Summary");
  std::vector<Text> items;
  const std::string minimum = levelPorts(contract, Level::Required);
  Text required{strong("Minimum:"),
                plain(" " + minimum + " to " + where +
                      ", directly or through an HTTP proxy that asks for no authentication and "
                      "does not inspect TLS for them.")};
  if (d.turn && d.turnOverHttps) {
    required.push_back(plain(fmt::format(
        " Calls connect with this alone: their media is then relayed over TLS on port {}.",
        d.httpsPort)));
  } else {
    required.push_back(
        plain(" This deployment relays no media over that port, so calls also "
              "need the recommended ports."));
  }
  items.push_back(std::move(required));
  if (const std::string ports = levelPorts(contract, Level::Recommended); !ports.empty()) {
    items.push_back({strong("Recommended:"),
                     plain(" " + ports +
                           " to the same addresses. Without them the public address behind your "
                           "NAT or proxy cannot be discovered, and media takes a slower path.")});
  }
  if (const std::string ports = levelPorts(contract, Level::Best); !ports.empty()) {
    items.push_back(
        {strong("Best experience:"), plain(" also " + ports + " to the same addresses.")});
  }
  doc.list(std::move(items));
  doc.paragraph(
      {strong("Direction:"),
       plain(" every connection is opened by the client in your network (outbound). Replies come "
             "back on the same connection, which a stateful firewall lets through: nobody "
             "outside can open a connection into your network, and no inbound rule is needed.")});
}

void ports(const Contract& contract, Document& doc) {
  doc.heading("Ports");
  std::vector<std::vector<Text>> rows;
  for (const PortRule& rule : contract.ports) {
    std::string protocols;
    for (const auto& protocol : rule.protocols)
      protocols += (protocols.empty() ? "" : ", ") + protocol;
    rows.push_back({{plain(std::string(levelTitle(rule.level)))},
                    {code(portText(rule.ports))},
                    {plain(rule.transport == Transport::Tcp ? "TCP" : "UDP")},
                    {plain(protocols)},
                    {plain("outbound from the client")},
                    {plain(destinationText(contract, rule.destinations))},
                    {plain(rule.purpose)}});
  }
  doc.table({"Level", "Port", "Transport", "Protocols", "Direction", "To", "Purpose"},
            std::move(rows));
  const bool relay = std::any_of(contract.ports.begin(), contract.ports.end(),
                                 [](const PortRule& rule) { return rule.id == "turn-relay"; });
  if (relay) {
    const PortRange range = contract.deployment.relayPorts;
    doc.paragraph(
        {strong("The relay ports"), plain(" (UDP "), code(portText(range)),
         plain(") are not needed for a client to reach the relay: a client whose media is relayed "
               "talks only to the STUN/TURN ports. They are where the other participant's relayed "
               "media arrives, so a client sends to them only when the other side is relayed and "
               "it is not. Closed, they cost that shortcut and nothing else.")});
  }
  if (!contract.deployment.mediaPorts) {
    doc.paragraph(
        {plain("This deployment runs no media server, so there are no media server "
               "ports to allow.")});
  }
}

void addresses(const Contract& contract, Document& doc) {
  const auto& nodes = contract.deployment.nodes;
  doc.heading("Addresses");
  doc.paragraph(
      {plain("Allow the ports above to these addresses (IPv4 and IPv6; a range written "
             "as address/length covers all of it).")});
  std::vector<std::string> regions;
  for (const Node& node : nodes) {
    if (std::find(regions.begin(), regions.end(), node.region) == regions.end())
      regions.push_back(node.region);
  }
  const bool byRegion = regions.size() > 1;
  const auto nodeRow = [&](const Node& node) {
    std::vector<std::string> published;
    for (const auto& address : node.addresses)
      published.push_back(toString(address));
    Text cell = codeList(published);
    for (const auto& skipped : contract.unpublished) {
      if (skipped.node != node.name) continue;
      if (!cell.empty()) cell.push_back(plain(", "));
      cell.push_back(code(toString(skipped.address)));
      cell.push_back(plain(fmt::format(" ({} address: not reachable, see the warning above)",
                                       toString(skipped.scope))));
    }
    if (cell.empty()) cell.push_back(plain("none known"));
    std::vector<Text> row{{plain(node.name)}, {plain(std::string(toString(node.role)))}};
    if (!byRegion && !regions.empty() && !regions.front().empty())
      row.push_back({plain(node.region)});
    row.push_back(std::move(cell));
    return row;
  };
  const auto head = [&](bool withRegion) {
    std::vector<std::string> columns{"Node", "Role"};
    if (withRegion) columns.emplace_back("Region");
    columns.emplace_back("Addresses");
    return columns;
  };
  if (nodes.empty()) {
    doc.paragraph({plain("No node is configured.")});
  } else if (!byRegion) {
    std::vector<std::vector<Text>> rows;
    for (const Node& node : nodes)
      rows.push_back(nodeRow(node));
    doc.table(head(!regions.front().empty()), std::move(rows));
  } else {
    doc.paragraph(
        {plain("The nodes are in several regions. Allow all of them: a call may use "
               "any of them.")});
    for (const auto& region : regions) {
      doc.subheading({plain(region.empty() ? "Without a region" : "Region " + region)});
      std::vector<std::vector<Text>> rows;
      for (const Node& node : nodes) {
        if (node.region == region) rows.push_back(nodeRow(node));
      }
      doc.table(head(false), std::move(rows));
    }
  }
  std::set<Role> present;
  for (const Node& node : nodes)
    present.insert(node.role);
  std::vector<Text> roles;
  for (const Role role : present)
    roles.push_back({code(std::string(toString(role))), plain(": " + roleDescription(role) + ".")});
  if (!roles.empty()) doc.list(std::move(roles));
}

void domain(const Contract& contract, Document& doc) {
  const Deployment& d = contract.deployment;
  doc.heading("Domain");
  if (d.domain.empty()) {
    doc.paragraph({plain("This deployment has no domain name: browsers reach it at "), code(d.url),
                   plain(", so the addresses above are all there is to allow.")});
  } else {
    doc.paragraph({plain("Exactly one domain: "), code(d.domain),
                   plain(" (no subdomains, no wildcards). The web app, signaling and TURN all "
                         "use this name.")});
  }
  doc.paragraph(
      {plain("Parley loads nothing from anywhere else: no content delivery network, web "
             "fonts, analytics, captcha, error-reporting or help-desk service. Nothing "
             "else needs allowing.")});
}

void proxies(const Contract& contract, Document& doc) {
  const Deployment& d = contract.deployment;
  const std::string what =
      d.domain.empty() ? "the addresses above" : "the domain and the addresses above";
  doc.heading("Proxies and TLS inspection");
  std::vector<Text> items;
  items.push_back({plain(proxyPorts(contract) +
                         " may go through an HTTP/1.1 proxy: browsers tunnel HTTPS, WebSockets" +
                         (d.turn && d.turnOverHttps ? " and TURN over TLS" : "") +
                         " through it with CONNECT.")});
  items.push_back({strong("No proxy authentication"),
                   plain(" for " + what +
                         ": browsers cannot answer a proxy's authentication request (HTTP Basic or "
                         "otherwise) for WebSocket and WebRTC connections.")});
  Text inspection{strong("No TLS inspection"),
                  plain(" (\"SSL inspection\", \"HTTPS scanning\") for " + what + ".")};
  if (d.turn && d.turnOverHttps) {
    inspection.push_back(plain(fmt::format(
        " TURN over TLS on port {} is not HTTP: a proxy that decrypts it breaks it, and the calls "
        "that depend on it fail. Some proxies also break the signaling WebSocket.",
        d.httpsPort)));
  } else {
    inspection.push_back(
        plain(" Proxies that decrypt the traffic often break the signaling "
              "WebSocket."));
  }
  items.push_back(std::move(inspection));
  items.push_back(
      {plain("The other ports never pass an HTTP proxy: the firewall must allow "
             "them.")});
  doc.list(std::move(items));
}

void bandwidth(Document& doc) {
  doc.heading("Bandwidth");
  doc.list({
      {strong("Down:"),
       plain(" at least " + kbps(kPerStreamKbps) + " per video stream the client receives.")},
      {strong("Up:"), plain(" at least " + kbps(kPerStreamKbps) + " per video stream it sends.")},
      {plain("A one-to-one call: " + kbps(kPerStreamKbps) + " down and " + kbps(kPerStreamKbps) +
             " up for each side. Sharing a screen adds one stream: " + kbps(2 * kPerStreamKbps) +
             " up for whoever shares, " + kbps(2 * kPerStreamKbps) +
             " down for whoever watches. In a group call a client receives one stream per other "
             "participant it shows.")},
  });
  doc.paragraph(
      {plain("Bandwidth is not the only factor: packet loss, jitter and latency matter "
             "as much. Parley adapts each stream down to what the path carries.")});
}

void browsers(Document& doc) {
  doc.heading("Browsers");
  doc.list({
      {plain("A current Chrome, Edge, Firefox or Safari with JavaScript enabled; nothing to "
             "install.")},
      {plain("The browser must be allowed to use the camera and microphone on this site.")},
      {plain("Firefox needs its OpenH264 plug-in up to date for calls with Safari users (they use "
             "H.264). Where Firefox updates are managed centrally, include the plug-in.")},
      {plain("Screen sharing works in desktop browsers, not on phones or tablets.")},
  });
}

void checks(const Contract& contract, Document& doc) {
  const Deployment& d = contract.deployment;
  doc.heading("Check a network");
  doc.list({
      {plain("Open "), code(d.url + "/check"),
       plain(" in a browser in your network: it checks the connection to the server, the "
             "WebSocket, WebRTC support and camera and microphone permissions.")},
      {plain("For machines: "), code(d.url + std::string(kJsonPath)),
       plain(fmt::format(" (JSON, schema version {}).", kSchemaVersion))},
      {plain("This page: "), code(d.url + std::string(kHtmlPath)), plain(".")},
  });
  Text footer{plain("Generated by "), code("parley requirements"),
              plain(" from the configuration of " + d.url)};
  if (d.generatedAt) footer.push_back(plain(" on " + rfc3339(*d.generatedAt)));
  footer.push_back(plain("."));
  doc.footer(std::move(footer));
}

Document buildPage(const Contract& contract) {
  Document doc;
  introduction(contract, doc);
  summary(contract, doc);
  ports(contract, doc);
  addresses(contract, doc);
  domain(contract, doc);
  proxies(contract, doc);
  bandwidth(doc);
  browsers(doc);
  checks(contract, doc);
  return doc;
}

// ---- Markdown ---------------------------------------------------------------------------

// CommonMark: a backslash escapes any ASCII punctuation; these are the ones that could start
// emphasis, code, links, HTML, entities or (in a table) a new cell.
std::string markdownEscape(std::string_view text) {
  std::string out;
  for (const char c : text) {
    if (std::string_view("\\`*_[]<>|&#!").find(c) != std::string_view::npos) out += '\\';
    out += c;
  }
  return out;
}

std::string markdownInline(const Text& text) {
  std::string out;
  for (const Span& span : text) {
    switch (span.style) {
      case Span::Style::Plain:
        out += markdownEscape(span.text);
        break;
      case Span::Style::Strong:
        out += "**" + markdownEscape(span.text) + "**";
        break;
      case Span::Style::Code: {
        // Code spans cannot escape: fence with more backticks than the text holds, and a pipe
        // would still end a table cell (GFM), so it is escaped.
        std::string body;
        for (const char c : span.text)
          body += c == '|' ? std::string("\\|") : std::string(1, c);
        const bool tick = span.text.find('`') != std::string::npos;
        out += tick ? "`` " + body + " ``" : "`" + body + "`";
        break;
      }
    }
  }
  return out;
}

// ---- HTML -------------------------------------------------------------------------------

std::string htmlEscape(std::string_view text) {
  std::string out;
  for (const char c : text) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::string htmlInline(const Text& text) {
  std::string out;
  for (const Span& span : text) {
    switch (span.style) {
      case Span::Style::Plain:
        out += htmlEscape(span.text);
        break;
      case Span::Style::Strong:
        out += "<strong>" + htmlEscape(span.text) + "</strong>";
        break;
      case Span::Style::Code:
        out += "<code>" + htmlEscape(span.text) + "</code>";
        break;
    }
  }
  return out;
}

std::string plainText(const Text& text) {
  std::string out;
  for (const Span& span : text)
    out += span.text;
  return out;
}

}  // namespace

std::string renderMarkdown(const Contract& contract) {
  const Document doc = buildPage(contract);
  std::string out;
  for (const Block& block : doc.blocks()) {
    if (!out.empty()) out += '\n';
    switch (block.kind) {
      case Block::Kind::Title:
        out += "# " + markdownInline(block.text) + "\n";
        break;
      case Block::Kind::Heading:
        out += "## " + markdownInline(block.text) + "\n";
        break;
      case Block::Kind::Subheading:
        out += "### " + markdownInline(block.text) + "\n";
        break;
      case Block::Kind::Paragraph:
        out += markdownInline(block.text) + "\n";
        break;
      case Block::Kind::Footer:
        out += "---\n\n" + markdownInline(block.text) + "\n";
        break;
      case Block::Kind::Warning:
        out += "> **Warning:** " + markdownInline(block.text) + "\n";
        break;
      case Block::Kind::List:
        for (const Text& item : block.items)
          out += "- " + markdownInline(item) + "\n";
        break;
      case Block::Kind::Table: {
        out += "|";
        for (const auto& column : block.head)
          out += " " + markdownEscape(column) + " |";
        out += "\n|";
        for (std::size_t i = 0; i < block.head.size(); ++i)
          out += "---|";
        out += "\n";
        for (const auto& row : block.rows) {
          out += "|";
          for (const Text& cell : row)
            out += " " + markdownInline(cell) + " |";
          out += "\n";
        }
        break;
      }
    }
  }
  return out;
}

std::string renderHtml(const Contract& contract) {
  const Document doc = buildPage(contract);
  std::string title;
  for (const Block& block : doc.blocks()) {
    if (block.kind == Block::Kind::Title) title = plainText(block.text);
  }
  std::string out =
      "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
      "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
      "<meta name=\"robots\" content=\"noindex\">\n<title>" +
      htmlEscape(title) + "</title>\n<style>" + std::string(kHtmlStyle) +
      "</style>\n</head>\n<body>\n<main>\n";
  for (const Block& block : doc.blocks()) {
    switch (block.kind) {
      case Block::Kind::Title:
        out += "<h1>" + htmlInline(block.text) + "</h1>\n";
        break;
      case Block::Kind::Heading:
        out += "<h2>" + htmlInline(block.text) + "</h2>\n";
        break;
      case Block::Kind::Subheading:
        out += "<h3>" + htmlInline(block.text) + "</h3>\n";
        break;
      case Block::Kind::Paragraph:
        out += "<p>" + htmlInline(block.text) + "</p>\n";
        break;
      case Block::Kind::Footer:
        out += "<footer><p>" + htmlInline(block.text) + "</p></footer>\n";
        break;
      case Block::Kind::Warning:
        out +=
            "<p class=\"warning\"><strong>Warning:</strong> " + htmlInline(block.text) + "</p>\n";
        break;
      case Block::Kind::List:
        out += "<ul>\n";
        for (const Text& item : block.items)
          out += "<li>" + htmlInline(item) + "</li>\n";
        out += "</ul>\n";
        break;
      case Block::Kind::Table:
        out += "<table>\n<thead><tr>";
        for (const auto& column : block.head)
          out += "<th>" + htmlEscape(column) + "</th>";
        out += "</tr></thead>\n<tbody>\n";
        for (const auto& row : block.rows) {
          out += "<tr>";
          for (const Text& cell : row)
            out += "<td>" + htmlInline(cell) + "</td>";
          out += "</tr>\n";
        }
        out += "</tbody>\n</table>\n";
        break;
    }
  }
  out += "</main>\n</body>\n</html>\n";
  return out;
}

}  // namespace detail
}  // namespace parley::requirements
