// qlora/text/string_table.hpp — many short strings in one arena, found by
// index and (optionally) by content.
//
// A vocabulary is ~50k-150k strings of a few bytes each. As std::strings in a
// vector plus an unordered_map from text to id it costs ~100 bytes per token
// (string headers, one heap node per map entry, bucket array); here it is the
// bytes themselves, one 4-byte offset per string and, when indexed, two
// 4-byte hash slots per string. For SmolLM2's 49,152 tokens that is ~0.8 MB
// instead of ~6 MB — which matters when the whole model is ~100 MB.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace qlora::text {

/// Strings appended to one buffer; string i is at(i).
class StringArena {
 public:
  std::int32_t add(std::string_view s) {
    bytes_.append(s);
    ends_.push_back(std::uint32_t(bytes_.size()));
    return std::int32_t(ends_.size() - 1);
  }
  std::string_view at(std::int32_t i) const {
    const std::uint32_t b = i == 0 ? 0 : ends_[std::size_t(i) - 1];
    return std::string_view(bytes_).substr(b, ends_[std::size_t(i)] - b);
  }
  std::size_t size() const { return ends_.size(); }
  void reserve(std::size_t n, std::size_t bytes) {
    ends_.reserve(n);
    bytes_.reserve(bytes);
  }
  /// Drop unused capacity (after the last add).
  void shrink_to_fit() {
    ends_.shrink_to_fit();
    bytes_.shrink_to_fit();
  }

 private:
  std::string bytes_;
  std::vector<std::uint32_t> ends_;  // string i is bytes_[ends_[i-1], ends_[i])
};

/// A StringArena with an open-addressing hash index from content to index.
/// Strings need not be unique; find() returns the first one added.
class StringTable {
 public:
  static constexpr std::int32_t kAbsent = -1;

  std::int32_t add(std::string_view s) {
    const std::int32_t id = arena_.add(s);
    if ((arena_.size() + 1) * 2 > slots_.size()) rehash(slots_.empty() ? 64 : slots_.size() * 2);
    else place(id);
    return id;
  }
  /// Index of the first string equal to s, or kAbsent.
  std::int32_t find(std::string_view s) const {
    if (slots_.empty()) return kAbsent;
    const std::size_t mask = slots_.size() - 1;
    for (std::size_t h = hash(s) & mask;; h = (h + 1) & mask) {
      const std::int32_t id = slots_[h];
      if (id == kAbsent) return kAbsent;
      if (arena_.at(id) == s) return id;
    }
  }
  std::string_view at(std::int32_t i) const { return arena_.at(i); }
  std::size_t size() const { return arena_.size(); }
  void reserve(std::size_t n, std::size_t bytes) {
    arena_.reserve(n, bytes);
    std::size_t cap = 64;
    while (cap < (n + 1) * 2) cap *= 2;
    if (cap > slots_.size()) rehash(cap);
  }
  void shrink_to_fit() { arena_.shrink_to_fit(); }

 private:
  static std::size_t hash(std::string_view s) {  // FNV-1a, 64-bit
    std::uint64_t h = 1469598103934665603ull;
    for (unsigned char c : s) h = (h ^ c) * 1099511628211ull;
    return std::size_t(h ^ (h >> 29));
  }
  /// Insert id, keeping the first of equal strings (a later equal one is
  /// not indexed: find() must return the first).
  void place(std::int32_t id) {
    const std::size_t mask = slots_.size() - 1;
    const std::string_view s = arena_.at(id);
    for (std::size_t h = hash(s) & mask;; h = (h + 1) & mask) {
      if (slots_[h] == kAbsent) {
        slots_[h] = id;
        return;
      }
      if (arena_.at(slots_[h]) == s) return;
    }
  }
  void rehash(std::size_t cap) {
    slots_.assign(cap, kAbsent);
    for (std::size_t i = 0; i < arena_.size(); ++i) place(std::int32_t(i));
  }

  StringArena arena_;
  std::vector<std::int32_t> slots_;  // power-of-two size, load <= 1/2
};

}  // namespace qlora::text
