// An append-only sequence whose versions share their storage: the metric reports of a job's
// records, the tracks evaluation reads, the pieces of a plateau schedule. A job is replaced whole
// on every change (copy on write), so what it carries must copy in O(1) and grow in O(1) amortized,
// however long the job has run.
#ifndef HPSCHED_CORE_SHARED_LOG_H_
#define HPSCHED_CORE_SHARED_LOG_H_

#include <atomic>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"

namespace hpsched::core {

// A version of a log: its first size() entries. Copying a SharedLog copies a pointer; appending to
// the newest version of a storage writes in place (amortized O(1); the entries never move, chunk k
// holding kFirstChunk << k of them), appending to an older one (a version that another append has
// already extended, e.g. after a failed store write discarded that extension) first copies its
// entries into a storage of its own.
//
// Thread-safety: any number of threads may read any versions while one thread at a time appends
// to a version (the job registry's write lock); reads never lock: an append writes only at
// positions no existing version reads, and a new version reaches other threads the way the
// registry publishes a job (under a mutex). Appends to versions of one storage from different
// threads are safe too (the storage's mutex), but not to one SharedLog object.
//
// Entries may carry a key (Append with `key`): Find(key) then answers in O(1), for the keys among
// this version's entries.
template <typename T>
class SharedLog {
 public:
  SharedLog() = default;

  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }

  // Requires i < size().
  const T& operator[](size_t i) const {
    const Place place = PlaceOf(i);
    return storage_->chunks[place.chunk][place.offset];
  }
  const T& back() const { return (*this)[size_ - 1]; }

  // Appends `value`, with `key` for Find when given (a key this version does not hold yet).
  void Append(const T& value, std::optional<int64_t> key = std::nullopt) {
    if (storage_ == nullptr) storage_ = std::make_shared<Storage>();
    absl::MutexLock lock(&storage_->mutex);
    if (storage_->used != size_) {
      // Another version was extended past this one: continue in a storage of this version's own.
      auto copy = std::make_shared<Storage>();
      absl::MutexLock copy_lock(&copy->mutex);
      for (size_t i = 0; i < size_; ++i) copy->Put((*this)[i]);
      for (const auto& [k, position] : storage_->index) {
        if (position < size_) copy->index.emplace(k, position);
      }
      copy->Put(value);
      if (key.has_value()) copy->index.emplace(*key, static_cast<uint32_t>(size_));
      storage_ = std::move(copy);
      ++size_;
      return;
    }
    storage_->Put(value);
    if (key.has_value()) storage_->index.emplace(*key, static_cast<uint32_t>(size_));
    ++size_;
  }

  // The position of the entry appended with `key` in this version, if any.
  std::optional<size_t> Find(int64_t key) const {
    if (storage_ == nullptr) return std::nullopt;
    absl::MutexLock lock(&storage_->mutex);
    auto it = storage_->index.find(key);
    if (it == storage_->index.end() || it->second >= size_) return std::nullopt;
    return it->second;
  }

  // Identifies the storage: two versions with the same lineage agree on every position both hold
  // (a store may write only the entries past those it wrote before). 0 for an empty log that never
  // had storage.
  uint64_t lineage() const { return storage_ == nullptr ? 0 : storage_->id; }

 private:
  static constexpr size_t kFirstChunk = 8;
  // Chunk k holds kFirstChunk << k entries: 40 chunks hold far more than memory does.
  static constexpr int kMaxChunks = 40;

  struct Place {
    int chunk;
    size_t offset;
  };
  // Chunk k starts at position kFirstChunk * (2^k - 1).
  static Place PlaceOf(size_t i) {
    const int chunk = std::bit_width(i / kFirstChunk + 1) - 1;
    return Place{chunk, i - kFirstChunk * ((size_t{1} << chunk) - 1)};
  }

  struct Storage {
    Storage() : id(NextId()) {}
    // Writes entry `used`; requires the mutex.
    void Put(const T& value) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex) {
      const Place place = PlaceOf(used);
      if (chunks[place.chunk] == nullptr) {
        chunks[place.chunk] = std::make_unique<T[]>(kFirstChunk << place.chunk);
      }
      chunks[place.chunk][place.offset] = value;
      ++used;
    }
    static uint64_t NextId() {
      static std::atomic<uint64_t> next{1};
      return next.fetch_add(1);
    }

    const uint64_t id;
    absl::Mutex mutex;
    // Written under the mutex, each slot before any version that reads it exists; read without it.
    std::unique_ptr<T[]> chunks[kMaxChunks];
    // Entries written: the size of the newest version.
    size_t used ABSL_GUARDED_BY(mutex) = 0;
    absl::flat_hash_map<int64_t, uint32_t> index ABSL_GUARDED_BY(mutex);
  };

  std::shared_ptr<Storage> storage_;
  size_t size_ = 0;
};

}  // namespace hpsched::core

#endif  // HPSCHED_CORE_SHARED_LOG_H_
