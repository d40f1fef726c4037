#include "codec/spec_json.h"

#include <google/protobuf/descriptor.h>
#include <google/protobuf/struct.pb.h>
#include <google/protobuf/util/json_util.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace hpsched::codec {
namespace {

using ::google::protobuf::Descriptor;
using ::google::protobuf::EnumDescriptor;
using ::google::protobuf::FieldDescriptor;
using ::google::protobuf::ListValue;
using ::google::protobuf::Value;

// Spellings of other libraries that differ from ours by more than case and underscores.
struct Alias {
  absl::string_view spelling;  // Compared after Folded().
  absl::string_view field;
};
constexpr Alias kAliases[] = {
    {"schedulers", "schedules"},  // torch.optim.lr_scheduler.SequentialLR, ChainedScheduler.
};

// Lower case without underscores: "T_max", "tMax" and "t_max" all fold to "tmax".
std::string Folded(absl::string_view name) {
  std::string out;
  for (char c : name) {
    if (c != '_') out += absl::ascii_tolower(static_cast<unsigned char>(c));
  }
  return out;
}

std::string Quoted(absl::string_view s) { return absl::StrCat("\"", s, "\""); }

// "a number", "the string \"x\"", ...: what a JSON value is, for errors.
std::string Describe(const Value& v) {
  switch (v.kind_case()) {
    case Value::kNullValue:
      return "null";
    case Value::kNumberValue: {
      char buffer[32];  // The shortest text that reads back as the same double.
      const auto end = std::to_chars(buffer, buffer + sizeof(buffer), v.number_value()).ptr;
      return absl::StrCat("the number ", absl::string_view(buffer, end - buffer));
    }
    case Value::kStringValue:
      return absl::StrCat("the string ", Quoted(v.string_value()));
    case Value::kBoolValue:
      return v.bool_value() ? "true" : "false";
    case Value::kStructValue:
      return "an object";
    case Value::kListValue:
      return "a list";
    default:
      return "nothing";
  }
}

absl::Status Invalid(absl::string_view path, absl::string_view rule) {
  return absl::InvalidArgumentError(absl::StrCat(path, ": ", rule));
}

// The name nearest to `key` if it is near enough to be a typo, else empty. Names are compared
// folded, without their first `skip` characters (an enum's common prefix).
std::string NearestName(absl::string_view key, const std::vector<std::string>& names, size_t skip) {
  const std::string folded = Folded(key);
  std::string best;
  int best_distance = 0;
  for (const std::string& name : names) {
    const int d = EditDistance(folded, Folded(absl::string_view(name).substr(skip)));
    if (best.empty() || d < best_distance) {
      best = name;
      best_distance = d;
    }
  }
  const int allowed = std::max<int>(1, std::min<int>(3, static_cast<int>(folded.size()) / 3));
  return best_distance <= allowed ? best : "";
}

// "WHAT; did you mean "x"? (valid: a, b, c)".
std::string UnknownName(absl::string_view what, absl::string_view key,
                        std::vector<std::string> names, size_t skip = 0) {
  std::sort(names.begin(), names.end());
  const std::string nearest = NearestName(key, names, skip);
  return absl::StrCat(what,
                      nearest.empty() ? "" : absl::StrCat("; did you mean ", Quoted(nearest), "?"),
                      " (valid: ", absl::StrJoin(names, ", "), ")");
}

const FieldDescriptor* FindField(const Descriptor* d, absl::string_view key) {
  const std::string k(key);
  if (const FieldDescriptor* f = d->FindFieldByName(k); f != nullptr) return f;
  for (int i = 0; i < d->field_count(); ++i) {
    if (d->field(i)->json_name() == k) return d->field(i);
  }
  const std::string folded = Folded(key);
  for (int i = 0; i < d->field_count(); ++i) {
    if (Folded(d->field(i)->name()) == folded) return d->field(i);
  }
  for (const Alias& alias : kAliases) {
    if (alias.spelling == folded) return d->FindFieldByName(std::string(alias.field));
  }
  return nullptr;
}

bool IsWellKnown(const Descriptor* d) {
  return absl::StartsWith(d->file()->name(), "google/protobuf/");
}

absl::Status NormalizeMessage(const Descriptor* d, const std::string& path, Value* v);

// A number, or a string protobuf JSON reads as one ("1e-3", "NaN", "Infinity").
bool IsNumber(const Value& v, double* out) {
  if (v.kind_case() == Value::kNumberValue) {
    *out = v.number_value();
    return true;
  }
  if (v.kind_case() != Value::kStringValue) return false;
  const std::string& s = v.string_value();
  if (s == "NaN" || s == "Infinity" || s == "-Infinity") {
    *out = s == "NaN" ? NAN : (s[0] == '-' ? -INFINITY : INFINITY);
    return true;
  }
  return absl::SimpleAtod(s, out) && !absl::StrContains(absl::AsciiStrToLower(s), "n");
}

absl::Status NormalizeEnum(const EnumDescriptor* e, const std::string& path, Value* v) {
  std::vector<std::string> names;
  for (int i = 0; i < e->value_count(); ++i) names.push_back(e->value(i)->name());
  if (v->kind_case() == Value::kNumberValue) {
    if (e->FindValueByNumber(static_cast<int>(v->number_value())) != nullptr &&
        std::floor(v->number_value()) == v->number_value()) {
      return absl::OkStatus();
    }
    return Invalid(
        path, absl::StrCat("must be one of ", absl::StrJoin(names, ", "), ", got ", Describe(*v)));
  }
  if (v->kind_case() != Value::kStringValue) {
    return Invalid(
        path, absl::StrCat("must be one of ", absl::StrJoin(names, ", "), ", got ", Describe(*v)));
  }
  // The prefix every value shares, up to an underscore: SEGMENT_TIME_ of SEGMENT_TIME_LOCAL.
  std::string prefix = names.front();
  for (const std::string& name : names) {
    size_t n = 0;
    while (n < prefix.size() && n < name.size() && prefix[n] == name[n]) ++n;
    prefix.resize(n);
  }
  prefix.resize(prefix.rfind('_') == std::string::npos ? 0 : prefix.rfind('_') + 1);
  const std::string folded = Folded(v->string_value());
  for (const std::string& name : names) {
    if (Folded(name) == folded || Folded(name.substr(prefix.size())) == folded) {
      v->set_string_value(name);
      return absl::OkStatus();
    }
  }
  return Invalid(path, UnknownName(absl::StrCat(Quoted(v->string_value()), " is not a value of ",
                                                e->full_name()),
                                   v->string_value(), names, prefix.size()));
}

// One (non-repeated) value of field `f`.
absl::Status NormalizeScalar(const FieldDescriptor* f, const std::string& path, Value* v) {
  if (v->kind_case() == Value::kNullValue) return absl::OkStatus();
  double number = 0;
  switch (f->cpp_type()) {
    case FieldDescriptor::CPPTYPE_MESSAGE:
      return NormalizeMessage(f->message_type(), path, v);
    case FieldDescriptor::CPPTYPE_ENUM:
      return NormalizeEnum(f->enum_type(), path, v);
    case FieldDescriptor::CPPTYPE_DOUBLE:
    case FieldDescriptor::CPPTYPE_FLOAT:
      if (!IsNumber(*v, &number)) {
        return Invalid(path, absl::StrCat("must be a number, got ", Describe(*v)));
      }
      return absl::OkStatus();
    case FieldDescriptor::CPPTYPE_INT32:
    case FieldDescriptor::CPPTYPE_INT64:
    case FieldDescriptor::CPPTYPE_UINT32:
    case FieldDescriptor::CPPTYPE_UINT64:
      if (!IsNumber(*v, &number) || !std::isfinite(number) || std::floor(number) != number) {
        return Invalid(path, absl::StrCat("must be an integer, got ", Describe(*v)));
      }
      // A JSON number is read as a double, exact up to 2^53 (the limit of every step field) and
      // rounded beyond (2^53 + 1 reads as 2^53). Above 2^53 it is refused rather than rounded; a
      // string keeps every digit.
      if (v->kind_case() == Value::kNumberValue && std::abs(number) > 9007199254740992.0) {
        return Invalid(path,
                       "must be at most 2^53 in magnitude as a JSON number (beyond, numbers lose "
                       "digits); write larger integers as strings, e.g. \"9007199254740993\"");
      }
      return absl::OkStatus();
    case FieldDescriptor::CPPTYPE_BOOL:
      if (v->kind_case() != Value::kBoolValue) {
        return Invalid(path, absl::StrCat("must be true or false, got ", Describe(*v)));
      }
      return absl::OkStatus();
    case FieldDescriptor::CPPTYPE_STRING:
      if (v->kind_case() != Value::kStringValue) {
        return Invalid(path, absl::StrCat("must be a string, got ", Describe(*v)));
      }
      return absl::OkStatus();
  }
  return absl::OkStatus();
}

absl::Status NormalizeField(const FieldDescriptor* f, const std::string& path, Value* v) {
  if (v->kind_case() == Value::kNullValue) return absl::OkStatus();
  if (f->is_map()) {
    if (v->kind_case() != Value::kStructValue) {
      return Invalid(path, absl::StrCat("must be an object, got ", Describe(*v)));
    }
    const FieldDescriptor* value_field = f->message_type()->map_value();
    for (auto& [key, entry] : *v->mutable_struct_value()->mutable_fields()) {
      absl::Status s =
          NormalizeScalar(value_field, absl::StrCat(path, "[", Quoted(key), "]"), &entry);
      if (!s.ok()) return s;
    }
    return absl::OkStatus();
  }
  if (!f->is_repeated()) return NormalizeScalar(f, path, v);
  if (v->kind_case() != Value::kListValue) {
    const bool per_group = f->cpp_type() == FieldDescriptor::CPPTYPE_DOUBLE;
    double number = 0;
    if (per_group && IsNumber(*v, &number)) {
      // Rule 1: one number for every group.
      Value list;
      *list.mutable_list_value()->add_values() = *v;
      *v = std::move(list);
      return absl::OkStatus();
    }
    if (per_group) {
      return Invalid(path,
                     absl::StrCat("must be a number or a list of numbers (one per parameter "
                                  "group), got ",
                                  Describe(*v),
                                  "; strict protobuf JSON clients such as grpcurl need the list "
                                  "form, e.g. [0.1]"));
    }
    return Invalid(path, absl::StrCat("must be a list, got ", Describe(*v)));
  }
  ListValue* list = v->mutable_list_value();
  for (int i = 0; i < list->values_size(); ++i) {
    absl::Status s = NormalizeScalar(f, absl::StrCat(path, "[", i, "]"), list->mutable_values(i));
    if (!s.ok()) return s;
  }
  return absl::OkStatus();
}

absl::Status NormalizeMessage(const Descriptor* d, const std::string& path, Value* v) {
  if (IsWellKnown(d) || v->kind_case() == Value::kNullValue) return absl::OkStatus();
  if (v->kind_case() != Value::kStructValue) {
    return Invalid(path,
                   absl::StrCat("must be an object (", d->full_name(), "), got ", Describe(*v)));
  }
  auto* fields = v->mutable_struct_value()->mutable_fields();
  std::vector<std::string> keys;
  for (const auto& [key, unused] : *fields) keys.push_back(key);
  std::sort(keys.begin(), keys.end());  // Errors in a stable order.
  google::protobuf::Struct out;
  // The key that set each oneof, for "set exactly one".
  std::vector<std::pair<const google::protobuf::OneofDescriptor*, std::string>> oneofs;
  for (const std::string& key : keys) {
    const std::string key_path = path.empty() ? key : absl::StrCat(path, ".", key);
    const FieldDescriptor* f = FindField(d, key);
    if (f == nullptr) {
      std::vector<std::string> names;
      for (int i = 0; i < d->field_count(); ++i) names.push_back(d->field(i)->name());
      return Invalid(key_path,
                     UnknownName(absl::StrCat("is not a field of ", d->full_name()), key, names));
    }
    if (out.fields().contains(f->name())) {
      return Invalid(key_path, absl::StrCat("names the field ", f->name(), " a second time"));
    }
    Value value = std::move((*fields)[key]);
    if (const auto* oneof = f->real_containing_oneof();
        oneof != nullptr && value.kind_case() != Value::kNullValue) {
      for (const auto& [seen, seen_key] : oneofs) {
        if (seen == oneof) {
          return Invalid(path.empty() ? key : path,
                         absl::StrCat("sets both ", seen_key, " and ", key, " (", oneof->name(),
                                      ": set exactly one)"));
        }
      }
      oneofs.emplace_back(oneof, key);
    }
    const std::string field_path = path.empty() ? f->name() : absl::StrCat(path, ".", f->name());
    if (absl::Status s = NormalizeField(f, field_path, &value); !s.ok()) return s;
    (*out.mutable_fields())[f->name()] = std::move(value);
  }
  *v->mutable_struct_value() = std::move(out);
  return absl::OkStatus();
}

}  // namespace

