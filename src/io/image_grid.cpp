// PNG sample grids through stb_image_write (see include/fedgan/io/image_grid.hpp).
#include "fedgan/io/image_grid.hpp"

#include "fedgan/core/error.hpp"
#include "fedgan/io/atomic_file.hpp"

#define STB_IMAGE_WRITE_IMPLEMENTATION
#include <stb/stb_image_write.h>

#include <cmath>

namespace fedgan::io {

torch::Tensor to_uint8(const torch::Tensor& images) {
  const auto x = images.detach().to(torch::kCPU).to(torch::kFloat32);
  // NaN would become pixel 0 silently: a broken model must not pass for a dark image.
  const auto bad = x.numel() - torch::isfinite(x).sum().item<std::int64_t>();
  require(bad == 0, "images: " + std::to_string(bad) + " of " + std::to_string(x.numel()) +
                        " values are NaN/inf (a non-finite model?); not written as pixels");
  return ((x + 1.0) * 127.5).round().clamp(0, 255).to(torch::kUInt8);
}

torch::Tensor tile_grid(const torch::Tensor& images, int columns) {
  require(images.dim() == 4, "image grid: expected [N, C, H, W]");
  const std::int64_t n = images.size(0), c = images.size(1), h = images.size(2),
                     w = images.size(3);
  require(n > 0, "image grid: no images");
  if (columns <= 0) columns = static_cast<int>(std::ceil(std::sqrt(static_cast<double>(n))));
  const std::int64_t rows = (n + columns - 1) / columns, pad = 2;
  auto u8 = to_uint8(images);
  auto grid = torch::full({c, rows * (h + pad) + pad, columns * (w + pad) + pad}, 32,
                          torch::kUInt8);
  for (std::int64_t i = 0; i < n; ++i) {
    const std::int64_t r = i / columns, col = i % columns;
    grid.narrow(1, pad + r * (h + pad), h).narrow(2, pad + col * (w + pad), w).copy_(u8[i]);
  }
  return grid;  // [C, H', W']
}

void write_png_grid(const std::string& path, const torch::Tensor& images, int columns) {
  auto grid = tile_grid(images, columns);
  // Small images are shown at twice their size, so a 28x28 grid can be looked at.
  if (images.size(2) <= 32) grid = grid.repeat_interleave(2, 1).repeat_interleave(2, 2);
  const int c = static_cast<int>(grid.size(0));
  require(c == 1 || c == 3, "image grid: PNG needs 1 or 3 channels, got " + std::to_string(c));
  auto hwc = grid.permute({1, 2, 0}).contiguous();
  const int height = static_cast<int>(hwc.size(0)), width = static_cast<int>(hwc.size(1));
  write_atomically(path, [&](const std::string& temp) {
    if (!stbi_write_png(temp.c_str(), width, height, c, hwc.data_ptr<std::uint8_t>(), width * c))
      throw Error(path + ": cannot write the PNG (is the directory writable?)");
  });
}

}  // namespace fedgan::io
