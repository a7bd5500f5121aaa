// Decoding, cropping and resizing one image (see include/fedgan/data/image_decode.hpp). The one
// file of fedgan holding stb_image's and stb_image_resize's implementations (stb_image_write's
// is in io/image_grid.cpp).
#include "fedgan/data/image_decode.hpp"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <limits>
#include <memory>
#include <vector>

#include "fedgan/core/error.hpp"

// Messages meant for users ("unknown image type", "bad huffman code"), not stb's short codes.
#define STBI_FAILURE_USERMSG
#define STBI_NO_HDR
#define STB_IMAGE_IMPLEMENTATION
#include <stb/stb_image.h>
#define STB_IMAGE_RESIZE_IMPLEMENTATION
#include <stb/stb_image_resize.h>

namespace fedgan::data {
namespace {

std::vector<unsigned char> read_file(const std::string& path) {
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> f(std::fopen(path.c_str(), "rb"), std::fclose);
  if (!f) throw Error(path + ": cannot read the image (" + std::strerror(errno) + ")");
  std::vector<unsigned char> bytes;
  unsigned char block[1 << 16];
  std::size_t n = 0;
  while ((n = std::fread(block, 1, sizeof block, f.get())) > 0)
    bytes.insert(bytes.end(), block, block + n);
  if (std::ferror(f.get()))
    throw Error(path + ": cannot read the image (" + std::strerror(errno) + ")");
  return bytes;
}

std::string stb_reason() {
  const char* why = stbi_failure_reason();
  return std::string("not a readable image (stb_image: ") + (why ? why : "unknown reason") + ")";
}

}  // namespace

DecodedImage decode_square_image(const std::string& path, int size, int channels,
                                 std::uint8_t* out) {
  require(channels == 1 || channels == 3, "decode: channels must be 1 or 3");
  const auto bytes = read_file(path);
  DecodedImage info;
  if (bytes.empty()) {
    info.problem = "not a readable image (the file is empty)";
    return info;
  }
  if (bytes.size() > static_cast<std::size_t>(std::numeric_limits<int>::max())) {
    info.problem = "not a readable image (over 2 GiB)";
    return info;
  }
  const int length = static_cast<int>(bytes.size());
  // The header first: a huge image is refused before its pixels are allocated.
  if (!stbi_info_from_memory(bytes.data(), length, &info.width, &info.height, &info.channels)) {
    info.problem = stb_reason();
    return info;
  }
  const std::int64_t pixels = std::int64_t{info.width} * info.height;
  if (pixels > kMaxDecodedPixels) {
    info.problem = std::to_string(info.width) + "x" + std::to_string(info.height) +
                   " pixels, more than the " + std::to_string(kMaxDecodedPixels) +
                   " fedgan decodes (shrink it first)";
    return info;
  }
  int w = 0, h = 0, in_file = 0;
  std::unique_ptr<stbi_uc, void (*)(void*)> pixels_hwc(
      stbi_load_from_memory(bytes.data(), length, &w, &h, &in_file, channels), stbi_image_free);
  if (!pixels_hwc) {
    info.problem = stb_reason();
    return info;
  }

  // The centre square, then the target size.
  const int side = std::min(w, h);
  const int x0 = (w - side) / 2, y0 = (h - side) / 2;
  const stbi_uc* square = pixels_hwc.get() + (std::size_t(y0) * w + x0) * channels;
  const std::size_t plane = std::size_t(size) * size;
  std::vector<stbi_uc> hwc(plane * channels);
  info.upscaled = side < size;
  if (side == size) {
    for (int y = 0; y < size; ++y)
      std::memcpy(hwc.data() + std::size_t(y) * size * channels,
                  square + std::size_t(y) * w * channels, std::size_t(size) * channels);
  } else if (!stbir_resize_uint8_srgb(square, side, side, w * channels, hwc.data(), size, size, 0,
                                      channels, STBIR_ALPHA_CHANNEL_NONE, 0)) {
    throw Error(path + ": cannot resize the image to " + std::to_string(size) + "x" +
                std::to_string(size));
  }
  for (std::size_t p = 0; p < plane; ++p)
    for (int c = 0; c < channels; ++c) out[std::size_t(c) * plane + p] = hwc[p * channels + c];
  return info;
}

}  // namespace fedgan::data
