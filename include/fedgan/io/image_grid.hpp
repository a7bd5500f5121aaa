// Sample grids: images in [-1, 1] tiled into one PNG (written atomically), and uint8 conversion.
#pragma once

#include <torch/torch.h>

#include <string>

namespace fedgan::io {

// [N, C, H, W] float in [-1, 1] -> uint8 [N, C, H, W] in [0, 255] (rounded, clamped);
// fedgan::Error when a value is NaN or inf.
torch::Tensor to_uint8(const torch::Tensor& images);

// Tiles N images into a grid of `columns` (default: ceil(sqrt(N))) with a 2-pixel border.
// C = 1 gives a grayscale PNG, C = 3 RGB.
void write_png_grid(const std::string& path, const torch::Tensor& images, int columns = 0);

// The grid itself as uint8 [C, H', W'] (what write_png_grid writes).
torch::Tensor tile_grid(const torch::Tensor& images, int columns = 0);

}  // namespace fedgan::io
