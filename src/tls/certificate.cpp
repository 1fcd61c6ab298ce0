#include <algorithm>
#include <array>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <functional>
#include <optional>
#include <set>
#include <stdexcept>
#include <string_view>
#include <system_error>
#include <variant>

#include <fcntl.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/pem.h>
#include <sys/stat.h>
#include <unistd.h>

#include <parley/base/endpoint.hpp>
#include <parley/base/log.hpp>
#include <parley/tls/certificate.hpp>

#include "ossl.hpp"

namespace parley::tls {
namespace {

namespace fs = std::filesystem;

// CA/Browser Forum Baseline Requirements §6.3.2: at most 398 days; 397 leaves a day of slack.
constexpr long kValidityDays = 397;
// Backdated an hour so a client whose clock is slightly behind still accepts it.
constexpr long kBackdateSeconds = 3600;
// RFC 5280 §4.1.2.2: at most 20 octets, positive; 159 random bits fit.
constexpr int kSerialBits = 159;
// RFC 5280 Appendix A: ub-common-name.
constexpr std::size_t kMaxCommonName = 64;

std::shared_ptr<spdlog::logger> logger() {
  static const auto log = parley::log::get("tls");
  return log;
}

// What a name in `names` becomes in the SubjectAltName.
using SanEntry = std::variant<std::string, IpAddress>;  // DNS name (lower case) or IP

bool validDnsName(std::string_view name) {
  if (name.empty() || name.size() > 253) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '*';
  });
}

SanEntry toSanEntry(const std::string& name) {
  std::string_view text = name;
  if (text.size() > 2 && text.front() == '[' && text.back() == ']') {
    text = text.substr(1, text.size() - 2);
  }
  if (auto ip = IpAddress::parse(text)) return *ip;
  std::string lower(name);
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (!validDnsName(lower)) {
    throw std::invalid_argument("certificate name \"" + name +
                                "\" is neither an IP address nor a DNS name");
  }
  return lower;
}

std::set<SanEntry> toSanEntries(const std::vector<std::string>& names) {
  if (names.empty()) throw std::invalid_argument("a self-signed certificate needs a name");
  std::set<SanEntry> entries;
  for (const auto& name : names)
    entries.insert(toSanEntry(name));
  return entries;
}

std::set<SanEntry> sanEntriesOf(const X509* cert) {
  std::set<SanEntry> entries;
  ossl::GeneralNames names(
      static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr)));
  if (!names) return entries;
  for (int i = 0; i < sk_GENERAL_NAME_num(names.get()); ++i) {
    const GENERAL_NAME* name = sk_GENERAL_NAME_value(names.get(), i);
    if (name->type == GEN_DNS) {
      const ASN1_STRING* s = name->d.dNSName;
      entries.insert(std::string(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)),
                                 static_cast<std::size_t>(ASN1_STRING_length(s))));
    } else if (name->type == GEN_IPADD) {
      const ASN1_STRING* s = name->d.iPAddress;
      const unsigned char* data = ASN1_STRING_get0_data(s);
      if (ASN1_STRING_length(s) == 4) {
        entries.insert(IpAddress::v4(std::span<const std::uint8_t, 4>(data, 4)));
      } else if (ASN1_STRING_length(s) == 16) {
        entries.insert(IpAddress::v6(std::span<const std::uint8_t, 16>(data, 16)));
      }
    }
  }
  return entries;
}

// Why the existing pair cannot be reused, or nullopt when it can.
std::optional<std::string> reasonToRegenerate(const CertificatePaths& paths,
                                              const std::set<SanEntry>& wanted) {
  std::error_code ec;
  if (!fs::exists(paths.cert, ec) && !fs::exists(paths.key, ec)) return "none exists yet";
  auto cert = ossl::readCertificate(paths.cert);
  if (!cert) return "certificate unreadable: " + ossl::takeErrors();
  auto key = ossl::readPrivateKey(paths.key);
  if (!key) return "key unreadable: " + ossl::takeErrors();
  if (X509_check_private_key(cert.get(), key.get()) != 1) {
    ossl::takeErrors();
    return "key does not match the certificate";
  }
  time_t soon = time(nullptr) + 24 * 3600;
  if (X509_cmp_time(X509_get0_notAfter(cert.get()), &soon) <= 0) {
    return "certificate expired or expires within a day";
  }
  if (sanEntriesOf(cert.get()) != wanted) return "names changed";
  return std::nullopt;
}

