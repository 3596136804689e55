// PNG encoding through stb_image_write (Debian's libstb ships the implementation).
#include <fmt/format.h>
#include <stb_image_write.h>

#include <string>

#include "tidemark/core/error.hpp"
#include "tidemark/core/files.hpp"
#include "tidemark/viewer/app.hpp"

namespace tidemark::viewer {

void write_png(const std::string& path, int width, int height, const std::vector<unsigned char>& rgba) {
  if (width <= 0 || height <= 0 ||
      rgba.size() != static_cast<std::size_t>(width) * static_cast<std::size_t>(height) * 4) {
    throw UserError(fmt::format("{}: no image to write ({}x{})", path, width, height));
  }
  std::string png;
  auto append = [](void* context, void* data, int size) {
    static_cast<std::string*>(context)->append(static_cast<const char*>(data), static_cast<std::size_t>(size));
  };
  if (!stbi_write_png_to_func(append, &png, width, height, 4, rgba.data(), width * 4)) {
    throw UserError(fmt::format("{}: PNG encoding failed", path));
  }
  // Through a temporary name and a rename, like every other output of tidemark.
  write_file_atomic(path, png, "--screenshot");
}

}  // namespace tidemark::viewer
