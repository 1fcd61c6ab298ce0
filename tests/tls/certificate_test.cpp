#include <fstream>
#include <regex>
#include <sstream>
#include <stdexcept>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>

#include <parley/base/endpoint.hpp>
#include <parley/tls/certificate.hpp>

#include "test_client.hpp"

namespace parley::tls {
namespace {

using test::TempDir;
using ::testing::HasSubstr;
using ::testing::UnorderedElementsAre;

std::string readFile(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

void writeFile(const std::filesystem::path& path, std::string_view text) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << text;
}

struct X509Deleter {
  void operator()(X509* x) const { X509_free(x); }
};
using X509Ptr = std::unique_ptr<X509, X509Deleter>;

X509Ptr loadCert(const std::filesystem::path& path) {
  BIO* bio = BIO_new_file(path.c_str(), "r");
  X509* x = bio ? PEM_read_bio_X509(bio, nullptr, nullptr, nullptr) : nullptr;
  BIO_free(bio);
  return X509Ptr(x);
}

// "DNS:name" and "IP:address" entries of the certificate's SubjectAltName.
std::vector<std::string> sans(const X509* cert) {
  std::vector<std::string> result;
  auto* names =
      static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr));
  for (int i = 0; i < sk_GENERAL_NAME_num(names); ++i) {
    const GENERAL_NAME* name = sk_GENERAL_NAME_value(names, i);
    const auto* data = ASN1_STRING_get0_data(name->d.ia5);
    const auto size = static_cast<std::size_t>(ASN1_STRING_length(name->d.ia5));
    if (name->type == GEN_DNS) {
      result.push_back("DNS:" + std::string(reinterpret_cast<const char*>(data), size));
    } else if (name->type == GEN_IPADD && size == 4) {
      result.push_back("IP:" + IpAddress::v4(std::span<const std::uint8_t, 4>(data, 4)).toString());
    } else if (name->type == GEN_IPADD && size == 16) {
      result.push_back("IP:" +
                       IpAddress::v6(std::span<const std::uint8_t, 16>(data, 16)).toString());
    }
  }
  GENERAL_NAMES_free(names);
  return result;
}

std::string commonName(const X509* cert) {
  char buffer[256] = {};
  X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, buffer, sizeof buffer);
  return buffer;
}

const std::vector<std::string> kNames{"turn.example.org", "localhost", "192.0.2.1", "[::1]"};

