// One image file to a square uint8 training image (`prepare --dataset folder`): decoded with
// stb_image (PNG, JPEG, BMP, GIF's first frame, TGA, PNM), converted to the wanted channels
// (grey -> RGB replicates, RGB -> grey by stb's luminance 0.30 R + 0.59 G + 0.11 B, alpha
// dropped), centre-cropped to a square and resized with stb_image_resize (sRGB-aware).
#pragma once

#include <cstdint>
#include <string>

namespace fedgan::data {

// Refused larger than this many pixels (a 64-megapixel RGB image decodes to 192 MiB).
constexpr std::int64_t kMaxDecodedPixels = std::int64_t{1} << 26;

// What the file held, for the summary of a conversion.
struct DecodedImage {
  int width = 0;
  int height = 0;
  int channels = 0;       // in the file: 1 grey, 2 grey + alpha, 3 RGB, 4 RGBA
  bool upscaled = false;  // the square crop was smaller than the target size
  // Non-empty when the bytes are no image fedgan can decode: why ("not a readable image
  // (stb_image: ...)", "empty file", "larger than ..."); `out` is then untouched. The caller
  // decides whether that stops the conversion (--skip-bad-images).
  std::string problem;
};

// Decodes `path` into `out`: channels x size x size bytes, planar ([C, H, W], row-major).
// fedgan::Error naming the file when it cannot be read at all (with the system's reason).
DecodedImage decode_square_image(const std::string& path, int size, int channels,
                                 std::uint8_t* out);

}  // namespace fedgan::data
