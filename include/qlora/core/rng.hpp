// qlora/core/rng.hpp — deterministic randomness with our own generators.
//
// Every random choice in qlora (dataset shuffles and paraphrases, sampling,
// LoRA initialisation, dropout masks, the trainer's data order) comes from
// here, never from std:: distributions, whose output differs between standard
// libraries. Two kinds:
//  * counter-based: a draw is a pure function of (seed, keys...). Dropout and
//    initialisation use these so that a value does not depend on how work was
//    split across threads or GPU blocks (host/device: QLORA_HD).
//  * sequential: SplitMix64 (shuffles) and xoshiro256** (sampling), whose
//    whole state is a few words a checkpoint can save and restore.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <string_view>
#include <utility>
#include <vector>

#include "qlora/core/hd.hpp"

namespace qlora {

/// SplitMix64 finalizer (Steele, Lea & Flood 2014): a bijective 64-bit mix,
/// used both as a counter-based hash and as a sequential generator.
QLORA_HD std::uint64_t splitmix64(std::uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

/// Counter-based draw for (seed, a, b): "element b of stream a".
QLORA_HD std::uint64_t hash3(std::uint64_t seed, std::uint64_t a, std::uint64_t b) {
  return splitmix64(splitmix64(splitmix64(seed) ^ splitmix64(a)) ^ splitmix64(b + 0x632BE59BD9B4E019ull));
}

/// Uniform in [0, 1) from the top 24 bits of a draw (exactly representable in fp32).
QLORA_HD float uniform01_f32(std::uint64_t draw) { return float(draw >> 40) * 0x1.0p-24f; }

/// Hash of a key sequence under a seed: the counter-based draw for "choice k of item i".
inline std::uint64_t hash_key(std::uint64_t seed, std::initializer_list<std::uint64_t> keys) {
  std::uint64_t h = splitmix64(seed);
  for (std::uint64_t k : keys) h = splitmix64(h ^ splitmix64(k));
  return h;
}

/// FNV-1a of a string, to use text as a hash key.
inline std::uint64_t fnv1a64(std::string_view s) {
  std::uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char c : s) h = (h ^ c) * 0x100000001b3ull;
  return h;
}

/// High 64 bits of a 64×64-bit product, in portable arithmetic (no __int128).
QLORA_HD std::uint64_t mul_hi64(std::uint64_t a, std::uint64_t b) {
  const std::uint64_t a_lo = a & 0xFFFFFFFFull, a_hi = a >> 32, b_lo = b & 0xFFFFFFFFull, b_hi = b >> 32;
  const std::uint64_t lo_lo = a_lo * b_lo, hi_lo = a_hi * b_lo, lo_hi = a_lo * b_hi, hi_hi = a_hi * b_hi;
  const std::uint64_t cross = (lo_lo >> 32) + (hi_lo & 0xFFFFFFFFull) + lo_hi;
  return hi_hi + (hi_lo >> 32) + (cross >> 32);
}

/// Map a 64-bit draw to [0, n) by multiply-shift (Lemire); the bias, at most
/// n / 2^64, is irrelevant at our sizes, and unlike std::uniform_int_distribution
/// the result is the same with every standard library.
QLORA_HD std::size_t bounded(std::uint64_t draw, std::size_t n) { return static_cast<std::size_t>(mul_hi64(draw, n)); }

/// Sequential generator over SplitMix64 (for shuffles). state() lets a
/// checkpoint save and restore it.
class SplitMix64 {
 public:
  explicit SplitMix64(std::uint64_t seed) : state_(seed) {}
  std::uint64_t next() { return splitmix64(state_++); }
  std::size_t below(std::size_t n) { return bounded(next(), n); }
  std::uint64_t state() const { return state_; }

 private:
  std::uint64_t state_;
};

/// Fisher–Yates shuffle with our own draws (std::shuffle's use of the engine
/// is implementation-defined).
template <class T>
void seeded_shuffle(std::vector<T>& v, std::uint64_t seed) {
  SplitMix64 g(seed);
  for (std::size_t i = v.size(); i > 1; --i) std::swap(v[i - 1], v[g.below(i)]);
}

/// xoshiro256** (Blackman & Vigna), state filled by splitmix64 from the seed.
class Xoshiro256 {
 public:
  using State = std::array<std::uint64_t, 4>;
  explicit Xoshiro256(std::uint64_t seed = 0) {
    for (auto& w : s_) {
      seed += 0x9E3779B97F4A7C15ull;
      w = splitmix64(seed - 0x9E3779B97F4A7C15ull);
    }
  }
  std::uint64_t next() {
    const std::uint64_t r = rotl(s_[1] * 5, 7) * 9;
    const std::uint64_t t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = rotl(s_[3], 45);
    return r;
  }
  /// Uniform in [0, 1) with 53 random bits.
  double uniform() { return double(next() >> 11) * 0x1.0p-53; }
  const State& state() const { return s_; }
  void set_state(const State& s) { s_ = s; }

 private:
  static std::uint64_t rotl(std::uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  State s_{};
};

}  // namespace qlora