int EditDistance(absl::string_view a, absl::string_view b) {
  std::vector<int> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = static_cast<int>(j);
  for (size_t i = 1; i <= a.size(); ++i) {
    int diagonal = row[0];
    row[0] = static_cast<int>(i);
    for (size_t j = 1; j <= b.size(); ++j) {
      const int above = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diagonal = above;
    }
  }
  return row[b.size()];
}

absl::Status ParseSpecJson(absl::string_view json, absl::string_view root,
                           google::protobuf::Message* message) {
  message->Clear();
  const std::string root_path(root);
  Value value;
  if (auto s = google::protobuf::util::JsonStringToMessage(std::string(json), &value); !s.ok()) {
    return Invalid(root_path, absl::StrCat("is not valid JSON: ", s.message().as_string()));
  }
  if (absl::Status s = NormalizeMessage(message->GetDescriptor(), root_path, &value); !s.ok()) {
    return s;
  }
  std::string normalized;
  if (auto s = google::protobuf::util::MessageToJsonString(value, &normalized); !s.ok()) {
    return Invalid(root_path, s.message().as_string());
  }
  if (auto s = google::protobuf::util::JsonStringToMessage(normalized, message); !s.ok()) {
    // What the walk does not check (a number out of an int32's range, a malformed timestamp).
    return Invalid(root_path, absl::StrCat("not a valid ", message->GetDescriptor()->full_name(),
                                           ": ", s.message().as_string()));
  }
  return absl::OkStatus();
}

}  // namespace hpsched::codec
