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
#include "tidemark/core/fault.hpp"

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

// Writes all of `bytes`; 0 or the errno of the failure.
int write_all(int fd, std::string_view bytes) {
  const char* p = bytes.data();
  size_t left = bytes.size();
  while (left > 0) {
    ssize_t n = ::write(fd, p, left);
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    p += n;
    left -= static_cast<size_t>(n);
  }
  return 0;
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
  // Two halves, so that crash tests can stop a write in the middle (fault_point).
  const size_t half = content.size() / 2;
  int err = write_all(fd, content.substr(0, half));
  if (err == 0) {
    if (half > 0) fault_point("atomic-write:half");
    err = write_all(fd, content.substr(half));
  }
  if (err != 0) {
    ::close(fd);
    ::unlink(tmp.c_str());
    throw UserError(fmt::format("{} '{}': write failed: {}", what, path, std::strerror(err)));
  }
  if (::fsync(fd) != 0 || ::close(fd) != 0) {
    err = errno;
    ::unlink(tmp.c_str());
    throw UserError(fmt::format("{} '{}': flush failed: {}", what, path, std::strerror(err)));
  }
  fault_point("atomic-write:before-rename");
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    err = errno;
    ::unlink(tmp.c_str());
    throw UserError(fmt::format("{} '{}' cannot be replaced: {}", what, path, std::strerror(err)));
  }
  fault_point("atomic-write:after-rename");
  // The rename is durable only once the directory is flushed; a failure here loses nothing
  // that a crash a moment earlier would not, so it is not an error.
  int dir = ::open(directory_of(path).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir >= 0) {
    ::fsync(dir);
    ::close(dir);
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