TEST(EnsureSelfSigned, CreatesKeyAndCertificate) {
  TempDir dir;
  const auto paths = ensureSelfSigned(dir.path(), kNames);
  EXPECT_EQ(paths.cert, dir.path() / "tls" / "self-signed.crt");
  EXPECT_EQ(paths.key, dir.path() / "tls" / "self-signed.key");

  struct stat st {};
  ASSERT_EQ(::stat(paths.key.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600);
  // No temporary files left behind.
  EXPECT_EQ(std::distance(std::filesystem::directory_iterator(dir.path() / "tls"),
                          std::filesystem::directory_iterator()),
            2);

  auto cert = loadCert(paths.cert);
  ASSERT_TRUE(cert);
  EXPECT_EQ(X509_get_version(cert.get()), X509_VERSION_3);
  EXPECT_EQ(commonName(cert.get()), "turn.example.org");
  EXPECT_THAT(sans(cert.get()), UnorderedElementsAre("DNS:turn.example.org", "DNS:localhost",
                                                     "IP:192.0.2.1", "IP:::1"));
  // Self-signed: issuer == subject, and the key is EC P-256.
  EXPECT_EQ(X509_NAME_cmp(X509_get_subject_name(cert.get()), X509_get_issuer_name(cert.get())), 0);
  EVP_PKEY* key = X509_get0_pubkey(cert.get());
  ASSERT_NE(key, nullptr);
  EXPECT_EQ(EVP_PKEY_get_base_id(key), EVP_PKEY_EC);
  char group[64] = {};
  size_t groupSize = 0;
  EVP_PKEY_get_group_name(key, group, sizeof group, &groupSize);
  EXPECT_STREQ(group, "prime256v1");

  // 397 days from (about) now, backdated by an hour.
  int days = 0;
  int seconds = 0;
  ASSERT_EQ(ASN1_TIME_diff(&days, &seconds, X509_get0_notBefore(cert.get()),
                           X509_get0_notAfter(cert.get())),
            1);
  EXPECT_EQ(days, 397);
  EXPECT_EQ(seconds, 3600);
  // A random, positive, non-zero serial.
  const ASN1_INTEGER* serial = X509_get0_serialNumber(cert.get());
  EXPECT_EQ(ASN1_STRING_type(serial), V_ASN1_INTEGER);
  EXPECT_GT(ASN1_STRING_length(serial), 8);
}

TEST(EnsureSelfSigned, SerialsDiffer) {
  TempDir a;
  TempDir b;
  auto first = loadCert(ensureSelfSigned(a.path(), kNames).cert);
  auto second = loadCert(ensureSelfSigned(b.path(), kNames).cert);
  EXPECT_NE(
      ASN1_INTEGER_cmp(X509_get0_serialNumber(first.get()), X509_get0_serialNumber(second.get())),
      0);
}

TEST(EnsureSelfSigned, ReusesExistingPair) {
  TempDir dir;
  const auto paths = ensureSelfSigned(dir.path(), kNames);
  const std::string cert = readFile(paths.cert);
  const std::string key = readFile(paths.key);
  // Same names in another order and case: still the same certificate.
  const auto again =
      ensureSelfSigned(dir.path(), {"LocalHost", "turn.example.org", "::1", "192.0.2.1"});
  EXPECT_EQ(again, paths);
  EXPECT_EQ(readFile(again.cert), cert);
  EXPECT_EQ(readFile(again.key), key);
}

TEST(EnsureSelfSigned, TightensKeyModeOnReuse) {
  TempDir dir;
  const auto paths = ensureSelfSigned(dir.path(), kNames);
  ASSERT_EQ(::chmod(paths.key.c_str(), 0644), 0);
  ensureSelfSigned(dir.path(), kNames);
  struct stat st {};
  ASSERT_EQ(::stat(paths.key.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600);
}

TEST(EnsureSelfSigned, RegeneratesGarbageCertificate) {
  TempDir dir;
  const auto paths = ensureSelfSigned(dir.path(), kNames);
  writeFile(paths.cert, "-----BEGIN CERTIFICATE-----\nnot base64 at all\n");
  ensureSelfSigned(dir.path(), kNames);
  EXPECT_TRUE(loadCert(paths.cert));
  EXPECT_NO_THROW(fingerprintSha256(paths.cert));
}

TEST(EnsureSelfSigned, RegeneratesGarbageOrMissingKey) {
  TempDir dir;
  const auto paths = ensureSelfSigned(dir.path(), kNames);
  const std::string cert = readFile(paths.cert);
  writeFile(paths.key, "garbage");
  ensureSelfSigned(dir.path(), kNames);
  EXPECT_NE(readFile(paths.cert), cert);
  std::filesystem::remove(paths.key);
  ensureSelfSigned(dir.path(), kNames);
  EXPECT_TRUE(std::filesystem::exists(paths.key));
}

TEST(EnsureSelfSigned, RegeneratesWhenKeyDoesNotMatch) {
  TempDir dir;
  TempDir other;
  const auto paths = ensureSelfSigned(dir.path(), kNames);
  const auto otherPaths = ensureSelfSigned(other.path(), kNames);
  std::filesystem::copy_file(otherPaths.key, paths.key,
                             std::filesystem::copy_options::overwrite_existing);
  const std::string cert = readFile(paths.cert);
  ensureSelfSigned(dir.path(), kNames);
  EXPECT_NE(readFile(paths.cert), cert);
}

TEST(EnsureSelfSigned, RegeneratesWhenNamesChange) {
  TempDir dir;
  const auto paths = ensureSelfSigned(dir.path(), kNames);
  ensureSelfSigned(dir.path(), {"other.example.org"});
  auto cert = loadCert(paths.cert);
  EXPECT_THAT(sans(cert.get()), UnorderedElementsAre("DNS:other.example.org"));
}

TEST(EnsureSelfSigned, RegeneratesExpiredCertificate) {
  TempDir dir;
  const auto paths = ensureSelfSigned(dir.path(), kNames);
  {
    // Re-sign the certificate with a notAfter in the past.
    auto cert = loadCert(paths.cert);
    BIO* bio = BIO_new_file(paths.key.c_str(), "r");
    EVP_PKEY* key = PEM_read_bio_PrivateKey(bio, nullptr, nullptr, nullptr);
    BIO_free(bio);
    X509_gmtime_adj(X509_getm_notBefore(cert.get()), -2 * 86400);
    X509_gmtime_adj(X509_getm_notAfter(cert.get()), -86400);
    ASSERT_GT(X509_sign(cert.get(), key, EVP_sha256()), 0);
    EVP_PKEY_free(key);
    bio = BIO_new_file(paths.cert.c_str(), "w");
    PEM_write_bio_X509(bio, cert.get());
    BIO_free(bio);
  }
  ensureSelfSigned(dir.path(), kNames);
  auto cert = loadCert(paths.cert);
  EXPECT_GT(X509_cmp_current_time(X509_get0_notAfter(cert.get())), 0);
}

TEST(EnsureSelfSigned, RejectsBadNames) {
  TempDir dir;
  EXPECT_THROW(ensureSelfSigned(dir.path(), {}), std::invalid_argument);
  EXPECT_THROW(ensureSelfSigned(dir.path(), {"bad name,with=junk"}), std::invalid_argument);
}

TEST(EnsureSelfSigned, LongFirstNameStillWorks) {
  TempDir dir;
  const std::string longName = std::string(70, 'a') + ".example.org";
  const auto paths = ensureSelfSigned(dir.path(), {longName});
  auto cert = loadCert(paths.cert);
  EXPECT_THAT(sans(cert.get()), UnorderedElementsAre("DNS:" + longName));
}

TEST(EnsureSelfSigned, UnwritableDirectoryThrows) {
  if (::geteuid() == 0) GTEST_SKIP() << "root can write anywhere";
  TempDir dir;
  std::filesystem::create_directories(dir.path() / "tls");
  ::chmod((dir.path() / "tls").c_str(), 0500);
  try {
    ensureSelfSigned(dir.path(), kNames);
    ADD_FAILURE() << "no exception";
  } catch (const std::runtime_error& e) {
    EXPECT_THAT(e.what(), HasSubstr((dir.path() / "tls").string()));
  }
  ::chmod((dir.path() / "tls").c_str(), 0700);
}

TEST(EnsureSelfSigned, UncreatableDirectoryThrowsWithPath) {
  TempDir dir;
  writeFile(dir.path() / "tls", "a file where the directory should be");
  try {
    ensureSelfSigned(dir.path(), kNames);
    ADD_FAILURE() << "no exception";
  } catch (const std::runtime_error& e) {
    EXPECT_THAT(e.what(), HasSubstr((dir.path() / "tls").string()));
  }
}

TEST(FingerprintSha256, FormatsUpperHexWithColons) {
  TempDir dir;
  const auto paths = ensureSelfSigned(dir.path(), kNames);
  const std::string fingerprint = fingerprintSha256(paths.cert);
  EXPECT_TRUE(std::regex_match(fingerprint, std::regex("([0-9A-F]{2}:){31}[0-9A-F]{2}")))
      << fingerprint;
  // Same as OpenSSL's own digest of the DER.
  auto cert = loadCert(paths.cert);
  unsigned char digest[32];
  unsigned int size = 0;
  X509_digest(cert.get(), EVP_sha256(), digest, &size);
  char first[3];
  std::snprintf(first, sizeof first, "%02X", digest[0]);
  EXPECT_EQ(fingerprint.substr(0, 2), first);
}

TEST(FingerprintSha256, ThrowsWithPathOnBadFile) {
  TempDir dir;
  const auto missing = dir.path() / "missing.crt";
  try {
    fingerprintSha256(missing);
    ADD_FAILURE() << "no exception";
  } catch (const std::runtime_error& e) {
    EXPECT_THAT(e.what(), HasSubstr(missing.string()));
  }
  const auto garbage = dir.path() / "garbage.crt";
  writeFile(garbage, "hello");
  EXPECT_THROW(fingerprintSha256(garbage), std::runtime_error);
}

}  // namespace
}  // namespace parley::tls
