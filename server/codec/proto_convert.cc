#include "codec/proto_convert.h"

#include <google/protobuf/util/time_util.h>

#include <set>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "core/job_id.h"

namespace hpsched::codec {
namespace {

using google::protobuf::FieldDescriptor;
using google::protobuf::Message;
using google::protobuf::Reflection;

void ReadRepeated(const Message& message, const FieldDescriptor* field, core::ScheduleSpec* spec) {
  const Reflection* reflection = message.GetReflection();
  const int size = reflection->FieldSize(message, field);
  if (size == 0) return;
  switch (field->cpp_type()) {
    case FieldDescriptor::CPPTYPE_INT32:
    case FieldDescriptor::CPPTYPE_INT64: {
      std::vector<int64_t> values;
      for (int i = 0; i < size; ++i) {
        values.push_back(field->cpp_type() == FieldDescriptor::CPPTYPE_INT32
                             ? reflection->GetRepeatedInt32(message, field, i)
                             : reflection->GetRepeatedInt64(message, field, i));
      }
      spec->params.emplace(field->name(), std::move(values));
      break;
    }
    case FieldDescriptor::CPPTYPE_DOUBLE: {
      std::vector<double> values;
      for (int i = 0; i < size; ++i)
        values.push_back(reflection->GetRepeatedDouble(message, field, i));
      spec->params.emplace(field->name(), std::move(values));
      break;
    }
    case FieldDescriptor::CPPTYPE_MESSAGE:
      if (field->message_type() == hpsched::v1::Schedule::descriptor()) {
        for (int i = 0; i < size; ++i) {
          spec->children.push_back(ScheduleFromProto(static_cast<const hpsched::v1::Schedule&>(
              reflection->GetRepeatedMessage(message, field, i))));
        }
      }
      break;
    default:
      break;  // No kind uses other repeated types.
  }
}

void ReadSingular(const Message& message, const FieldDescriptor* field, core::ScheduleSpec* spec) {
  const Reflection* reflection = message.GetReflection();
  if (field->has_presence() && !reflection->HasField(message, field)) return;
  switch (field->cpp_type()) {
    case FieldDescriptor::CPPTYPE_INT32:
      spec->params.emplace(field->name(), int64_t{reflection->GetInt32(message, field)});
      break;
    case FieldDescriptor::CPPTYPE_INT64:
      spec->params.emplace(field->name(), int64_t{reflection->GetInt64(message, field)});
      break;
    case FieldDescriptor::CPPTYPE_DOUBLE:
      spec->params.emplace(field->name(), reflection->GetDouble(message, field));
      break;
    case FieldDescriptor::CPPTYPE_BOOL:
      spec->params.emplace(field->name(), reflection->GetBool(message, field));
      break;
    case FieldDescriptor::CPPTYPE_STRING:
      spec->params.emplace(field->name(), reflection->GetString(message, field));
      break;
    default:
      break;  // No kind uses other singular types.
  }
}

struct ParamWriter {
  Message* message;
  const FieldDescriptor* field;
  void operator()(bool v) const { message->GetReflection()->SetBool(message, field, v); }
  void operator()(int64_t v) const {
    if (field->cpp_type() == FieldDescriptor::CPPTYPE_INT32) {
      message->GetReflection()->SetInt32(message, field, static_cast<int32_t>(v));
    } else {
      message->GetReflection()->SetInt64(message, field, v);
    }
  }
  void operator()(double v) const { message->GetReflection()->SetDouble(message, field, v); }
  void operator()(const std::string& v) const {
    message->GetReflection()->SetString(message, field, v);
  }
  void operator()(const std::vector<int64_t>& values) const {
    for (int64_t v : values) {
      if (field->cpp_type() == FieldDescriptor::CPPTYPE_INT32) {
        message->GetReflection()->AddInt32(message, field, static_cast<int32_t>(v));
      } else {
        message->GetReflection()->AddInt64(message, field, v);
      }
    }
  }
  void operator()(const std::vector<double>& values) const {
    for (double v : values) message->GetReflection()->AddDouble(message, field, v);
  }
};

google::protobuf::Timestamp ToTimestamp(absl::Time t) {
  return google::protobuf::util::TimeUtil::NanosecondsToTimestamp(absl::ToUnixNanos(t));
}

}  // namespace

core::ScheduleSpec ScheduleFromProto(const hpsched::v1::Schedule& proto) {
  core::ScheduleSpec spec;
  const FieldDescriptor* kind_field = proto.GetReflection()->GetOneofFieldDescriptor(
      proto, hpsched::v1::Schedule::descriptor()->FindOneofByName("kind"));
  if (kind_field == nullptr) return spec;
  spec.kind = kind_field->name();
  const Message& kind = proto.GetReflection()->GetMessage(proto, kind_field);
  const auto* descriptor = kind.GetDescriptor();
  for (int i = 0; i < descriptor->field_count(); ++i) {
    const FieldDescriptor* field = descriptor->field(i);
    if (field->is_repeated()) {
      ReadRepeated(kind, field, &spec);
    } else {
      ReadSingular(kind, field, &spec);
    }
  }
  return spec;
}

void ScheduleToProto(const core::ScheduleSpec& spec, hpsched::v1::Schedule* proto) {
  proto->Clear();
  const FieldDescriptor* kind_field =
      hpsched::v1::Schedule::descriptor()->FindFieldByName(spec.kind.str());
  if (kind_field == nullptr) return;
  Message* kind = proto->GetReflection()->MutableMessage(proto, kind_field);
  const auto* descriptor = kind->GetDescriptor();
  for (const auto& [name, value] : spec.params) {
    const FieldDescriptor* field = descriptor->FindFieldByName(name);
    if (field != nullptr) std::visit(ParamWriter{kind, field}, value);
  }
  if (!spec.children.empty()) {
    const FieldDescriptor* field = descriptor->FindFieldByName("schedules");
    for (const core::ScheduleSpec& child : spec.children) {
      ScheduleToProto(child, static_cast<hpsched::v1::Schedule*>(
                                 kind->GetReflection()->AddMessage(kind, field)));
    }
  }
}

core::SegmentSpec SegmentFromProto(const hpsched::v1::Segment& proto) {
  core::SegmentSpec segment;
  segment.effective_step = proto.effective_step();
  switch (proto.change_case()) {
    case hpsched::v1::Segment::kScale:
      segment.change = core::SegmentSpec::Change::kScale;
      segment.scale = proto.scale();
      break;
    case hpsched::v1::Segment::kPin:
      segment.change = core::SegmentSpec::Change::kPin;
      segment.pin.assign(proto.pin().values().begin(), proto.pin().values().end());
      break;
    default:  // A schedule, or nothing: an empty schedule, which the core rejects.
      segment.change = core::SegmentSpec::Change::kSchedule;
      segment.schedule = ScheduleFromProto(proto.schedule());
      break;
  }
  segment.global_time = proto.time() == hpsched::v1::SEGMENT_TIME_GLOBAL;
  segment.anchor = proto.anchor();
  return segment;
}

core::JobSpec JobSpecFromProto(const hpsched::v1::Job& proto, bool with_history) {
  core::JobSpec spec;
  for (const auto& hp : proto.hyperparameters()) {
    core::HyperparameterSpec h;
    h.name = hp.name();
    h.base_values.assign(hp.base_values().begin(), hp.base_values().end());
    h.schedule = ScheduleFromProto(hp.schedule());
    if (with_history) {
      for (const auto& s : hp.segments()) {
        core::SegmentSpec segment = SegmentFromProto(s);
        segment.version = s.version();
        segment.create_time_nanos =
            google::protobuf::util::TimeUtil::TimestampToNanoseconds(s.create_time());
        h.segments.push_back(std::move(segment));
      }
    }
    spec.hyperparameters.push_back(std::move(h));
  }
  spec.labels.insert(proto.labels().begin(), proto.labels().end());
  for (const auto& m : proto.metrics()) {
    core::MetricSpec metric;
    metric.name = m.name();
    // See core::MetricSpec: every_steps 0 means "announced", first_step -1 "no cadence".
    metric.first_step = -1;
    if (m.cadence_case() == hpsched::v1::MetricSpec::kFirstStep) {
      metric.first_step = m.first_step();
    } else if (m.cadence_case() == hpsched::v1::MetricSpec::kEverySteps) {
      metric.every_steps = m.every_steps() == 0 ? -1 : m.every_steps();
    }
    spec.metrics.push_back(std::move(metric));
  }
  return spec;
}

void JobToProto(const core::JobRecord& record, hpsched::v1::Job* proto) {
  proto->Clear();
  proto->set_name(JobName(record.job_id));
  for (const core::HyperparameterSpec& h : record.spec.hyperparameters) {
    auto* hp = proto->add_hyperparameters();
    hp->set_name(h.name);
    hp->mutable_base_values()->Add(h.base_values.begin(), h.base_values.end());
    ScheduleToProto(h.schedule, hp->mutable_schedule());
    for (const core::SegmentSpec& segment : h.segments) {
      auto* s = hp->add_segments();
      s->set_effective_step(segment.effective_step);
      switch (segment.change) {
        case core::SegmentSpec::Change::kSchedule:
          ScheduleToProto(segment.schedule, s->mutable_schedule());
          s->set_time(segment.global_time ? hpsched::v1::SEGMENT_TIME_GLOBAL
                                          : hpsched::v1::SEGMENT_TIME_LOCAL);
          s->set_anchor(segment.anchor);
          break;
        case core::SegmentSpec::Change::kScale:
          s->set_scale(segment.scale);
          break;
        case core::SegmentSpec::Change::kPin:
          s->mutable_pin()->mutable_values()->Add(segment.pin.begin(), segment.pin.end());
          break;
      }
      s->set_version(segment.version);
      *s->mutable_create_time() =
          google::protobuf::util::TimeUtil::NanosecondsToTimestamp(segment.create_time_nanos);
    }
  }
  for (const core::MetricSpec& metric : record.spec.metrics) {
    auto* m = proto->add_metrics();
    m->set_name(metric.name);
    if (metric.every_steps > 0) {
      m->set_every_steps(metric.every_steps);
    } else {
      m->set_first_step(metric.first_step);
    }
  }
  proto->set_version(record.version);
  proto->set_etag(record.etag);
  *proto->mutable_create_time() = ToTimestamp(record.create_time);
  *proto->mutable_update_time() = ToTimestamp(record.update_time);
  proto->mutable_labels()->insert(record.spec.labels.begin(), record.spec.labels.end());
}

namespace {

// Adds each hyperparameter's plateau reductions, from `plan`, to a resource JobToProto made.
void PlanToProto(const core::JobPlan& plan, hpsched::v1::Job* proto) {
  for (auto& hp : *proto->mutable_hyperparameters()) {
    std::set<int64_t> steps;
    for (const core::SeriesPlan& series : plan.series()) {
      if (series.hyperparameter == hp.name()) {
        const std::vector<int64_t> shown = series.reduction_steps();
        steps.insert(shown.begin(), shown.end());
      }
    }
    hp.mutable_plateau_reductions()->Add(steps.begin(), steps.end());
  }
}

}  // namespace

void JobToProto(const core::JobRecord& record, const core::JobPlan& plan, hpsched::v1::Job* proto) {
  JobToProto(record, proto);
  PlanToProto(plan, proto);
}

std::string JobName(absl::string_view job_id) { return absl::StrCat("jobs/", job_id); }

absl::StatusOr<std::string> JobIdFromName(absl::string_view name, absl::string_view field) {
  absl::string_view id = name;
  if (absl::StartsWith(id, "jobs/")) id.remove_prefix(5);
  if (name.empty()) return absl::InvalidArgumentError(absl::StrCat(field, ": is required"));
  if (!core::IsValidJobId(id)) {
    return absl::InvalidArgumentError(absl::StrCat(
        field, ": must be \"jobs/{job_id}\" with job_id matching [a-z0-9][a-z0-9._-]{0,62}, got \"",
        absl::CHexEscape(name.substr(0, 80)), "\""));
  }
  return std::string(id);
}

}  // namespace hpsched::codec
