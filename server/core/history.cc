#include "core/history.h"

#include <algorithm>
#include <cmath>
#include <memory>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/kind_registry.h"
#include "core/status_macros.h"

namespace hpsched::core {
namespace {

using SharedNode = std::shared_ptr<const Node>;

// One piece of a history: from global step `start` on, `node` evaluated at step - `shift`. An
// anchored schedule's values also depend on whatever the value it starts from depended on
// (`anchor`, global steps; from and to are replaced by the piece's own steps).
struct Piece {
  int64_t start = 0;
  int64_t shift = 0;
  SharedNode node;
  std::vector<ReportDependence> anchor = {};
};

double MaxBound(const std::vector<Piece>& pieces) {
  double bound = 0;
  for (const Piece& piece : pieces) bound = std::max(bound, piece.node->max_abs());
  return bound;
}

// Pieces in order of start, the first at 0; piece i holds until piece i + 1 starts.
class PiecewiseNode final : public Node {
 public:
  // Each value is one piece's value.
  explicit PiecewiseNode(std::vector<Piece> pieces)
      : Node(MaxBound(pieces)), pieces_(std::move(pieces)), step_cost_(CostliestPiece(pieces_)) {}

  void Evaluate(int64_t start, std::span<double> out) const override {
    const int64_t end = start + static_cast<int64_t>(out.size());
    size_t i = std::upper_bound(pieces_.begin(), pieces_.end(), start,
                                [](int64_t t, const Piece& p) { return t < p.start; }) -
               pieces_.begin() - 1;
    int64_t t = start;
    while (t < end) {
      const int64_t piece_end = i + 1 < pieces_.size() ? std::min(end, pieces_[i + 1].start) : end;
      pieces_[i].node->Evaluate(t - pieces_[i].shift,
                                out.subspan(t - start, static_cast<size_t>(piece_end - t)));
      t = piece_end;
      ++i;
    }
  }
  int64_t step_cost() const override { return step_cost_; }

  void AddReportDependences(int64_t start, int64_t end, int64_t shift,
                            std::vector<ReportDependence>* out) const override {
    for (size_t i = 0; i < pieces_.size(); ++i) {
      const Piece& piece = pieces_[i];
      const int64_t lo = std::max(start, piece.start);
      const int64_t hi = i + 1 < pieces_.size() ? std::min(end, pieces_[i + 1].start) : end;
      if (lo >= hi) continue;
      piece.node->AddReportDependences(lo - piece.shift, hi - piece.shift, shift + piece.shift,
                                       out);
      for (ReportDependence dependence : piece.anchor) {
        dependence.from = lo + shift;
        dependence.to = hi + shift;
        out->push_back(std::move(dependence));
      }
    }
  }

 private:
  // Computed once: pieces share nodes (each update wraps the history before it), so walking them
  // on every call could take exponential time.
  static int64_t CostliestPiece(const std::vector<Piece>& pieces) {
    int64_t cost = 1;
    for (const Piece& piece : pieces) cost = std::max(cost, 1 + piece.node->step_cost());
    return cost;
  }

  std::vector<Piece> pieces_;
  int64_t step_cost_;
};

// The values of `inner` times `factor`.
class ScaleNode final : public Node {
 public:
  ScaleNode(SharedNode inner, double factor)
      : Node(RoundBoundUp(inner->max_abs() * std::fabs(factor))),
        inner_(std::move(inner)),
        factor_(factor),
        step_cost_(1 + inner_->step_cost()) {}

  void Evaluate(int64_t start, std::span<double> out) const override {
    inner_->Evaluate(start, out);
    for (double& v : out) v *= factor_;
  }
  int64_t step_cost() const override { return step_cost_; }

  void AddReportDependences(int64_t start, int64_t end, int64_t shift,
                            std::vector<ReportDependence>* out) const override {
    inner_->AddReportDependences(start, end, shift, out);
  }

 private:
  SharedNode inner_;
  double factor_;
  int64_t step_cost_;  // Computed once, as PiecewiseNode's.
};

class ConstantValueNode final : public Node {
 public:
  explicit ConstantValueNode(double value) : Node(std::fabs(value)), value_(value) {}
  void Evaluate(int64_t, std::span<double> out) const override {
    std::fill(out.begin(), out.end(), value_);
  }

