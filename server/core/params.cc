#include "core/params.h"

#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/compile_cache.h"

namespace hpsched::core {

void CompileContext::MarkGroupDependent() const {
  if (cache != nullptr) cache->MarkGroupDependent();
}

Params::Params(const ScheduleSpec& spec, const CompileContext& context)
    : spec_(spec),
      context_(context),
      kind_path_(absl::StrCat(context.path, ".", spec.kind.view())) {}

const ParamValue* Params::Find(absl::string_view name) const {
  auto it = spec_.params.find(name);
  return it == spec_.params.end() ? nullptr : &it->second;
}

bool Params::Has(absl::string_view name) const { return Find(name) != nullptr; }

std::string Params::FieldPath(absl::string_view name) const {
  return absl::StrCat(kind_path_, ".", name);
}

absl::Status Params::Error(absl::string_view name, absl::string_view rule) const {
  return absl::InvalidArgumentError(absl::StrCat(FieldPath(name), ": ", rule));
}

absl::StatusOr<int64_t> Params::Int(absl::string_view name) const {
  const ParamValue* value = Find(name);
  if (value == nullptr) return Error(name, "is required");
  if (const auto* v = std::get_if<int64_t>(value)) return *v;
  return Error(name, "must be an integer");
}

absl::StatusOr<int64_t> Params::Int(absl::string_view name, int64_t default_value) const {
  if (!Has(name)) return default_value;
  return Int(name);
}

absl::StatusOr<double> Params::Double(absl::string_view name) const {
  const ParamValue* value = Find(name);
  if (value == nullptr) return Error(name, "is required");
  const auto* v = std::get_if<double>(value);
  if (v == nullptr) return Error(name, "must be a number");
  if (!std::isfinite(*v)) return Error(name, absl::StrCat("must be finite, got ", *v));
  if (std::fabs(*v) > kMaxMagnitude)
    return Error(name, absl::StrCat("must be within +-1e150, got ", *v));
  return *v;
}

absl::StatusOr<double> Params::Double(absl::string_view name, double default_value) const {
  if (!Has(name)) return default_value;
  return Double(name);
}

absl::StatusOr<std::string> Params::String(absl::string_view name) const {
  const ParamValue* value = Find(name);
  if (value == nullptr) return Error(name, "is required");
  if (const auto* v = std::get_if<std::string>(value)) return *v;
  return Error(name, "must be a string");
}

absl::StatusOr<bool> Params::Bool(absl::string_view name, bool default_value) const {
  const ParamValue* value = Find(name);
  if (value == nullptr) return default_value;
  if (const auto* v = std::get_if<bool>(value)) return *v;
  return Error(name, "must be a boolean");
}

absl::StatusOr<std::string> Params::Enum(absl::string_view name, absl::string_view default_value,
                                         std::initializer_list<absl::string_view> allowed) const {
  const ParamValue* value = Find(name);
  if (value == nullptr) return std::string(default_value);
  const auto* v = std::get_if<std::string>(value);
  if (v == nullptr) return Error(name, "must be a string");
  for (absl::string_view a : allowed) {
    if (*v == a) return *v;
  }
  return Error(name, absl::StrCat("must be one of \"", absl::StrJoin(allowed, "\", \""),
                                  "\", got \"", *v, "\""));
}

absl::StatusOr<std::vector<int64_t>> Params::Ints(absl::string_view name) const {
  const ParamValue* value = Find(name);
  if (value == nullptr) return std::vector<int64_t>{};
  if (const auto* v = std::get_if<std::vector<int64_t>>(value)) return *v;
  return Error(name, "must be a list of integers");
}

absl::StatusOr<std::vector<double>> Params::Doubles(absl::string_view name) const {
  const ParamValue* value = Find(name);
  if (value == nullptr) return std::vector<double>{};
  const auto* v = std::get_if<std::vector<double>>(value);
  if (v == nullptr) return Error(name, "must be a list of numbers");
  for (size_t i = 0; i < v->size(); ++i) {
    if (!std::isfinite((*v)[i])) {
      return absl::InvalidArgumentError(
          absl::StrCat(FieldPath(name), "[", i, "]: must be finite, got ", (*v)[i]));
    }
    if (std::fabs((*v)[i]) > kMaxMagnitude) {
      return absl::InvalidArgumentError(
          absl::StrCat(FieldPath(name), "[", i, "]: must be within +-1e150, got ", (*v)[i]));
    }
  }
  return *v;
}

absl::StatusOr<double> Params::PerGroupDouble(absl::string_view name,
                                              std::optional<double> default_value) const {
  auto values = Doubles(name);
  if (!values.ok()) return values.status();
  if (values->empty()) {
    if (default_value.has_value()) return *default_value;
    return Error(name, "is required");
  }
  if (values->size() == 1) return (*values)[0];
  context_.MarkGroupDependent();
  if (values->size() != static_cast<size_t>(context_.num_groups)) {
    return Error(name, absl::StrCat("must have 1 value or one per parameter group (",
                                    context_.num_groups, "), got ", values->size()));
  }
  return (*values)[context_.group];
}

}  // namespace hpsched::core
