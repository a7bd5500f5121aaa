// PNG sample grids: grey and RGB at every model size, read back with stb_image (size, channel
// count, each tile's colour where it should be).
#include <catch2/catch.hpp>

// The decoder's implementation is the library's (src/data/image_decode.cpp): one per program.
#include <stb/stb_image.h>

#include <memory>

#include "fedgan/core/error.hpp"
#include "fedgan/io/image_grid.hpp"
#include "temp_dir.hpp"

using namespace fedgan;
using Catch::Matchers::Contains;
using fedgan::testing::TempDir;

namespace {

struct Png {
  int width = 0, height = 0, channels = 0;
  std::unique_ptr<unsigned char, void (*)(void*)> pixels{nullptr, stbi_image_free};
  int at(int x, int y, int c) const { return pixels.get()[(y * width + x) * channels + c]; }
};

// The PNG as stored: its own channel count (no conversion).
Png read_png(const std::string& path) {
  Png png;
  png.pixels.reset(stbi_load(path.c_str(), &png.width, &png.height, &png.channels, 0));
  REQUIRE(png.pixels);
  return png;
}

}  // namespace

TEST_CASE("PNG grids are grey or RGB at 28, 32, 64 and 128 pixels, each tile in its place") {
  TempDir dir;
  for (int size : {28, 32, 64, 128}) {
    for (int channels : {1, 3}) {
      // Four tiles in [-1, 1]: red, green, blue and a mid grey (one channel: -1, 0, 1, 0.5).
      auto images = torch::full({4, channels, size, size}, -1.0f);
      for (int i = 0; i < 3; ++i) images[i][channels == 3 ? i : 0].fill_(channels == 3 ? 1 : i - 1);
      images[3].fill_(0.5);
      const auto path =
          dir.file("grid_" + std::to_string(size) + "_" + std::to_string(channels) + ".png");
      io::write_png_grid(path, images);
      const auto png = read_png(path);
      // 2 x 2 tiles with a 2-pixel border; up to 32 pixels the grid is shown at twice its size.
      const int scale = size <= 32 ? 2 : 1;
      CHECK(png.channels == channels);
      CHECK(png.width == scale * (2 * (size + 2) + 2));
      CHECK(png.height == png.width);
      // The centre of tile i (row i / 2, column i % 2).
      const auto centre = [&](int i, int c) {
        const int x = scale * (2 + (i % 2) * (size + 2) + size / 2);
        const int y = scale * (2 + (i / 2) * (size + 2) + size / 2);
        return png.at(x, y, c);
      };
      if (channels == 3) {
        for (int i = 0; i < 3; ++i)
          for (int c = 0; c < 3; ++c) CHECK(centre(i, c) == (c == i ? 255 : 0));
        for (int c = 0; c < 3; ++c) CHECK(centre(3, c) == 191);  // round(1.5 * 127.5)
      } else {
        CHECK(centre(0, 0) == 0);
        CHECK(centre(1, 0) == 128);  // round(127.5), half to even
        CHECK(centre(2, 0) == 255);
        CHECK(centre(3, 0) == 191);
      }
      CHECK(png.at(0, 0, 0) == 32);  // the border
    }
  }
  CHECK_THROWS_WITH(io::write_png_grid(dir.file("two.png"), torch::zeros({4, 2, 28, 28})),
                    Contains("PNG needs 1 or 3 channels, got 2"));
}
