#include "core/kind_name.h"

#include <functional>
#include <unordered_set>

#include "absl/base/thread_annotations.h"
#include "absl/hash/hash.h"
#include "absl/synchronization/mutex.h"

namespace hpsched::core {
namespace {

// Looks names up without making a string of them.
struct NameHash {
  using is_transparent = void;
  size_t operator()(absl::string_view name) const { return absl::Hash<absl::string_view>()(name); }
};
struct NameEqual {
  using is_transparent = void;
  bool operator()(absl::string_view a, absl::string_view b) const { return a == b; }
};

// Every name interned. A node-based set: an entry never moves, so a KindName may point at it.
struct Names {
  absl::Mutex mutex;
  std::unordered_set<std::string, NameHash, NameEqual> names ABSL_GUARDED_BY(mutex);
};

Names& Table() {
  static auto* const table = new Names();
  return *table;
}

}  // namespace

KindName::KindName(absl::string_view name) {
  if (name.empty()) return;
  Names& table = Table();
  {
    absl::ReaderMutexLock lock(&table.mutex);
    if (auto it = table.names.find(name); it != table.names.end()) {
      name_ = &*it;
      return;
    }
  }
  absl::MutexLock lock(&table.mutex);
  name_ = &*table.names.emplace(name).first;
}

const std::string& KindName::Empty() {
  static const auto* const empty = new std::string();
  return *empty;
}

}  // namespace hpsched::core
