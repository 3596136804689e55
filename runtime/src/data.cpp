#include "tidemark/runtime/data.hpp"

#include <algorithm>
#include <array>
#include <fmt/format.h>
#include <random>
#include <vector>

#include "tidemark/core/error.hpp"
#include "tidemark/core/files.hpp"

namespace tidemark::runtime {
namespace {

// splitmix64: a counter-based mix, so batch offsets depend only on (seed, step, row).
std::uint64_t mix(std::uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

}  // namespace

TextData TextData::synthetic(std::uint64_t seed, std::size_t bytes) {
  // std::mt19937_64's sequence is fixed by the standard; distributions are not, so draw
  // with modulo to stay identical across standard libraries.
  std::mt19937_64 rng(seed ^ 0x7469646d61726bull);
  auto draw = [&](std::uint64_t n) { return static_cast<std::size_t>(rng() % n); };
  const std::string consonants = "bcdfghklmnprstvwz";
  const std::string vowels = "aeiouy";
  constexpr int kWords = 64;
  std::vector<std::string> words;
  for (int w = 0; w < kWords; ++w) {
    std::string word;
    std::size_t len = 2 + draw(6);
    bool vowel = draw(2) == 0;
    for (std::size_t i = 0; i < len; ++i, vowel = !vowel) {
      word += vowel ? vowels[draw(vowels.size())] : consonants[draw(consonants.size())];
    }
    words.push_back(word);
  }
  // Each word prefers three successors: a sparse, learnable Markov chain.
  std::vector<std::array<std::size_t, 3>> next(kWords);
  for (auto& n : next) n = {draw(kWords), draw(kWords), draw(kWords)};
  std::string text;
  text.reserve(bytes + 64);
  std::size_t w = draw(kWords);
  int in_sentence = 0, sentence_len = 6 + static_cast<int>(draw(8)), sentences = 0;
  while (text.size() < bytes) {
    text += words[w];
    if (++in_sentence == sentence_len) {
      text += (++sentences % 5 == 0) ? ".\n" : ". ";
      in_sentence = 0;
      sentence_len = 6 + static_cast<int>(draw(8));
    } else {
      text += ' ';
    }
    w = draw(10) < 8 ? next[w][draw(3)] : draw(kWords);
  }
  text.resize(bytes);
  TextData d;
  d.text_ = std::move(text);
  d.source_ = fmt::format("synthetic corpus (seed {})", seed);
  return d;
}

TextData TextData::from_file(const std::string& path) {
  TextData d;
  d.text_ = read_text_file(path, "--data file");
  d.source_ = path;
  if (d.text_.empty()) throw UserError(fmt::format("--data file '{}' is empty", path));
  return d;
}

void TextData::check(std::int64_t vocab, std::int64_t seq) const {
  if (static_cast<std::int64_t>(text_.size()) < seq + 2) {
    throw UserError(fmt::format("{} has {} bytes, fewer than --seq {} + 2; use a longer text or a "
                                "shorter --seq",
                                source_, text_.size(), seq));
  }
  unsigned char top = 0;
  for (unsigned char c : text_) top = std::max(top, c);
  if (top >= vocab) {
    throw UserError(fmt::format("--vocab {} is too small for {}: it contains byte {}; byte-level "
                                "text needs --vocab 256",
                                vocab, source_, static_cast<int>(top)));
  }
}

Batch TextData::batch(std::uint64_t seed, std::uint64_t step, std::int64_t batch, std::int64_t seq,
                      const torch::Device& device, std::int64_t first_row) const {
  const std::uint64_t span = text_.size() - static_cast<std::uint64_t>(seq) - 1;
  auto idx = torch::empty({batch, seq}, torch::kLong);
  auto tgt = torch::empty({batch, seq}, torch::kLong);
  auto* pi = idx.data_ptr<std::int64_t>();
  auto* pt = tgt.data_ptr<std::int64_t>();
  for (std::int64_t b = 0; b < batch; ++b) {
    const auto row = static_cast<std::uint64_t>(first_row + b);
    std::uint64_t off = mix(seed * 0x100000001b3ull ^ mix(step * 1315423911ull + row)) % span;
    for (std::int64_t t = 0; t < seq; ++t) {
      pi[b * seq + t] = static_cast<unsigned char>(text_[off + t]);
      pt[b * seq + t] = static_cast<unsigned char>(text_[off + t + 1]);
    }
  }
  if (device.is_cpu()) return {{idx}, tgt, {}};
  return {{idx.to(device)}, tgt.to(device), {}};
}

}  // namespace tidemark::runtime
