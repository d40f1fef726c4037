#include "store/stored_job.h"

#include <utility>

namespace hpsched::store {
namespace {

struct ParamToProto {
  StoredParam* out;
  void operator()(bool v) const { out->set_bool_value(v); }
  void operator()(int64_t v) const { out->set_int_value(v); }
  void operator()(double v) const { out->set_double_value(v); }
  void operator()(const std::string& v) const { out->set_string_value(v); }
  void operator()(const std::vector<int64_t>& v) const {
    out->mutable_int_list()->mutable_values()->Add(v.begin(), v.end());
  }
  void operator()(const std::vector<double>& v) const {
    out->mutable_double_list()->mutable_values()->Add(v.begin(), v.end());
  }
};

core::ParamValue ParamFromProto(const StoredParam& param) {
  switch (param.value_case()) {
    case StoredParam::kBoolValue:
      return param.bool_value();
    case StoredParam::kIntValue:
      return param.int_value();
    case StoredParam::kStringValue:
      return param.string_value();
    case StoredParam::kIntList:
      return std::vector<int64_t>(param.int_list().values().begin(),
                                  param.int_list().values().end());
    case StoredParam::kDoubleList:
      return std::vector<double>(param.double_list().values().begin(),
                                 param.double_list().values().end());
    default:
      return param.double_value();
  }
}

void ScheduleToProto(const core::ScheduleSpec& spec, StoredSchedule* out) {
  out->set_kind(spec.kind.str());
  for (const auto& [name, value] : spec.params) {
    std::visit(ParamToProto{&(*out->mutable_params())[name]}, value);
  }
  for (const core::ScheduleSpec& child : spec.children) ScheduleToProto(child, out->add_children());
}

core::ScheduleSpec ScheduleFromProto(const StoredSchedule& stored) {
  core::ScheduleSpec spec;
  spec.kind = stored.kind();
  for (const auto& [name, param] : stored.params())
    spec.params.emplace(name, ParamFromProto(param));
  for (const StoredSchedule& child : stored.children())
    spec.children.push_back(ScheduleFromProto(child));
  return spec;
}

void SegmentToProto(const core::SegmentSpec& segment, StoredSegment* out) {
  out->set_effective_step(segment.effective_step);
  switch (segment.change) {
    case core::SegmentSpec::Change::kSchedule:
      out->set_change(StoredSegment::SCHEDULE);
      break;
    case core::SegmentSpec::Change::kScale:
      out->set_change(StoredSegment::SCALE);
      break;
    case core::SegmentSpec::Change::kPin:
      out->set_change(StoredSegment::PIN);
      break;
  }
  ScheduleToProto(segment.schedule, out->mutable_schedule());
  out->set_scale(segment.scale);
  out->mutable_pin()->Add(segment.pin.begin(), segment.pin.end());
  out->set_global_time(segment.global_time);
  out->set_anchor(segment.anchor);
  out->set_version(segment.version);
  out->set_create_time_nanos(segment.create_time_nanos);
}

core::SegmentSpec SegmentFromProto(const StoredSegment& stored) {
  core::SegmentSpec segment;
  segment.effective_step = stored.effective_step();
  segment.change = stored.change() == StoredSegment::SCALE ? core::SegmentSpec::Change::kScale
                   : stored.change() == StoredSegment::PIN ? core::SegmentSpec::Change::kPin
                                                           : core::SegmentSpec::Change::kSchedule;
  segment.schedule = ScheduleFromProto(stored.schedule());
  segment.scale = stored.scale();
  segment.pin.assign(stored.pin().begin(), stored.pin().end());
  segment.global_time = stored.global_time();
  segment.anchor = stored.anchor();
  segment.version = stored.version();
  segment.create_time_nanos = stored.create_time_nanos();
  return segment;
}

}  // namespace

StoredJob RecordToStoredJob(const core::JobRecord& record, bool with_reports) {
  StoredJob stored;
  stored.set_job_id(record.job_id);
  for (const core::HyperparameterSpec& h : record.spec.hyperparameters) {
    StoredHyperparameter* hp = stored.add_hyperparameters();
    hp->set_name(h.name);
    hp->mutable_base_values()->Add(h.base_values.begin(), h.base_values.end());
    ScheduleToProto(h.schedule, hp->mutable_schedule());
    for (const core::SegmentSpec& segment : h.segments) SegmentToProto(segment, hp->add_segments());
  }
  stored.mutable_labels()->insert(record.spec.labels.begin(), record.spec.labels.end());
  for (const core::MetricSpec& metric : record.spec.metrics) {
    StoredMetricSpec* m = stored.add_metrics();
    m->set_name(metric.name);
    m->set_every_steps(metric.every_steps);
    m->set_first_step(metric.first_step);
  }
  stored.set_version(record.version);
  stored.set_etag(record.etag);
  stored.set_create_time_nanos(absl::ToUnixNanos(record.create_time));
  stored.set_update_time_nanos(absl::ToUnixNanos(record.update_time));
  stored.set_create_request_id(record.create_request_id);
  *stored.mutable_state() = StateToProto(record, with_reports);
  return stored;
}

core::JobRecord StoredJobToRecord(const StoredJob& stored) {
  core::JobRecord record;
  record.job_id = stored.job_id();
  for (const StoredHyperparameter& hp : stored.hyperparameters()) {
    core::HyperparameterSpec h;
    h.name = hp.name();
    h.base_values.assign(hp.base_values().begin(), hp.base_values().end());
    h.schedule = ScheduleFromProto(hp.schedule());
    for (const StoredSegment& segment : hp.segments())
      h.segments.push_back(SegmentFromProto(segment));
    record.spec.hyperparameters.push_back(std::move(h));
  }
  record.spec.labels.insert(stored.labels().begin(), stored.labels().end());
  for (const StoredMetricSpec& m : stored.metrics()) {
    record.spec.metrics.push_back(core::MetricSpec{m.name(), m.every_steps(), m.first_step()});
  }
  record.version = stored.version();
  record.etag = stored.etag();
  record.create_time = absl::FromUnixNanos(stored.create_time_nanos());
  record.update_time = absl::FromUnixNanos(stored.update_time_nanos());
  record.create_request_id = stored.create_request_id();
  StateFromProto(stored.state(), &record);
  return record;
}

JobState StateToProto(const core::JobRecord& record, bool with_reports) {
  JobState state;
  for (const auto& [name, reports] : record.metric_reports) {
    if (!with_reports) break;
    MetricHistory& history = (*state.mutable_metrics())[name];
    // In the order they were added (older stores wrote them by step; readers take either).
    for (size_t i = 0; i < reports.size(); ++i) {
      MetricPoint* point = history.add_points();
      point->set_step(reports[i].step);
      point->set_value(reports[i].report.value);
      point->set_next_step(reports[i].report.next_step);
    }
  }
  for (const auto& [request_id, version] : record.update_requests) {
    RememberedRequest* r = state.add_update_requests();
    r->set_request_id(request_id);
    r->set_version(version);
  }
  state.set_served_end(record.served_through + 1);
  return state;
}

void StateFromProto(const JobState& state, core::JobRecord* record) {
  for (const auto& [name, history] : state.metrics()) {
    core::MetricHistory& reports = record->metric_reports[name];
    for (const MetricPoint& point : history.points()) {
      // A step twice (no writer does that) keeps its first report.
      if (reports.Find(point.step()) == nullptr) {
        reports.Add(point.step(), core::MetricReport{point.value(), point.next_step()});
      }
    }
  }
  for (const RememberedRequest& r : state.update_requests()) {
    record->update_requests.emplace_back(r.request_id(), r.version());
  }
  record->served_through = state.served_end() - 1;
}

}  // namespace hpsched::store
