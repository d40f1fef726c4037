// KindName: the name of a schedule's kind ("cosine_annealing", "sequential", ...) as a ScheduleSpec
// holds it: one pointer to the name, interned, instead of a std::string of its own (issue 11: at
// 10^6 jobs, 32 bytes inline and a 32-byte heap block a schedule for names over 15 characters).
//
// Contract: a value type that reads like the string it names: compares equal to equal strings (and
// KindNames of equal names are the same pointer), converts to `const std::string&`, hashes as its
// text. Thread-safe: interning takes a lock; reading a KindName never does.
// Every distinct name is kept for the life of the process. Names come from the codec (the API's
// schedule fields: a fixed set of kinds) and from stored rows it wrote, so the table holds the
// kinds the server knows plus, at worst, the names of hand-made rows and tests.
#ifndef HPSCHED_CORE_KIND_NAME_H_
#define HPSCHED_CORE_KIND_NAME_H_

#include <cstring>
#include <ostream>
#include <string>
#include <utility>

#include "absl/strings/string_view.h"

namespace hpsched::core {

class KindName {
 public:
  // The empty name (a schedule with no kind set).
  KindName() = default;
  // Interns `name`. Implicit: a KindName is assigned and compared like the string it names.
  KindName(absl::string_view name);  // NOLINT(google-explicit-constructor)
  KindName(const char* name) : KindName(absl::string_view(name)) {}         // NOLINT
  KindName(const std::string& name) : KindName(absl::string_view(name)) {}  // NOLINT

  const std::string& str() const { return name_ != nullptr ? *name_ : Empty(); }
  absl::string_view view() const { return str(); }
  operator const std::string&() const { return str(); }  // NOLINT(google-explicit-constructor)
  bool empty() const { return name_ == nullptr; }
  size_t size() const { return str().size(); }

  friend bool operator==(const KindName& a, const KindName& b) { return a.name_ == b.name_; }
  friend bool operator==(const KindName& a, absl::string_view b) { return a.view() == b; }
  friend bool operator==(const KindName& a, const std::string& b) { return a.str() == b; }
  friend bool operator==(const KindName& a, const char* b) { return a.view() == b; }
  friend std::ostream& operator<<(std::ostream& out, const KindName& name) {
    return out << name.str();
  }
  template <typename H>
  friend H AbslHashValue(H state, const KindName& name) {
    return H::combine(std::move(state), name.view());
  }

 private:
  static const std::string& Empty();

  // Null for the empty name; else an entry of the process-wide table, never freed.
  const std::string* name_ = nullptr;
};

}  // namespace hpsched::core

#endif  // HPSCHED_CORE_KIND_NAME_H_
