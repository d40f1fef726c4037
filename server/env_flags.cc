#include "env_flags.h"

#include <cstdlib>
#include <string>

#include "absl/flags/commandlineflag.h"
#include "absl/flags/reflection.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"

namespace hpsched::server {

absl::Status ApplyEnvironmentToFlags(absl::string_view prefix, std::vector<std::string>* applied) {
  for (const auto& [name, flag] : absl::GetAllFlags()) {
    const std::string variable = absl::StrCat(prefix, absl::AsciiStrToUpper(name));
    const char* value = std::getenv(variable.c_str());
    if (value == nullptr) continue;
    std::string error;
    if (!flag->ParseFrom(value, &error)) {
      return absl::InvalidArgumentError(absl::StrCat(variable, ": ", error));
    }
    if (applied != nullptr) applied->emplace_back(name);
  }
  return absl::OkStatus();
}

}  // namespace hpsched::server
