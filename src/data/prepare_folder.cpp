// An image folder to a dataset file, in chunks (see include/fedgan/data/prepare_folder.hpp).
#include "fedgan/data/prepare_folder.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <limits>
#include <set>
#include <sstream>

#include "fedgan/core/error.hpp"
#include "fedgan/data/dataset_file.hpp"
#include "fedgan/data/image_decode.hpp"
#include "fedgan/data/image_folder.hpp"
#include "fedgan/io/atomic_file.hpp"
#include "fedgan/io/hdf5.hpp"

namespace fedgan::data {
namespace {

constexpr std::size_t kExamples = 3;

void check_folder_options(const PrepareConfig& config) {
  require(config.partition.max_per_party == 0,
          "--max-per-party is not available with --dataset folder (its images are written as "
          "they are decoded); prepare the folder first, then cap the parties of that file with "
          "--dataset hdf5 --source FILE --max-per-party N (with a drawn partition)");
  require(config.image_size == 32 || config.image_size == 64 || config.image_size == 128,
          "--image-size must be 32, 64 or 128, got " + std::to_string(config.image_size));
  require(config.channels == 1 || config.channels == 3,
          "--channels must be 1 (grey) or 3 (RGB), got " + std::to_string(config.channels));
}

// Keeps the files of the classes named by id (--classes); labels keep their ids.
void keep_classes(ImageListing& listing, const std::vector<std::int64_t>& classes) {
  if (classes.empty()) return;
  require(listing.labelled(),
          "--classes: " + listing.root + " has no class folders (its images are unlabelled)");
  const auto n = listing.num_classes();
  std::set<std::int64_t> keep;
  for (auto c : classes) {
    require(c >= 0 && c < n, "--classes: unknown class id " + std::to_string(c) + " (" +
                                 listing.root + " has " + std::to_string(n) +
                                 " class folders, ids 0.." + std::to_string(n - 1) + ")");
    require(keep.insert(c).second, "--classes: class id " + std::to_string(c) + " listed twice");
  }
  std::vector<std::int64_t> found(static_cast<std::size_t>(n), 0);
  auto& files = listing.files;
  files.erase(std::remove_if(files.begin(), files.end(),
                             [&](const ImageFile& f) {
                               ++found[static_cast<std::size_t>(f.label)];
                               return keep.count(f.label) == 0;
                             }),
              files.end());
  for (auto c : classes)
    require(found[static_cast<std::size_t>(c)] > 0,
            "--classes: class " + std::to_string(c) + " (" +
                listing.class_names[static_cast<std::size_t>(c)] + ") has no images in " +
                listing.root);
}

// With party folders: party k holds the rows whose file lies in its folder (rows are in party
// order, so each party's rows are one contiguous run).
PartyIndices parties_of_rows(const std::vector<std::int32_t>& party_of_row,
                             const std::vector<std::string>& party_names, const std::string& root,
                             const char* why) {
  PartyIndices parties(party_names.size());
  for (std::size_t row = 0; row < party_of_row.size(); ++row)
    parties[static_cast<std::size_t>(party_of_row[row])].push_back(static_cast<std::int64_t>(row));
  for (std::size_t k = 0; k < parties.size(); ++k)
    require(!parties[k].empty(),
            root + "/" + party_names[k] + ": party folder holds no images " + why);
  return parties;
}

std::string conversion_text(const PrepareConfig& config) {
  const auto s = std::to_string(config.image_size);
  return "image files decoded (stb_image), centre square crop, resized to " + s + "x" + s +
         " (stb_image_resize, sRGB), " +
         (config.channels == 3 ? "RGB (grey replicated, alpha dropped)"
                               : "grey (luminance 0.30 R + 0.59 G + 0.11 B, alpha dropped)");
}

void log_listing(const ImageListing& listing, double seconds) {
  const auto n = static_cast<std::int64_t>(listing.files.size());
  spdlog::info("prepare: folder {}: {} images, {} (listed in {:.2f} s)", listing.root, n,
               listing.labelled()
                   ? fmt::format("{} classes ({})", listing.class_names.size(),
                                 name_examples(listing.class_names, listing.num_classes(), 10))
                   : std::string("unlabelled (no class folders)"),
               seconds);
  if (!listing.party_names.empty())
    spdlog::info("prepare: {} party folders ({})", listing.party_names.size(),
                 name_examples(listing.party_names,
                               static_cast<std::int64_t>(listing.party_names.size()), 10));
  if (listing.skipped > 0)
    spdlog::warn("prepare: skipped {} files that are not images by their name or are hidden: {}",
                 listing.skipped, name_examples(listing.skipped_examples, listing.skipped));
}

void log_stats(const FolderStats& s, const PrepareConfig& config) {
  spdlog::info(
      "prepare: inputs: {} grey, {} colour, {} with alpha (dropped), {} not square (centre "
      "crop); shorter side {}..{} px",
      s.grey, s.written - s.grey, s.alpha, s.non_square, s.min_side, s.max_side);
  if (s.upscaled > 0)
    spdlog::warn(
        "prepare: {} of {} images are smaller than --image-size {} and were upscaled "
        "(blurrier than the rest)",
        s.upscaled, s.written, config.image_size);
  if (s.bad > 0)
    spdlog::warn("prepare: skipped {} images that could not be decoded (--skip-bad-images): {}",
                 s.bad, name_examples(s.bad_examples, s.bad));
}

}  // namespace

FolderPrepareResult prepare_image_folder(const PrepareConfig& config) {
  check_output(config);
  check_folder_options(config);
  const bool party_folders = config.partition.method == PartitionMethod::Folders;
  // Cheap checks first, so a bad flag fails before the folder is walked.
  if (!party_folders) validate(config.partition, std::numeric_limits<std::int64_t>::max());
  const auto start = std::chrono::steady_clock::now();

  ImageListing listing = list_image_folder(config.source, party_folders);
  keep_classes(listing, config.classes);
  log_listing(listing,
              std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  FolderPrepareResult out;
  out.class_names = listing.class_names;
  out.party_names = listing.party_names;
  auto& stats = out.stats;
  stats.images = static_cast<std::int64_t>(listing.files.size());
  stats.non_images = listing.skipped;
  if (party_folders && !config.classes.empty()) {
    std::vector<std::int32_t> party_of_file;
    for (const auto& f : listing.files) party_of_file.push_back(f.party);
    parties_of_rows(party_of_file, listing.party_names, listing.root,
                    "of the classes kept by --classes");
  }
  PartitionRecipe recipe = config.partition;
  if (party_folders)
    recipe.parties = static_cast<int>(listing.party_names.size());
  else
    validate(recipe, stats.images);

  const std::int64_t c = config.channels, s = config.image_size, row_bytes = c * s * s;
  const auto num_classes = listing.num_classes();
  std::vector<std::int64_t> labels;  // of the written rows
  std::vector<std::int32_t> party_of_row;
  std::vector<std::uint8_t> chunk(static_cast<std::size_t>(kFolderChunk * row_bytes));
  io::write_atomically(config.out, [&](const std::string& temp) {
    h5::File f(temp, h5::File::Mode::Create);
    f.create_rows("/images", torch::kUInt8, {stats.images, c, s, s}, config.compress);
    std::int64_t in_chunk = 0;
    const auto flush = [&] {
      if (in_chunk == 0) return;
      f.write_rows("/images", stats.written - in_chunk,
                   torch::from_blob(chunk.data(), {in_chunk, c, s, s}, torch::kUInt8));
      in_chunk = 0;
    };
    stats.min_side = std::numeric_limits<int>::max();
    for (const auto& file : listing.files) {
      const auto image = decode_square_image(file.path, config.image_size, config.channels,
                                             chunk.data() + in_chunk * row_bytes);
      if (!image.problem.empty()) {
        if (!config.skip_bad_images)
          throw Error(file.path + ": " + image.problem +
                      " (--skip-bad-images leaves such files out with a warning)");
        if (stats.bad_examples.size() < kExamples) stats.bad_examples.push_back(file.path);
        ++stats.bad;
        continue;
      }
      labels.push_back(file.label);
      party_of_row.push_back(file.party);
      const int side = std::min(image.width, image.height);
      stats.grey += image.channels <= 2;
      stats.alpha += image.channels == 2 || image.channels == 4;
      stats.non_square += image.width != image.height;
      stats.upscaled += image.upscaled;
      stats.min_side = std::min(stats.min_side, side);
      stats.max_side = std::max(stats.max_side, side);
      ++stats.written;
      if (++in_chunk == kFolderChunk) flush();
    }
    flush();
    require(stats.written > 0, listing.root + ": none of the " + std::to_string(stats.images) +
                                   " images could be decoded (e.g. " +
                                   name_examples(stats.bad_examples, stats.bad) + ")");
    if (stats.written < stats.images) f.shrink_rows("/images", stats.written);

    auto& result = out.result;
    result.samples = stats.written;
    if (party_folders) {
      result.parties = parties_of_rows(party_of_row, listing.party_names, listing.root,
                                       "that could be decoded (--skip-bad-images skipped them)");
    } else {
      validate(recipe, stats.written);
      result.parties = partition(labels, num_classes, recipe);
    }
    result.table = party_table(result.parties, labels, num_classes);
    f.write("/labels", torch::tensor(labels, torch::kInt64));
    // The folder's own name, also for --source . or a symbolic link.
    std::error_code ec;
    const auto name = std::filesystem::canonical(listing.root, ec).filename().string();
    f.set_attr("/", "name", name.empty() ? std::string("images") : name);
    f.set_attr("/", "num_classes", num_classes);
    f.set_attr("/", "source", listing.root);
    f.set_attr("/", "conversion", conversion_text(config));
    f.set_attr("/", "classes", classes_text(config.classes));
    if (listing.labelled()) f.set_attr("/", "class_names", listing.class_names);
    write_parties(f, result.parties, labels, num_classes, recipe, result.table);
    if (party_folders) f.set_attr("/parties", "names", listing.party_names);
    f.close();
  });
  stats.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();

  log_stats(stats, config);
  log_parties(recipe, out.result.table);
  if (party_folders)
    for (std::size_t k = 0; k < listing.party_names.size(); ++k)
      spdlog::info("  party {} = {}: {} images", k, listing.party_names[k],
                   out.result.parties[k].size());
  const auto& kept = config.classes;
  for (std::int64_t k = 0; k < num_classes && listing.labelled(); ++k)
    if ((kept.empty() || std::count(kept.begin(), kept.end(), k) > 0) &&
        std::count(labels.begin(), labels.end(), k) == 0)
      spdlog::warn("prepare: class {} ({}) has no images; its id is kept", k,
                   listing.class_names[static_cast<std::size_t>(k)]);
  spdlog::info("prepare: wrote {} ({} samples, {}x{}x{}) in {:.2f} s ({:.0f} images/s)", config.out,
               stats.written, c, s, s, stats.seconds,
               static_cast<double>(stats.written) / std::max(stats.seconds, 1e-9));
  return out;
}

}  // namespace fedgan::data
