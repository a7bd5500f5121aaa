// The list of images in a folder tree (`prepare --dataset folder`): which files are images, their
// class (from class folders) and party (from party folders), in a deterministic order. Only
// paths are held, never pixels, so 100,000 images cost a few MB here.
//
// Layout (names sorted bytewise, the C locale's order):
//   ROOT/<class>/**/*.png        labelled: class id = index of <class> among the class folders
//   ROOT/*.png                   unlabelled (one class, id 0)
// and with party folders (`--partition folders`), one level more:
//   ROOT/<party>/<class>/**/*.png, or ROOT/<party>/*.png
// Below a class folder images are found at any depth. Files whose name has no image extension
// and hidden entries (a leading '.') are skipped and counted. Symbolic links are followed; a
// directory reached twice (a link back to an ancestor, or two links to one folder) is an error
// naming both paths, so the walk always ends and no image is counted twice.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace fedgan::data {

// The extensions read (case-insensitive): png, jpg, jpeg, bmp, gif (first frame), tga, pgm,
// ppm, pnm.
bool has_image_extension(const std::string& name);

struct ImageFile {
  std::string path;
  std::int32_t party = 0;  // index into ImageListing::party_names (0 without party folders)
  std::int32_t label = 0;  // index into ImageListing::class_names (0 when unlabelled)
};

struct ImageListing {
  std::string root;
  std::vector<ImageFile> files;               // ordered by party, class, then path
  std::vector<std::string> party_names;       // the party folders; empty without them
  std::vector<std::string> class_names;       // sorted union over the parties; empty: unlabelled
  std::int64_t skipped = 0;                   // non-image files and hidden entries
  std::vector<std::string> skipped_examples;  // the first few of them (paths)

  bool labelled() const { return !class_names.empty(); }
  std::int64_t num_classes() const {
    return labelled() ? static_cast<std::int64_t>(class_names.size()) : 1;
  }
};

// Walks `root`. With `party_folders` each top-level folder is one party. fedgan::Error naming
// the path for: a missing or unreadable root or folder, a file that cannot be inspected, a
// directory reached twice (symlink loop), images beside class folders, parties of which some
// have class folders and some do not, images directly in `root` with party folders, a party
// folder that holds no images, and a tree with no images at all.
ImageListing list_image_folder(const std::string& root, bool party_folders);

// "a, b, c" of at most `limit` names, with "and N more" when there are more.
std::string name_examples(const std::vector<std::string>& names, std::int64_t total,
                          std::size_t limit = 3);

}  // namespace fedgan::data
