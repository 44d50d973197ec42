// The private open-addressing index behind both bounded tables.
#include <random>
#include <unordered_map>
#include <vector>

#include <gtest/gtest.h>

#include "flat_index.hpp"

namespace ta::dns::detail {
namespace {

TEST(FlatIndex, EmptyFindsNothing) {
  const FlatIndex idx;
  EXPECT_EQ(idx.find(123, [](std::uint32_t) { return true; }), kNil);
}

// Keys are uint64s; deliberately bad hashes (many equal tags) stress probing.
TEST(FlatIndex, MatchesModelWithCollisions) {
  for (const std::uint64_t hash_mask : {~std::uint64_t{0}, std::uint64_t{0xF}}) {
    FlatIndex idx;
    std::vector<std::uint64_t> keys;                        // value -> key
    std::unordered_map<std::uint64_t, std::uint32_t> model; // key -> value
    std::vector<std::uint32_t> free_values;
    std::mt19937_64 rng(7);
    const auto find = [&](std::uint64_t k) {
      return idx.find(k & hash_mask, [&](std::uint32_t v) { return keys[v] == k; });
    };
    for (int step = 0; step < 50000; ++step) {
      const std::uint64_t k = rng() % 2000;
      const auto it = model.find(k);
      if (it == model.end()) {
        ASSERT_EQ(find(k), kNil);
        std::uint32_t v = 0;
        if (!free_values.empty()) {
          v = free_values.back();
          free_values.pop_back();
          keys[v] = k;
        } else {
          v = static_cast<std::uint32_t>(keys.size());
          keys.push_back(k);
        }
        idx.insert(k & hash_mask, v);
        model.emplace(k, v);
      } else {
        ASSERT_EQ(find(k), it->second);
        idx.erase(k & hash_mask, it->second);
        free_values.push_back(it->second);
        model.erase(it);
        ASSERT_EQ(find(k), kNil);
      }
      ASSERT_EQ(idx.size(), model.size());
    }
    for (const auto &[k, v] : model) {
      EXPECT_EQ(find(k), v);
    }
  }
}

struct Node {
  std::uint32_t prev = kNil;
  std::uint32_t next = kNil;
};

std::vector<std::uint32_t> walk(const LruList<Node> &l, const std::vector<Node> &pool) {
  std::vector<std::uint32_t> out;
  for (std::uint32_t i = l.front(); i != kNil; i = pool[i].next) {
    out.push_back(i);
  }
  return out;
}

TEST(LruList, Order) {
  std::vector<Node> pool(4);
  LruList<Node> l;
  EXPECT_TRUE(l.empty());
  for (std::uint32_t i = 0; i < 4; ++i) {
    l.push_back(pool, i);
  }
  l.move_to_back(pool, 1);
  l.move_to_back(pool, 1); // already last
  EXPECT_EQ(walk(l, pool), (std::vector<std::uint32_t>{0, 2, 3, 1}));
  l.unlink(pool, 0);
  l.unlink(pool, 1);
  EXPECT_EQ(walk(l, pool), (std::vector<std::uint32_t>{2, 3}));
  l.unlink(pool, 2);
  l.unlink(pool, 3);
  EXPECT_TRUE(l.empty());
}

} // namespace
} // namespace ta::dns::detail
