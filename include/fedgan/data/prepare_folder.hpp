// `fedgan prepare --dataset folder`: a directory of image files to a dataset file, streamed.
// The tree is listed (data/image_folder.hpp: paths, classes and parties only), the images are
// decoded in chunks of kFolderChunk into a pre-sized /images (data/image_decode.hpp), then the
// labels and the partition are written: memory holds the paths and one chunk, never the pixels
// of the whole set. The file is the schema every other `prepare` writes (docs/DESIGN.md), with
// the names of the classes and the party folders as attributes.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "fedgan/data/prepare.hpp"

namespace fedgan::data {

constexpr std::int64_t kFolderChunk = 512;  // images decoded and written at once

// What the conversion met, for its report.
struct FolderStats {
  std::int64_t images = 0;      // image files listed (after --classes)
  std::int64_t written = 0;     // rows of /images
  std::int64_t non_images = 0;  // files skipped for their name (no image extension, hidden)
  std::int64_t bad = 0;         // undecodable images skipped (--skip-bad-images)
  std::vector<std::string> bad_examples;
  std::int64_t grey = 0;        // written images that were grey in the file (with or without alpha)
  std::int64_t alpha = 0;       // ... that had an alpha channel (dropped)
  std::int64_t non_square = 0;  // ... that were cropped to their centre square
  std::int64_t upscaled = 0;    // ... whose square was smaller than --image-size
  int min_side = 0, max_side = 0;  // shorter side over the written images
  double seconds = 0;
};

struct FolderPrepareResult {
  PrepareResult result;
  FolderStats stats;
  std::vector<std::string> class_names;  // empty: unlabelled
  std::vector<std::string> party_names;  // empty unless --partition folders
};

// Runs `prepare` for config.dataset == Folder: --source the directory, --image-size (32, 64 or
// 128), --channels (1 or 3), --partition folders or any drawn partition, --classes (ids of the
// sorted class folders), --skip-bad-images. fedgan::Error naming the file or folder at fault;
// nothing is written then (the file is written under a temporary name and renamed).
FolderPrepareResult prepare_image_folder(const PrepareConfig& config);

}  // namespace fedgan::data
