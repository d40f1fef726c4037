#include "service/auth.h"

#include <fstream>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace hpsched::service {
namespace {

// Compares every byte of the longer input, so the time depends on the lengths only.
bool ConstantTimeEquals(absl::string_view a, absl::string_view b) {
  const size_t n = std::max(a.size(), b.size());
  unsigned char diff = a.size() == b.size() ? 0 : 1;
  for (size_t i = 0; i < n; ++i) {
    const unsigned char x = i < a.size() ? static_cast<unsigned char>(a[i]) : 0;
    const unsigned char y = i < b.size() ? static_cast<unsigned char>(b[i]) : 0;
    diff |= x ^ y;
  }
  return diff == 0;
}

const char* RoleName(Role role) {
  switch (role) {
    case Role::kReader:
      return "reader";
    case Role::kTrainer:
      return "trainer";
    case Role::kAdmin:
      return "admin";
  }
  return "?";
}

}  // namespace

absl::StatusOr<std::unique_ptr<Authenticator>> Authenticator::FromText(absl::string_view text) {
  auto auth = std::unique_ptr<Authenticator>(new Authenticator());
  int line_number = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    ++line_number;
    line = absl::StripAsciiWhitespace(line);
    if (line.empty() || line[0] == '#') continue;
    std::vector<absl::string_view> fields = absl::StrSplit(line, ' ', absl::SkipEmpty());
    const std::string where = absl::StrCat("token file line ", line_number, ": ");
    if (fields.size() != 2) {
      return absl::InvalidArgumentError(absl::StrCat(where, "must be \"<role> <token>\""));
    }
    Role role;
    if (fields[0] == "reader") {
      role = Role::kReader;
    } else if (fields[0] == "trainer") {
      role = Role::kTrainer;
    } else if (fields[0] == "admin") {
      role = Role::kAdmin;
    } else {
      return absl::InvalidArgumentError(
          absl::StrCat(where, "role must be reader, trainer or admin, got \"", fields[0], "\""));
    }
    if (fields[1].size() < kMinTokenLength) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, "token must be at least ", kMinTokenLength, " characters"));
    }
    for (const Entry& e : auth->entries_) {
      if (e.token == fields[1])
        return absl::InvalidArgumentError(absl::StrCat(where, "duplicate token"));
    }
    auth->entries_.push_back({role, std::string(fields[1])});
  }
  if (auth->entries_.empty()) return absl::InvalidArgumentError("token file: has no tokens");
  return auth;
}

absl::StatusOr<std::unique_ptr<Authenticator>> Authenticator::FromFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::UnavailableError(absl::StrCat("--auth_token_file: cannot read ", path));
  std::stringstream text;
  text << in.rdbuf();
  return FromText(text.str());
}

absl::Status Authenticator::Check(absl::string_view authorization, Role required,
                                  absl::string_view method) const {
  if (authorization.empty()) {
    return absl::UnauthenticatedError(
        absl::StrCat(method, ": needs an \"authorization: Bearer <token>\" header"));
  }
  absl::string_view token = authorization;
  if (!absl::ConsumePrefix(&token, "Bearer ")) {
    return absl::UnauthenticatedError(
        absl::StrCat(method, ": the authorization header must be \"Bearer <token>\""));
  }
  const Entry* match = nullptr;
  for (const Entry& e : entries_) {
    if (ConstantTimeEquals(e.token, token)) match = &e;  // No early exit: every token is compared.
  }
  if (match == nullptr) return absl::UnauthenticatedError(absl::StrCat(method, ": unknown token"));
  if (match->role < required) {
    return absl::PermissionDeniedError(absl::StrCat(method, ": needs role ", RoleName(required),
                                                    ", the token has role ",
                                                    RoleName(match->role)));
  }
  return absl::OkStatus();
}

namespace {

// The one table of who may call what.
constexpr std::pair<absl::string_view, Role> kRoles[] = {
    {"GetJob", Role::kReader},           {"ListJobs", Role::kReader},
    {"GetValues", Role::kReader},        {"BatchGetValues", Role::kReader},
    {"Preview", Role::kReader},          {"WatchJob", Role::kReader},
    {"ReportMetrics", Role::kTrainer},   {"CreateJob", Role::kAdmin},
    {"UpdateJob", Role::kAdmin},         {"DeleteJob", Role::kAdmin},
    {"GetMetricReports", Role::kReader},
};

}  // namespace

Role RequiredRole(absl::string_view method) {
  for (const auto& [name, role] : kRoles) {
    if (name == method) return role;
  }
  return Role::kAdmin;
}

}  // namespace hpsched::service
