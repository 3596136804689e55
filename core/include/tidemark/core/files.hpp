#pragma once
// File I/O with the guarantees the CLI promises: reads that fail name the file, and
// writes that never leave a half-written file behind (temporary name, fsync, rename).
#include <string>
#include <string_view>

namespace tidemark {

// Whole file as text. Throws UserError naming `what` and the path when it cannot be read.
std::string read_text_file(const std::string& path, std::string_view what = "file");

// Writes `content` to `path` atomically: a reader sees the old file or the new one, never a
// mix, and a crash leaves the old one. Throws UserError when the directory is not writable.
void write_file_atomic(const std::string& path, std::string_view content,
                       std::string_view what = "output");

// Checks up front that `path` can be written (its directory exists and accepts a file), so
// a long run does not fail at the end. Leaves no file behind. Throws UserError.
void check_writable(const std::string& path, std::string_view what = "output");

}  // namespace tidemark