[[noreturn]] void failErrno(std::string_view what, const fs::path& path) {
  throw std::runtime_error(std::string(what) + " " + path.string() + ": " + std::strerror(errno));
}

// Writes `bytes` to `path` with `mode` via a temporary file in the same directory and rename(2).
void writeAtomically(const fs::path& path, std::string_view bytes, mode_t mode) {
  std::string temp = path.string() + ".tmp.XXXXXX";
  int fd = mkstemp(temp.data());  // mode 0600 from the start: the key is never world-readable
  if (fd < 0) failErrno("cannot create", temp);
  auto fail = [&](std::string_view what) {
    const int saved = errno;
    ::close(fd);
    ::unlink(temp.c_str());
    errno = saved;
    failErrno(what, temp);
  };
  if (fchmod(fd, mode) != 0) fail("cannot chmod");
  std::size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) fail("cannot write");
    done += static_cast<std::size_t>(n);
  }
  if (fsync(fd) != 0) fail("cannot sync");
  if (::close(fd) != 0) {
    ::unlink(temp.c_str());
    failErrno("cannot close", temp);
  }
  if (std::rename(temp.c_str(), path.c_str()) != 0) {
    const int saved = errno;
    ::unlink(temp.c_str());
    errno = saved;
    failErrno("cannot rename to", path);
  }
}

std::string toPem(const std::function<int(BIO*)>& write, std::string_view what) {
  ossl::Bio bio(BIO_new(BIO_s_mem()));
  if (!bio || write(bio.get()) != 1) ossl::fail(what);
  char* data = nullptr;
  const long size = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<std::size_t>(size));
}

void addExtension(X509* cert, int nid, const char* value) {
  X509V3_CTX ctx;
  X509V3_set_ctx(&ctx, cert, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value);
  if (!ext || X509_add_ext(cert, ext, -1) != 1) {
    X509_EXTENSION_free(ext);
    ossl::fail("cannot add certificate extension");
  }
  X509_EXTENSION_free(ext);
}

void addSubjectAltName(X509* cert, const std::set<SanEntry>& entries) {
  ossl::GeneralNames names(sk_GENERAL_NAME_new_null());
  if (!names) ossl::fail("cannot allocate SubjectAltName");
  for (const auto& entry : entries) {
    GENERAL_NAME* name = GENERAL_NAME_new();
    if (!name) ossl::fail("cannot allocate SubjectAltName");
    if (const auto* dns = std::get_if<std::string>(&entry)) {
      ASN1_IA5STRING* value = ASN1_IA5STRING_new();
      ASN1_STRING_set(value, dns->data(), static_cast<int>(dns->size()));
      GENERAL_NAME_set0_value(name, GEN_DNS, value);
    } else {
      const auto bytes = std::get<IpAddress>(entry).bytes();
      ASN1_OCTET_STRING* value = ASN1_OCTET_STRING_new();
      ASN1_OCTET_STRING_set(value, bytes.data(), static_cast<int>(bytes.size()));
      GENERAL_NAME_set0_value(name, GEN_IPADD, value);
    }
    sk_GENERAL_NAME_push(names.get(), name);
  }
  if (X509_add1_ext_i2d(cert, NID_subject_alt_name, names.get(), 0, X509V3_ADD_DEFAULT) != 1) {
    ossl::fail("cannot add SubjectAltName");
  }
}

