#include "file_buffer.hpp"

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fcntl.h>
#include <fmt/format.h>
#include <fstream>
#include <new>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tidemark/core/error.hpp"
#include "tidemark/core/files.hpp"

namespace tidemark::detail {

void advise_huge_pages(void* data, std::size_t bytes) {
#ifdef MADV_HUGEPAGE
  constexpr std::uintptr_t kHuge = 2u << 20;
  if (bytes < 2 * kHuge) return;
  const std::uintptr_t a = (reinterpret_cast<std::uintptr_t>(data) + kHuge - 1) & ~(kHuge - 1);
  const std::uintptr_t b = (reinterpret_cast<std::uintptr_t>(data) + bytes) & ~(kHuge - 1);
  if (b > a) ::madvise(reinterpret_cast<void*>(a), b - a, MADV_HUGEPAGE);
#else
  (void)data;
  (void)bytes;
#endif
}

namespace {

// Address ranges of the anonymous mappings (no file, no [heap] or [stack] name).
std::set<std::pair<std::size_t, std::size_t>> anonymous_mappings() {
  std::set<std::pair<std::size_t, std::size_t>> out;
  std::ifstream maps("/proc/self/maps");
  std::string line;
  while (std::getline(maps, line)) {
    unsigned long begin = 0, end = 0, inode = 1;
    int name_at = 0;
    if (std::sscanf(line.c_str(), "%lx-%lx %*s %*s %*s %lu %n", &begin, &end, &inode, &name_at) == 3 && inode == 0 &&
        static_cast<std::size_t>(name_at) >= line.size()) {
      out.emplace(begin, end);
    }
  }
  return out;
}

}  // namespace

NewMappings::NewMappings() : before_(anonymous_mappings()) {}

void NewMappings::advise_new_mappings() const {
  for (const auto& [begin, end] : anonymous_mappings()) {
    if (!before_.count({begin, end})) advise_huge_pages(reinterpret_cast<void*>(begin), end - begin);
  }
}

FileBuffer::FileBuffer(const std::string& path, std::string_view what, std::size_t padding) {
  struct stat st {};
  const bool regular = ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
  const int fd = regular ? ::open(path.c_str(), O_RDONLY | O_CLOEXEC) : -1;
  if (fd < 0) {
    const std::string text = read_text_file(path, what);
    allocate(text.size() + padding);
    std::memcpy(data_, text.data(), text.size());
    size_ = text.size();
    return;
  }
  const auto n = static_cast<std::size_t>(st.st_size);
  try {
    allocate(n + padding);
  } catch (...) {
    ::close(fd);
    throw;
  }
  int error = 0;
  while (size_ < n && !error) {  // fewer bytes if the file shrank since stat
    const ssize_t got = ::read(fd, data_ + size_, n - size_);
    if (got == 0) break;
    if (got > 0) size_ += static_cast<std::size_t>(got);
    if (got < 0 && errno != EINTR) error = errno;
  }
  ::close(fd);
  if (error) {
    ::munmap(data_, capacity_);  // the destructor does not run for a constructor that throws
    throw UserError(fmt::format("{} '{}' could not be read to the end: {}", what, path, std::strerror(error)));
  }
}

FileBuffer::~FileBuffer() {
  if (data_) ::munmap(data_, capacity_);
  data_ = nullptr;
}

void FileBuffer::allocate(std::size_t capacity) {
  void* p = ::mmap(nullptr, capacity, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) throw std::bad_alloc();
  data_ = static_cast<char*>(p);
  capacity_ = capacity;
  advise_huge_pages(data_, capacity_);
}

}  // namespace tidemark::detail
