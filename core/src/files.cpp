#include "tidemark/core/files.hpp"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <fmt/format.h>
#include <fstream>
#include <sstream>
#include <sys/stat.h>
#include <unistd.h>

#include "tidemark/core/error.hpp"

namespace tidemark {
namespace {

std::string directory_of(const std::string& path) {
  auto slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

std::string temp_name_for(const std::string& path) {
  return fmt::format("{}.tmp.{}", path, static_cast<long>(::getpid()));
}

}  // namespace

std::string read_text_file(const std::string& path, std::string_view what) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    throw UserError(fmt::format("{} '{}' cannot be read: {}", what, path, std::strerror(errno)));
  }
  if (S_ISDIR(st.st_mode)) {
    throw UserError(fmt::format("{} '{}' is a directory, expected a file", what, path));
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    throw UserError(fmt::format("{} '{}' cannot be opened: {}", what, path, std::strerror(errno)));
  }
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) throw UserError(fmt::format("{} '{}' could not be read to the end", what, path));
  return ss.str();
}

void write_file_atomic(const std::string& path, std::string_view content, std::string_view what) {
  if (path.empty()) throw UserError(fmt::format("{} path is empty", what));
  const std::string tmp = temp_name_for(path);
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) {
    throw UserError(fmt::format("{} '{}' cannot be written: {} (does the directory '{}' exist?)",
                                what, path, std::strerror(errno), directory_of(path)));
  }
  const char* p = content.data();
  size_t left = content.size();
  while (left > 0) {
    ssize_t n = ::write(fd, p, left);
    if (n < 0) {
      if (errno == EINTR) continue;
      int err = errno;
      ::close(fd);
      ::unlink(tmp.c_str());
      throw UserError(fmt::format("{} '{}': write failed: {}", what, path, std::strerror(err)));
    }
    p += n;
    left -= static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0 || ::close(fd) != 0) {
    int err = errno;
    ::unlink(tmp.c_str());
    throw UserError(fmt::format("{} '{}': flush failed: {}", what, path, std::strerror(err)));
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    int err = errno;
    ::unlink(tmp.c_str());
    throw UserError(fmt::format("{} '{}' cannot be replaced: {}", what, path, std::strerror(err)));
  }
}

void check_writable(const std::string& path, std::string_view what) {
  if (path.empty()) throw UserError(fmt::format("{} path is empty", what));
  struct stat st {};
  if (::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) {
    throw UserError(fmt::format("{} '{}' is a directory; give a file name", what, path));
  }
  const std::string tmp = temp_name_for(path);
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) {
    throw UserError(fmt::format("{} '{}' cannot be written: {} (does the directory '{}' exist?)",
                                what, path, std::strerror(errno), directory_of(path)));
  }
  ::close(fd);
  ::unlink(tmp.c_str());
}

}  // namespace tidemark
