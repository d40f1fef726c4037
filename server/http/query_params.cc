#include "http/query_params.h"

#include <google/protobuf/descriptor.h>
#include <google/protobuf/reflection.h>

#include <cmath>
#include <cstdint>
#include <limits>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace hpsched::http {
namespace {

using google::protobuf::Descriptor;
using google::protobuf::FieldDescriptor;
using google::protobuf::Message;
using google::protobuf::Reflection;

const FieldDescriptor* FindField(const Descriptor* descriptor, absl::string_view name) {
  const std::string key(name);
  if (const FieldDescriptor* f = descriptor->FindFieldByName(key)) return f;
  for (int i = 0; i < descriptor->field_count(); ++i) {
    if (descriptor->field(i)->json_name() == key) return descriptor->field(i);
  }
  return nullptr;
}

absl::Status Bad(absl::string_view param, absl::string_view rule, absl::string_view value) {
  return absl::InvalidArgumentError(
      absl::StrCat("query parameter ", param, ": ", rule, ", got \"", value, "\""));
}

absl::Status SetScalar(Message* message, const FieldDescriptor* field, absl::string_view param,
                       const std::string& value) {
  const Reflection* r = message->GetReflection();
  const bool repeated = field->is_repeated();
  switch (field->cpp_type()) {
    case FieldDescriptor::CPPTYPE_INT32: {
      int32_t v;
      if (!absl::SimpleAtoi(value, &v)) return Bad(param, "must be a 32-bit integer", value);
      repeated ? r->AddInt32(message, field, v) : r->SetInt32(message, field, v);
      return absl::OkStatus();
    }
    case FieldDescriptor::CPPTYPE_INT64: {
      int64_t v;
      if (!absl::SimpleAtoi(value, &v)) return Bad(param, "must be an integer", value);
      repeated ? r->AddInt64(message, field, v) : r->SetInt64(message, field, v);
      return absl::OkStatus();
    }
    case FieldDescriptor::CPPTYPE_UINT32: {
      uint32_t v;
      if (!absl::SimpleAtoi(value, &v))
        return Bad(param, "must be an unsigned 32-bit integer", value);
      repeated ? r->AddUInt32(message, field, v) : r->SetUInt32(message, field, v);
      return absl::OkStatus();
    }
    case FieldDescriptor::CPPTYPE_UINT64: {
      uint64_t v;
      if (!absl::SimpleAtoi(value, &v)) return Bad(param, "must be an unsigned integer", value);
      repeated ? r->AddUInt64(message, field, v) : r->SetUInt64(message, field, v);
      return absl::OkStatus();
    }
    case FieldDescriptor::CPPTYPE_DOUBLE:
    case FieldDescriptor::CPPTYPE_FLOAT: {
      double v;
      if (!absl::SimpleAtod(value, &v)) return Bad(param, "must be a number", value);
      if (field->cpp_type() == FieldDescriptor::CPPTYPE_DOUBLE) {
        repeated ? r->AddDouble(message, field, v) : r->SetDouble(message, field, v);
      } else {
        const float f = static_cast<float>(v);
        repeated ? r->AddFloat(message, field, f) : r->SetFloat(message, field, f);
      }
      return absl::OkStatus();
    }
    case FieldDescriptor::CPPTYPE_BOOL: {
      bool v;
      if (value == "true" || value == "1") {
        v = true;
      } else if (value == "false" || value == "0") {
        v = false;
      } else {
        return Bad(param, "must be true or false", value);
      }
      repeated ? r->AddBool(message, field, v) : r->SetBool(message, field, v);
      return absl::OkStatus();
    }
    case FieldDescriptor::CPPTYPE_ENUM: {
      const google::protobuf::EnumValueDescriptor* e = field->enum_type()->FindValueByName(value);
      int number;
      if (e == nullptr && absl::SimpleAtoi(value, &number)) {
        e = field->enum_type()->FindValueByNumber(number);
      }
      if (e == nullptr) {
        return Bad(param, absl::StrCat("must be a value of ", field->enum_type()->full_name()),
                   value);
      }
      repeated ? r->AddEnum(message, field, e) : r->SetEnum(message, field, e);
      return absl::OkStatus();
    }
    case FieldDescriptor::CPPTYPE_STRING:
      repeated ? r->AddString(message, field, value) : r->SetString(message, field, value);
      return absl::OkStatus();
    case FieldDescriptor::CPPTYPE_MESSAGE:
      break;
  }
  return absl::InvalidArgumentError(absl::StrCat(
      "query parameter ", param, ": a message field; send it in a request body instead"));
}

}  // namespace

absl::Status ApplyQueryParams(const std::vector<std::pair<std::string, std::string>>& params,
                              Message* message) {
  for (const auto& [param, value] : params) {
    Message* target = message;
    const FieldDescriptor* field = nullptr;
    std::vector<absl::string_view> parts = absl::StrSplit(param, '.');
    for (size_t i = 0; i < parts.size(); ++i) {
      field = FindField(target->GetDescriptor(), parts[i]);
      if (field == nullptr) {
        return absl::InvalidArgumentError(absl::StrCat("query parameter ", param,
                                                       ": no such field of ",
                                                       target->GetDescriptor()->full_name()));
      }
      if (i + 1 == parts.size()) break;
      if (field->cpp_type() != FieldDescriptor::CPPTYPE_MESSAGE || field->is_repeated()) {
        return absl::InvalidArgumentError(absl::StrCat("query parameter ", param, ": ", parts[i],
                                                       " is not a singular message field"));
      }
      target = target->GetReflection()->MutableMessage(target, field);
    }
    if (field->is_map()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "query parameter ", param, ": a map field; send it in a request body instead"));
    }
    if (absl::Status s = SetScalar(target, field, param, value); !s.ok()) return s;
  }
  return absl::OkStatus();
}

}  // namespace hpsched::http