 private:
  double value_;
};

SharedNode Compose(const std::vector<Piece>& pieces) {
  if (pieces.size() == 1 && pieces[0].shift == 0) return pieces[0].node;
  return std::make_shared<PiecewiseNode>(pieces);
}

double ValueAt(const Node& node, int64_t step) {
  double value = 0;
  node.Evaluate(step, std::span<double>(&value, 1));
  return value;
}

absl::Status Invalid(absl::string_view path, absl::string_view rule) {
  return absl::InvalidArgumentError(absl::StrCat(path, ": ", rule));
}

}  // namespace

absl::Status CheckSegment(const SegmentSpec& segment, size_t num_groups, absl::string_view path) {
  if (segment.effective_step < 0 || segment.effective_step >= kStepLimit) {
    return Invalid(absl::StrCat(path, ".effective_step"),
                   absl::StrCat("must be >= 0 and < 2^53, got ", segment.effective_step));
  }
  switch (segment.change) {
    case SegmentSpec::Change::kSchedule:
      break;  // Compiled with the job.
    case SegmentSpec::Change::kScale:
      if (!std::isfinite(segment.scale) || segment.scale <= 0 || segment.scale > kMaxScaleProduct) {
        return Invalid(absl::StrCat(path, ".scale"),
                       absl::StrCat("must be > 0 and <= 1e6, got ", segment.scale));
      }
      break;
    case SegmentSpec::Change::kPin:
      if (segment.pin.size() != 1 && segment.pin.size() != num_groups) {
        return Invalid(absl::StrCat(path, ".pin.values"),
                       absl::StrCat("must have one value or one per group (", num_groups, "), got ",
                                    segment.pin.size()));
      }
      for (size_t i = 0; i < segment.pin.size(); ++i) {
        if (!std::isfinite(segment.pin[i]) || std::fabs(segment.pin[i]) > kMaxMagnitude) {
          return Invalid(absl::StrCat(path, ".pin.values[", i, "]"),
                         absl::StrCat("must be finite and within +-1e150, got ", segment.pin[i]));
        }
      }
      break;
  }
  if (segment.change != SegmentSpec::Change::kSchedule && (segment.anchor || segment.global_time)) {
    return Invalid(absl::StrCat(path, segment.anchor ? ".anchor" : ".time"),
                   "applies to a schedule only, not to scale or pin");
  }
  return absl::OkStatus();
}

absl::StatusOr<NodePtr> CompileHistory(const HyperparameterSpec& hp,
                                       const CompileContext& context) {
  CompileContext root = context;
  root.path = absl::StrCat(context.path, ".schedule");
  root.time_offset = 0;
  ASSIGN_OR_RETURN(NodePtr first, CompileSchedule(hp.schedule, root));
  if (hp.segments.empty()) return first;
  if (hp.segments.size() > kMaxSegments) {
    return Invalid(
        absl::StrCat(context.path, ".segments"),
        absl::StrCat("must have at most ", kMaxSegments, " segments, got ", hp.segments.size()));
  }
  std::vector<Piece> pieces = {Piece{0, 0, std::move(first)}};
  double scale_product = 1;
  for (size_t k = 0; k < hp.segments.size(); ++k) {
    const SegmentSpec& segment = hp.segments[k];
    const std::string path = absl::StrCat(context.path, ".segments[", k, "]");
    RETURN_IF_ERROR(CheckSegment(segment, static_cast<size_t>(context.num_groups), path));
    const int64_t at = segment.effective_step;
    SharedNode before = Compose(pieces);
    Piece piece{at, 0, nullptr};
    switch (segment.change) {
      case SegmentSpec::Change::kSchedule: {
        CompileContext child = context;
        child.path = absl::StrCat(path, ".schedule");
        child.base = segment.anchor ? ValueAt(*before, at) : context.base;
        if (segment.anchor) {
          // The anchor is the value at `at`: it depends on the reports before `at` that the value
          // there depended on, and on no later one.
          before->AddReportDependences(at, at + 1, 0, &piece.anchor);
          for (ReportDependence& dependence : piece.anchor) {
            dependence.last_report = std::min(dependence.last_report, at - 1);
          }
          std::erase_if(piece.anchor,
                        [](const ReportDependence& d) { return d.last_report < d.first_report; });
        }
        child.time_offset = segment.global_time ? 0 : at;
        piece.shift = segment.global_time ? 0 : at;
        ASSIGN_OR_RETURN(piece.node, CompileSchedule(segment.schedule, child));
        break;
      }
      case SegmentSpec::Change::kScale:
        scale_product *= segment.scale;
        if (scale_product > kMaxScaleProduct) {
          return Invalid(absl::StrCat(path, ".scale"),
                         "the product of the hyperparameter's scale factors must stay <= 1e6");
        }
        piece.node = std::make_shared<ScaleNode>(before, segment.scale);
        break;
      case SegmentSpec::Change::kPin:
        piece.node = std::make_shared<ConstantValueNode>(
            segment.pin.size() == 1 ? segment.pin[0] : segment.pin[context.group]);
        break;
    }
    // The change replaces everything from its step on.
    while (!pieces.empty() && pieces.back().start >= at) pieces.pop_back();
    pieces.push_back(std::move(piece));
  }
  return std::make_unique<PiecewiseNode>(std::move(pieces));
}

}  // namespace hpsched::core
