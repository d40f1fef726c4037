// The PEM files of --tls_cert, --tls_key and --tls_client_ca, read and checked with OpenSSL before
// the gRPC server is built: gRPC reports a bad file only as a failed listen ("cannot listen on
// ...") and a message in its own log, which does not say which file is wrong or why.
#ifndef HPSCHED_SERVER_TLS_FILES_H_
#define HPSCHED_SERVER_TLS_FILES_H_

#include <string>

#include "absl/status/statusor.h"

namespace hpsched::server {

struct TlsFiles {
  std::string cert_chain;   // PEM, one or more certificates, the server's first
  std::string private_key;  // PEM
  std::string client_ca;    // PEM, one or more certificates; empty: no client certificates
};

// Reads the files and checks that the chain holds at least one certificate, that the key parses
// and is the key of the chain's first certificate, and (when client_ca_path is not empty) that the
// CA file holds at least one certificate. Every error is InvalidArgument and names the flag, the
// path and the rule, e.g.
//   --tls_key: /etc/tls/server.key does not match the certificate in --tls_cert /etc/tls/server.pem
//   --tls_client_ca: cannot read /etc/tls/ca.pem: Permission denied
//   --tls_cert: /etc/tls/server.pem holds no PEM certificate ("-----BEGIN CERTIFICATE-----")
absl::StatusOr<TlsFiles> LoadTlsFiles(const std::string& cert_path, const std::string& key_path,
                                      const std::string& client_ca_path);

}  // namespace hpsched::server

#endif  // HPSCHED_SERVER_TLS_FILES_H_
