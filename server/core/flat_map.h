// FlatMap: a sorted map of few entries, for the small maps a job holds by the million (a schedule's
// parameters, a job's labels, its metric reports by name; issue 11: 10^6 jobs).
//
// Contract: std::map's ordering and the part of its interface those maps use (find, lower_bound,
// contains, count, at, operator[], emplace, try_emplace, insert, erase, ==, in-order iteration of
// std::pair<K, V>). What differs, and why:
//  - sizeof is one pointer (8 bytes against std::map's 48), and an empty map allocates nothing;
//    its entries live in one heap block (a small header, then the entries in key order), where
//    std::map allocates a 32-byte-headed node per entry.
//  - Inserting or erasing moves the later entries and invalidates every iterator and reference:
//    O(size) per change, meant for maps of tens of entries (a job has at most 64 labels and 16
//    metrics; a schedule, a few parameters). Lookups are binary searches.
//  - Keys are not const in the iterated pairs: callers must not change a key in place.
// Lookups are transparent (Compare, std::less<> by default, compares K with any key-like type).
// Not thread-safe for writes; concurrent reads of an unchanged map are safe.
#ifndef HPSCHED_CORE_FLAT_MAP_H_
#define HPSCHED_CORE_FLAT_MAP_H_

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <new>
#include <stdexcept>
#include <utility>

namespace hpsched::core {

template <typename K, typename V, typename Compare = std::less<>>
class FlatMap {
 public:
  using key_type = K;
  using mapped_type = V;
  using value_type = std::pair<K, V>;
  using size_type = size_t;
  using iterator = value_type*;
  using const_iterator = const value_type*;

  FlatMap() = default;
  FlatMap(std::initializer_list<value_type> entries) { insert(entries.begin(), entries.end()); }
  template <typename It>
  FlatMap(It first, It last) {
    insert(first, last);
  }
  FlatMap(const FlatMap& other) {
    if (other.empty()) return;
    rep_ = Allocate(other.size());
    for (const value_type& entry : other) {
      new (Data(rep_) + rep_->size) value_type(entry);
      ++rep_->size;
    }
  }
  FlatMap(FlatMap&& other) noexcept : rep_(std::exchange(other.rep_, nullptr)) {}
  FlatMap& operator=(const FlatMap& other) {
    if (this != &other) {
      FlatMap copy(other);
      std::swap(rep_, copy.rep_);
    }
    return *this;
  }
  FlatMap& operator=(FlatMap&& other) noexcept {
    if (this != &other) {
      Free(rep_);
      rep_ = std::exchange(other.rep_, nullptr);
    }
    return *this;
  }
  ~FlatMap() { Free(rep_); }

  iterator begin() { return rep_ == nullptr ? nullptr : Data(rep_); }
  iterator end() { return rep_ == nullptr ? nullptr : Data(rep_) + rep_->size; }
  const_iterator begin() const { return rep_ == nullptr ? nullptr : Data(rep_); }
  const_iterator end() const { return rep_ == nullptr ? nullptr : Data(rep_) + rep_->size; }
  const_iterator cbegin() const { return begin(); }
  const_iterator cend() const { return end(); }

  size_t size() const { return rep_ == nullptr ? 0 : rep_->size; }
  bool empty() const { return size() == 0; }
  // Frees the entries' block.
  void clear() { Free(std::exchange(rep_, nullptr)); }

  // The first entry whose key is not less than `key`.
  template <typename Q>
  iterator lower_bound(const Q& key) {
    return std::lower_bound(begin(), end(), key,
                            [](const value_type& e, const Q& k) { return Compare()(e.first, k); });
  }
  template <typename Q>
  const_iterator lower_bound(const Q& key) const {
    return const_cast<FlatMap*>(this)->lower_bound(key);
  }
  // The entry of `key`, or end().
  template <typename Q>
  iterator find(const Q& key) {
    iterator it = lower_bound(key);
    return it != end() && !Compare()(key, it->first) ? it : end();
  }
  template <typename Q>
  const_iterator find(const Q& key) const {
    return const_cast<FlatMap*>(this)->find(key);
  }
  template <typename Q>
  bool contains(const Q& key) const {
    return find(key) != end();
  }
  template <typename Q>
  size_t count(const Q& key) const {
    return contains(key) ? 1 : 0;
  }
  // The value of `key`; throws std::out_of_range when there is none, as std::map::at does.
  template <typename Q>
  V& at(const Q& key) {
    iterator it = find(key);
    if (it == end()) throw std::out_of_range("FlatMap::at: no such key");
    return it->second;
  }
  template <typename Q>
  const V& at(const Q& key) const {
    return const_cast<FlatMap*>(this)->at(key);
  }