void generate(const CertificatePaths& paths, const std::vector<std::string>& names,
              const std::set<SanEntry>& entries) {
  ossl::Pkey key(EVP_EC_gen("P-256"));
  if (!key) ossl::fail("cannot generate an EC P-256 key");

  ossl::X509Ptr cert(X509_new());
  if (!cert || X509_set_version(cert.get(), X509_VERSION_3) != 1) ossl::fail("cannot create X509");

  ossl::Bignum serial(BN_new());
  do {
    if (!serial || BN_rand(serial.get(), kSerialBits, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY) != 1) {
      ossl::fail("cannot draw a serial number");
    }
  } while (BN_is_zero(serial.get()));
  if (!BN_to_ASN1_INTEGER(serial.get(), X509_get_serialNumber(cert.get()))) {
    ossl::fail("cannot set the serial number");
  }
  if (!X509_gmtime_adj(X509_getm_notBefore(cert.get()), -kBackdateSeconds) ||
      !X509_gmtime_adj(X509_getm_notAfter(cert.get()), kValidityDays * 24 * 3600)) {
    ossl::fail("cannot set the validity");
  }
  if (X509_set_pubkey(cert.get(), key.get()) != 1) ossl::fail("cannot set the public key");

  // A CN longer than RFC 5280 allows is left out; clients match the SubjectAltName anyway
  // (RFC 6125 §6.4.4).
  X509_NAME* subject = X509_get_subject_name(cert.get());
  const std::string& cn = names.front().size() <= kMaxCommonName ? names.front() : "parley";
  if (X509_NAME_add_entry_by_txt(subject, "CN", MBSTRING_UTF8,
                                 reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1,
                                 0) != 1 ||
      X509_set_issuer_name(cert.get(), subject) != 1) {
    ossl::fail("cannot set the subject");
  }
  addExtension(cert.get(), NID_basic_constraints, "critical,CA:FALSE");
  addExtension(cert.get(), NID_key_usage, "critical,digitalSignature");
  addExtension(cert.get(), NID_ext_key_usage, "serverAuth");
  addExtension(cert.get(), NID_subject_key_identifier, "hash");
  addSubjectAltName(cert.get(), entries);
  if (X509_sign(cert.get(), key.get(), EVP_sha256()) <= 0) ossl::fail("cannot sign");

  const std::string keyPem = toPem(
      [&](BIO* bio) {
        return PEM_write_bio_PrivateKey(bio, key.get(), nullptr, nullptr, 0, nullptr, nullptr);
      },
      "cannot encode the key");
  const std::string certPem = toPem([&](BIO* bio) { return PEM_write_bio_X509(bio, cert.get()); },
                                    "cannot encode the certificate");
  // Key first: a crash between the two renames leaves a mismatched pair, which the next
  // start detects and regenerates.
  writeAtomically(paths.key, keyPem, 0600);
  writeAtomically(paths.cert, certPem, 0644);
}

}  // namespace

CertificatePaths ensureSelfSigned(const fs::path& dataDir, const std::vector<std::string>& names) {
  const std::set<SanEntry> entries = toSanEntries(names);
  const fs::path dir = dataDir / "tls";
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) throw std::runtime_error("cannot create " + dir.string() + ": " + ec.message());
  CertificatePaths paths{dir / "self-signed.crt", dir / "self-signed.key"};

  const auto reason = reasonToRegenerate(paths, entries);
  if (!reason) {
    // Someone may have loosened the key's mode since; the key stays private.
    struct stat st {};
    if (::stat(paths.key.c_str(), &st) == 0 && (st.st_mode & 077) != 0) {
      logger()->warn("{} was readable by others; setting mode 0600", paths.key.string());
      ::chmod(paths.key.c_str(), 0600);
    }
    logger()->debug("reusing self-signed certificate {}", paths.cert.string());
    return paths;
  }
  logger()->info("generating self-signed certificate {} ({})", paths.cert.string(), *reason);
  generate(paths, names, entries);
  return paths;
}

std::string fingerprintSha256(const fs::path& cert) {
  auto x509 = ossl::readCertificate(cert);
  if (!x509) ossl::fail("cannot read certificate", cert);
  std::string text = ossl::fingerprintSha256(x509.get());
  if (text.empty()) ossl::fail("cannot hash certificate", cert);
  return text;
}

}  // namespace parley::tls
