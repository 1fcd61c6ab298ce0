// Server certificates: a self-signed one for installs without a real certificate, and the
// SHA-256 fingerprint clients and `netcheck` can pin. Start-up code: errors throw.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

namespace parley::tls {

struct CertificatePaths {
  std::filesystem::path cert;  // PEM certificate (chain: leaf first)
  std::filesystem::path key;   // PEM private key, unencrypted

  friend bool operator==(const CertificatePaths&, const CertificatePaths&) = default;
};

// Returns dataDir/tls/self-signed.crt and .key, creating them on first use: an EC P-256 key
// (file mode 0600), an X.509 v3 certificate valid for 397 days (the CA/Browser Forum maximum)
// with a random serial, CN = names[0] and a SubjectAltName holding every name: IP literals
// ("192.0.2.1", "2001:db8::1", "[::1]") as IP addresses, the rest as DNS names.
// Later calls reuse the pair unless it is unreadable, the key does not match, the certificate
// expires within a day or its SubjectAltName differs from `names`; then it is regenerated and
// the reason logged. Files are written to a temporary name and renamed, so a crash never
// leaves half a file.
// Throws std::invalid_argument for an empty or malformed name, std::runtime_error (naming the
// path and the reason) when the directory or files cannot be written.
CertificatePaths ensureSelfSigned(const std::filesystem::path& dataDir,
                                  const std::vector<std::string>& names);

// SHA-256 of the DER certificate in the PEM file `cert`, as "AB:CD:...:EF" (95 characters).
// Throws std::runtime_error naming the path when it is unreadable or not a PEM certificate.
std::string fingerprintSha256(const std::filesystem::path& cert);

}  // namespace parley::tls