  // The value of `key`, inserted default-constructed when missing.
  V& operator[](const K& key) { return try_emplace(key).first->second; }
  V& operator[](K&& key) { return try_emplace(std::move(key)).first->second; }

  // Inserts (key, V(args...)) unless `key` is present; returns the entry and whether it inserted.
  template <typename KeyArg, typename... Args>
  std::pair<iterator, bool> try_emplace(KeyArg&& key, Args&&... args) {
    iterator it = lower_bound(key);
    if (it != end() && !Compare()(key, it->first)) return {it, false};
    return {InsertAt(it - begin(), value_type(std::piecewise_construct,
                                              std::forward_as_tuple(std::forward<KeyArg>(key)),
                                              std::forward_as_tuple(std::forward<Args>(args)...))),
            true};
  }
  template <typename... Args>
  std::pair<iterator, bool> emplace(Args&&... args) {
    return insert(value_type(std::forward<Args>(args)...));
  }
  std::pair<iterator, bool> insert(value_type entry) {
    iterator it = lower_bound(entry.first);
    if (it != end() && !Compare()(entry.first, it->first)) return {it, false};
    return {InsertAt(it - begin(), std::move(entry)), true};
  }
  template <typename It>
  void insert(It first, It last) {
    for (; first != last; ++first) try_emplace(first->first, first->second);
  }

  // Removes the entry at `pos` (which must be valid); returns the entry that followed it.
  iterator erase(const_iterator pos) {
    const size_t index = pos - begin();
    iterator first = begin() + index;
    std::move(first + 1, end(), first);
    (end() - 1)->~value_type();
    if (--rep_->size == 0) {
      clear();
      return nullptr;
    }
    return begin() + index;
  }
  iterator erase(iterator pos) { return erase(const_iterator(pos)); }
  // Removes the entry of `key`, if any; returns how many were removed (0 or 1).
  size_t erase(const K& key) {
    const_iterator it = find(key);
    if (it == end()) return 0;
    erase(it);
    return 1;
  }

  friend bool operator==(const FlatMap& a, const FlatMap& b) {
    return std::equal(a.begin(), a.end(), b.begin(), b.end());
  }

 private:
  // The block: this header, then `capacity` slots of which the first `size` hold entries.
  struct Rep {
    uint32_t size;
    uint32_t capacity;
  };
  static_assert(alignof(value_type) <= __STDCPP_DEFAULT_NEW_ALIGNMENT__);
  static constexpr size_t kDataOffset =
      (sizeof(Rep) + alignof(value_type) - 1) / alignof(value_type) * alignof(value_type);

  static value_type* Data(Rep* rep) {
    return std::launder(reinterpret_cast<value_type*>(reinterpret_cast<char*>(rep) + kDataOffset));
  }
  static const value_type* Data(const Rep* rep) { return Data(const_cast<Rep*>(rep)); }

  static Rep* Allocate(size_t capacity) {
    void* block = ::operator new(kDataOffset + capacity * sizeof(value_type));
    return new (block) Rep{0, static_cast<uint32_t>(capacity)};
  }
  static void Free(Rep* rep) {
    if (rep == nullptr) return;
    std::destroy(Data(rep), Data(rep) + rep->size);
    ::operator delete(rep);
  }

  // Inserts `entry` before the entry at `index` (the caller found where it sorts).
  iterator InsertAt(size_t index, value_type entry) {
    const size_t n = size();
    if (rep_ == nullptr || n == rep_->capacity) {
      // Grow into a new block: the first entry gets a block of its own size (most maps here hold
      // one or a few entries), then the capacity doubles.
      Rep* grown = Allocate(n == 0 ? 1 : 2 * n);
      value_type* to = Data(grown);
      value_type* from = begin();
      for (size_t i = 0; i < index; ++i) new (to + i) value_type(std::move(from[i]));
      new (to + index) value_type(std::move(entry));
      for (size_t i = index; i < n; ++i) new (to + i + 1) value_type(std::move(from[i]));
      grown->size = static_cast<uint32_t>(n + 1);
      Free(std::exchange(rep_, grown));
      return Data(rep_) + index;
    }
    value_type* data = Data(rep_);
    if (index == n) {
      new (data + n) value_type(std::move(entry));
    } else {
      new (data + n) value_type(std::move(data[n - 1]));
      std::move_backward(data + index, data + n - 1, data + n);
      data[index] = std::move(entry);
    }
    ++rep_->size;
    return data + index;
  }

  Rep* rep_ = nullptr;
};

}  // namespace hpsched::core

#endif  // HPSCHED_CORE_FLAT_MAP_H_
