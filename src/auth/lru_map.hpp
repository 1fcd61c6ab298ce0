// A map of bounded size that forgets the entry touched longest ago: the memory bound behind the
// login throttle and the rate limiter, whose keys come from clients. Keys are stored as keyed
// BLAKE2b digests: every entry costs the same memory however long the client's string, and the
// hash table cannot be flooded with colliding keys (the digest key is random per map).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <list>
#include <string_view>
#include <unordered_map>

namespace parley::auth::detail {

using KeyDigest = std::array<std::uint8_t, 16>;

// Keyed BLAKE2b-128 (libsodium crypto_generichash) of `domain` and `key`, under a key drawn once
// per object.
class KeyDigester {
 public:
  KeyDigester();
  KeyDigest operator()(char domain, std::string_view key) const;

 private:
  std::array<std::uint8_t, 32> secret_{};
};

template <typename Value>
class LruMap {
 public:
  explicit LruMap(std::size_t capacity) : capacity_(capacity) {}

  // The entry for `key`, or nullptr; does not count as a touch.
  Value* find(const KeyDigest& key) {
    const auto found = index_.find(key);
    return found == index_.end() ? nullptr : &found->second->value;
  }

  // The entry for `key`, made the most recent; a new one is `initial`, and makes room by
  // forgetting the least recent entry when the map is full. `inserted` tells which happened.
  Value& touch(const KeyDigest& key, const Value& initial, bool& inserted) {
    if (const auto found = index_.find(key); found != index_.end()) {
      order_.splice(order_.begin(), order_, found->second);
      inserted = false;
      return found->second->value;
    }
    if (order_.size() >= capacity_ && !order_.empty()) {
      index_.erase(order_.back().key);
      order_.pop_back();
    }
    order_.push_front(Node{key, initial});
    index_.emplace(key, order_.begin());
    inserted = true;
    return order_.front().value;
  }

  void erase(const KeyDigest& key) {
    if (const auto found = index_.find(key); found != index_.end()) {
      const auto node = found->second;
      index_.erase(found);
      order_.erase(node);
    }
  }

  // Forgets least recent entries for as long as `stale(value)` holds: amortised O(1) clean-up
  // of entries that carry no information any more.
  template <typename Predicate>
  void forgetStale(Predicate stale) {
    while (!order_.empty() && stale(order_.back().value)) {
      index_.erase(order_.back().key);
      order_.pop_back();
    }
  }

  std::size_t size() const { return order_.size(); }

 private:
  struct Node {
    KeyDigest key;
    Value value;
  };
  // The digest is already uniformly distributed: its first bytes are the hash.
  struct DigestHash {
    std::size_t operator()(const KeyDigest& digest) const {
      std::size_t hash = 0;
      std::memcpy(&hash, digest.data(), sizeof hash);
      return hash;
    }
  };
  std::size_t capacity_;
  std::list<Node> order_;  // most recent first
  std::unordered_map<KeyDigest, typename std::list<Node>::iterator, DigestHash> index_;
};

}  // namespace parley::auth::detail
