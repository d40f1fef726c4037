#include "tls_files.h"

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <memory>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "core/status_macros.h"

namespace hpsched::server {

namespace {

struct BioFree {
  void operator()(BIO* bio) const { BIO_free(bio); }
};
struct X509Free {
  void operator()(X509* cert) const { X509_free(cert); }
};
struct KeyFree {
  void operator()(EVP_PKEY* key) const { EVP_PKEY_free(key); }
};
using Bio = std::unique_ptr<BIO, BioFree>;
using Cert = std::unique_ptr<X509, X509Free>;
using Key = std::unique_ptr<EVP_PKEY, KeyFree>;

absl::StatusOr<std::string> ReadPem(const std::string& flag, const std::string& path) {
  errno = 0;
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::InvalidArgumentError(absl::StrCat("--", flag, ": cannot read ", path, ": ",
                                                   errno != 0 ? std::strerror(errno) : "error"));
  }
  std::stringstream text;
  text << in.rdbuf();
  if (in.bad()) {
    return absl::InvalidArgumentError(absl::StrCat("--", flag, ": cannot read ", path));
  }
  return text.str();
}

Bio MemoryBio(const std::string& pem) {
  return Bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
}

// The first PEM certificate in `pem`, and how many there are.
absl::StatusOr<Cert> FirstCertificate(const std::string& flag, const std::string& path,
                                      const std::string& pem) {
  Bio bio = MemoryBio(pem);
  Cert first(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
  ERR_clear_error();
  if (first == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--", flag, ": ", path,
        " holds no PEM certificate (a block \"-----BEGIN CERTIFICATE-----\" that parses)"));
  }
  // Every further block must parse as well: gRPC would reject the file otherwise.
  while (true) {
    Cert next(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
    if (next == nullptr) break;
  }
  const unsigned long error = ERR_peek_last_error();
  ERR_clear_error();
  if (error != 0 && ERR_GET_REASON(error) != PEM_R_NO_START_LINE) {
    return absl::InvalidArgumentError(absl::StrCat("--", flag, ": ", path,
                                                   " holds a certificate that does not parse (",
                                                   ERR_reason_error_string(error), ")"));
  }
  return first;
}

}  // namespace

absl::StatusOr<TlsFiles> LoadTlsFiles(const std::string& cert_path, const std::string& key_path,
                                      const std::string& client_ca_path) {
  TlsFiles files;
  ASSIGN_OR_RETURN(files.cert_chain, ReadPem("tls_cert", cert_path));
  ASSIGN_OR_RETURN(files.private_key, ReadPem("tls_key", key_path));
  ASSIGN_OR_RETURN(Cert cert, FirstCertificate("tls_cert", cert_path, files.cert_chain));
  Bio key_bio = MemoryBio(files.private_key);
  Key key(PEM_read_bio_PrivateKey(key_bio.get(), nullptr, nullptr, nullptr));
  ERR_clear_error();
  if (key == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--tls_key: ", key_path,
        " holds no PEM private key that parses (an unencrypted \"-----BEGIN PRIVATE KEY-----\", "
        "\"RSA PRIVATE KEY\" or \"EC PRIVATE KEY\" block)"));
  }
  if (X509_check_private_key(cert.get(), key.get()) != 1) {
    ERR_clear_error();
    return absl::InvalidArgumentError(absl::StrCat(
        "--tls_key: ", key_path, " does not match the certificate in --tls_cert ", cert_path));
  }
  if (!client_ca_path.empty()) {
    ASSIGN_OR_RETURN(files.client_ca, ReadPem("tls_client_ca", client_ca_path));
    RETURN_IF_ERROR(FirstCertificate("tls_client_ca", client_ca_path, files.client_ca).status());
  }
  return files;
}

}  // namespace hpsched::server
