#pragma once
// Private to core: memory for reading large files (traces run to 100 MB) quickly.
#include <cstddef>
#include <set>
#include <string>
#include <string_view>
#include <utility>

namespace tidemark::detail {

// Page faults, not parsing, were a third of loading an 80 MB trace on the VMs this was
// measured on (a fault per 4 KiB page of the text and of every column). Transparent huge
// pages, where the kernel offers them on request, cut them 512-fold. Advice only: without
// THP nothing changes.
void advise_huge_pages(void* data, std::size_t bytes);

// The same advice for memory a library allocates where we cannot pass it a buffer: the
// anonymous mappings that appeared between construction and advise_new_mappings().
class NewMappings {
 public:
  NewMappings();
  void advise_new_mappings() const;

 private:
  std::set<std::pair<std::size_t, std::size_t>> before_;
};

// A whole file in fresh anonymous memory (no zero-fill pass; huge pages advised) followed by
// `padding` zero bytes. A path that is not a regular file we can open goes through
// read_text_file, which words the error, or reads a pipe.
class FileBuffer {
 public:
  FileBuffer(const std::string& path, std::string_view what, std::size_t padding);
  ~FileBuffer();
  FileBuffer(const FileBuffer&) = delete;
  FileBuffer& operator=(const FileBuffer&) = delete;
  const char* data() const { return data_; }
  std::size_t size() const { return size_; }
  std::size_t capacity() const { return capacity_; }

 private:
  void allocate(std::size_t capacity);
  char* data_ = nullptr;
  std::size_t size_ = 0, capacity_ = 0;
};

}  // namespace tidemark::detail
