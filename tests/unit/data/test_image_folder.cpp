// `prepare --dataset folder`: the walk (layouts, labels, parties, skipped files, symlink loops,
// refused layouts), the decoder (grey/RGB/alpha, centre crop, sizes, bad files) and the whole
// conversion (the dataset file's schema, chunks, --skip-bad-images, --classes, nothing written
// on error). The images are written here with stb_image_write.
#include <stb/stb_image_write.h>
#include <unistd.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>

#include "fedgan/core/error.hpp"
#include "fedgan/data/dataset_file.hpp"
#include "fedgan/data/image_decode.hpp"
#include "fedgan/data/image_folder.hpp"
#include "fedgan/data/prepare_folder.hpp"
#include "fedgan/io/hdf5.hpp"
#include "temp_dir.hpp"

using namespace fedgan;
using Catch::Matchers::Contains;
using fedgan::testing::TempDir;
namespace fs = std::filesystem;

namespace {

// pixel(x, y, channel) of a w x h image with `c` channels (1 grey, 2 grey+alpha, 3, 4).
using FolderPixel = std::function<int(int, int, int)>;

void folder_write_image(const std::string& path, int w, int h, int c, const FolderPixel& pixel) {
  fs::create_directories(fs::path(path).parent_path());
  std::vector<unsigned char> data(static_cast<std::size_t>(w * h * c));
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x)
      for (int k = 0; k < c; ++k)
        data[static_cast<std::size_t>((y * w + x) * c + k)] =
            static_cast<unsigned char>(pixel(x, y, k));
  const auto ext = fs::path(path).extension().string();
  const int ok = ext == ".jpg"   ? stbi_write_jpg(path.c_str(), w, h, c, data.data(), 95)
                 : ext == ".bmp" ? stbi_write_bmp(path.c_str(), w, h, c, data.data())
                                 : stbi_write_png(path.c_str(), w, h, c, data.data(), w * c);
  REQUIRE(ok != 0);
}

// A w x h image of one colour.
void folder_flat(const std::string& path, int w, int h, int c, std::vector<int> colour) {
  folder_write_image(path, w, h, c, [colour](int, int, int k) { return colour[std::size_t(k)]; });
}

void folder_text(const std::string& path, const std::string& text) {
  fs::create_directories(fs::path(path).parent_path());
  std::ofstream(path) << text;
}

std::vector<std::string> folder_names(const data::ImageListing& l) {
  std::vector<std::string> out;
  for (const auto& f : l.files) out.push_back(f.path.substr(l.root.size() + 1));
  return out;
}

data::PrepareConfig folder_config(const std::string& source, const std::string& out) {
  data::PrepareConfig c;
  c.dataset = data::DatasetSource::Folder;
  c.source = source;
  c.out = out;
  c.image_size = 32;
  return c;
}

}  // namespace

TEST_CASE("image folder: class folders give sorted labels, other files are skipped",
          "[data][image_folder]") {
  TempDir dir;
  const auto root = dir.file("set");
  folder_flat(root + "/dog/b.png", 8, 8, 3, {1, 2, 3});
  folder_flat(root + "/dog/a.JPG", 8, 8, 3, {1, 2, 3});
  folder_flat(root + "/dog/deeper/c.bmp", 8, 8, 1, {9});
  folder_flat(root + "/cat/x.png", 8, 8, 1, {9});
  folder_text(root + "/cat/notes.txt", "not an image");
  folder_text(root + "/cat/.DS_Store", "hidden");
  folder_flat(root + "/.hidden/y.png", 8, 8, 1, {9});
  folder_text(root + "/README", "no extension");

  const auto l = data::list_image_folder(root + "/", false);  // a trailing '/' is the same tree
  CHECK(l.root == root);
  CHECK(l.class_names == std::vector<std::string>{"cat", "dog"});
  CHECK(l.num_classes() == 2);
  CHECK(l.party_names.empty());
  CHECK(folder_names(l) ==
        std::vector<std::string>{"cat/x.png", "dog/a.JPG", "dog/b.png", "dog/deeper/c.bmp"});
  std::vector<int> labels;
  for (const auto& f : l.files) labels.push_back(f.label);
  CHECK(labels == std::vector<int>{0, 1, 1, 1});
  CHECK(l.skipped == 4);  // notes.txt, .DS_Store, .hidden/, README
  CHECK(data::has_image_extension("a.JPEG"));
  CHECK(data::has_image_extension("b.tga"));
  CHECK_FALSE(data::has_image_extension("c.png.txt"));
  CHECK_FALSE(data::has_image_extension(".png"));
}

TEST_CASE("image folder: images directly in the folder are unlabelled", "[data][image_folder]") {
  TempDir dir;
  const auto root = dir.file("flat");
  folder_flat(root + "/2.png", 8, 8, 3, {1, 2, 3});
  folder_flat(root + "/1.png", 8, 8, 3, {1, 2, 3});
  const auto l = data::list_image_folder(root, false);
  CHECK_FALSE(l.labelled());
  CHECK(l.num_classes() == 1);
  CHECK(folder_names(l) == std::vector<std::string>{"1.png", "2.png"});
}

TEST_CASE("image folder: party folders, the class set is the union over parties",
          "[data][image_folder]") {
  TempDir dir;
  const auto root = dir.file("parties");
  folder_flat(root + "/hospital_b/zebra/1.png", 8, 8, 3, {1, 2, 3});
  folder_flat(root + "/hospital_b/cat/1.png", 8, 8, 3, {1, 2, 3});
  folder_flat(root + "/hospital_a/cat/1.png", 8, 8, 3, {1, 2, 3});
  folder_flat(root + "/hospital_a/cat/2.png", 8, 8, 3, {1, 2, 3});
  folder_flat(root + "/hospital_a/dog/1.png", 8, 8, 3, {1, 2, 3});
  folder_text(root + "/LICENSE.txt", "skipped");
  const auto l = data::list_image_folder(root, true);
  CHECK(l.party_names == std::vector<std::string>{"hospital_a", "hospital_b"});
  CHECK(l.class_names == std::vector<std::string>{"cat", "dog", "zebra"});
  std::vector<std::pair<int, int>> party_label;
  for (const auto& f : l.files) party_label.emplace_back(f.party, f.label);
  CHECK(party_label == std::vector<std::pair<int, int>>{{0, 0}, {0, 0}, {0, 1}, {1, 0}, {1, 2}});
  CHECK(l.skipped == 1);
}

TEST_CASE("image folder: refused layouts name the folder", "[data][image_folder]") {
  TempDir dir;
  const auto root = dir.file("bad");
  SECTION("missing, or not a directory") {
    CHECK_THROWS_WITH(data::list_image_folder(root, false), Contains("bad: no such directory"));
    folder_text(root, "a file");
    CHECK_THROWS_WITH(data::list_image_folder(root, false), Contains("bad: not a directory"));
  }
  SECTION("no images at all") {
    folder_text(root + "/a.txt", "x");
    fs::create_directories(root + "/empty_class");
    CHECK_THROWS_WITH(data::list_image_folder(root, false),
                      Contains("bad: no images found") && Contains("a.txt"));
  }
  SECTION("images beside class folders") {
    folder_flat(root + "/stray.png", 8, 8, 3, {0, 0, 0});
    folder_flat(root + "/cat/1.png", 8, 8, 3, {0, 0, 0});
    CHECK_THROWS_WITH(data::list_image_folder(root, false),
                      Contains("bad: holds both images (stray.png) and folders (cat/)"));
  }
  SECTION("an empty party folder") {
    folder_flat(root + "/hospital_a/1.png", 8, 8, 3, {0, 0, 0});
    fs::create_directories(root + "/hospital_c");
    folder_text(root + "/hospital_c/readme.txt", "no images here");
    CHECK_THROWS_WITH(data::list_image_folder(root, true),
                      Contains("bad/hospital_c: party folder holds no images"));
  }
  SECTION("a party whose class folders are all empty") {
    folder_flat(root + "/hospital_a/cat/1.png", 8, 8, 3, {0, 0, 0});
    fs::create_directories(root + "/hospital_b/cat");
    CHECK_THROWS_WITH(data::list_image_folder(root, true),
                      Contains("bad/hospital_b: party folder holds no images (its class folders "
                               "are empty)"));
  }
  SECTION("images directly in the root with party folders") {
    folder_flat(root + "/1.png", 8, 8, 3, {0, 0, 0});
    CHECK_THROWS_WITH(data::list_image_folder(root, true),
                      Contains("bad: holds images directly (1.png)"));
  }
  SECTION("parties of different layouts") {
    folder_flat(root + "/a/cat/1.png", 8, 8, 3, {0, 0, 0});
    folder_flat(root + "/b/1.png", 8, 8, 3, {0, 0, 0});
    CHECK_THROWS_WITH(data::list_image_folder(root, true),
                      Contains("bad/a has class folders but " + root +
                               "/b holds its images "
                               "directly"));
  }
}

TEST_CASE("image folder: a symlink loop or a folder reached twice is named, never walked forever",
          "[data][image_folder]") {
  TempDir dir;
  const auto root = dir.file("links");
  folder_flat(root + "/cat/1.png", 8, 8, 3, {0, 0, 0});
  SECTION("a link back to an ancestor") {
    fs::create_directory_symlink(root, root + "/cat/loop");
    CHECK_THROWS_WITH(data::list_image_folder(root, false),
                      Contains("links/cat/loop: a symbolic link loop (it leads back to " + root));
  }
  SECTION("a link to its own folder") {
    fs::create_directory_symlink(root + "/cat", root + "/cat/self");
    CHECK_THROWS_WITH(data::list_image_folder(root, false),
                      Contains("cat/self: a symbolic link loop"));
  }
  SECTION("two names for one folder") {
    fs::create_directory_symlink(root + "/cat", root + "/kitten");
    CHECK_THROWS_WITH(data::list_image_folder(root, false),
                      Contains("links/kitten and " + root + "/cat are the same directory"));
  }
  SECTION("a link to a folder elsewhere is followed") {
    folder_flat(dir.file("elsewhere") + "/2.png", 8, 8, 3, {0, 0, 0});
    fs::create_directory_symlink(dir.file("elsewhere"), root + "/dog");
    fs::create_symlink(root + "/cat/1.png", root + "/cat/0.png");
    const auto l = data::list_image_folder(root, false);
    CHECK(folder_names(l) == std::vector<std::string>{"cat/0.png", "cat/1.png", "dog/2.png"});
  }
  SECTION("a broken link is named") {
    fs::create_symlink(root + "/nowhere.png", root + "/cat/broken.png");
    CHECK_THROWS_WITH(data::list_image_folder(root, false),
                      Contains("cat/broken.png: cannot inspect"));
  }
}

TEST_CASE("decode: channels, centre crop, sizes and bad files", "[data][image_folder]") {
  TempDir dir;
  std::vector<std::uint8_t> out(3 * 128 * 128, 0);
  SECTION("grey to RGB replicates, RGB to grey by luminance, alpha dropped") {
    folder_flat(dir.file("grey.png"), 32, 32, 1, {77});
    auto info = data::decode_square_image(dir.file("grey.png"), 32, 3, out.data());
    CHECK(info.problem.empty());
    CHECK(info.channels == 1);
    CHECK((out[0] == 77 && out[32 * 32] == 77 && out[2 * 32 * 32] == 77));
    folder_flat(dir.file("red.png"), 32, 32, 4, {255, 0, 0, 10});
    info = data::decode_square_image(dir.file("red.png"), 32, 1, out.data());
    CHECK(info.channels == 4);
    CHECK(int(out[0]) == (255 * 77) >> 8);  // stb's luminance: (77 R + 150 G + 29 B) / 256
    info = data::decode_square_image(dir.file("red.png"), 32, 3, out.data());
    CHECK((out[0] == 255 && out[32 * 32] == 0 && out[2 * 32 * 32] == 0));  // alpha 10 ignored
  }
  SECTION("a wide image keeps its centre square") {
    // 48 x 32: 8 red columns, 32 green, 8 blue; the centre square is all green.
    folder_write_image(dir.file("wide.png"), 48, 32, 3, [](int x, int, int k) {
      const int part = x < 8 ? 0 : x < 40 ? 1 : 2;
      return k == part ? 200 : 0;
    });
    const auto info = data::decode_square_image(dir.file("wide.png"), 32, 3, out.data());
    CHECK(info.width == 48);
    CHECK_FALSE(info.upscaled);
    const auto plane = std::size_t(32 * 32);
    CHECK(std::all_of(out.begin(), out.begin() + plane, [](auto v) { return v == 0; }));
    CHECK(
        std::all_of(out.begin() + plane, out.begin() + 2 * plane, [](auto v) { return v == 200; }));
    CHECK(std::all_of(out.begin() + 2 * plane, out.begin() + 3 * plane,
                      [](auto v) { return v == 0; }));
  }
  SECTION("every target size; smaller images are upscaled") {
    // A vertical ramp, so resizing has something to do; a flat colour stays flat.
    folder_write_image(dir.file("ramp.jpg"), 100, 70, 3,
                       [](int, int y, int k) { return k == 0 ? y * 3 : 90; });
    for (int size : {32, 64, 128}) {
      const auto info = data::decode_square_image(dir.file("ramp.jpg"), size, 3, out.data());
      CHECK(info.problem.empty());
      CHECK(info.upscaled == (size > 70));
      const auto plane = std::size_t(size) * std::size_t(size);
      // Red grows from top to bottom, green stays about 90 (JPEG is lossy).
      CHECK(out[0] < out[plane - 1]);
      CHECK(std::abs(int(out[plane + plane / 2]) - 90) <= 8);
    }
  }
  SECTION("an undecodable or empty image is a problem, an unreadable one an error") {
    folder_text(dir.file("fake.png"), "this is text, not a PNG");
    auto info = data::decode_square_image(dir.file("fake.png"), 32, 3, out.data());
    CHECK_THAT(info.problem, Contains("not a readable image (stb_image:"));
    folder_text(dir.file("empty.jpg"), "");
    info = data::decode_square_image(dir.file("empty.jpg"), 32, 3, out.data());
    CHECK_THAT(info.problem, Contains("the file is empty"));
    CHECK_THROWS_WITH(data::decode_square_image(dir.file("gone.png"), 32, 3, out.data()),
                      Contains("gone.png: cannot read the image (No such file"));
    if (::geteuid() != 0) {  // root reads any file
      folder_flat(dir.file("locked.png"), 8, 8, 3, {0, 0, 0});
      fs::permissions(dir.file("locked.png"), fs::perms::none);
      CHECK_THROWS_WITH(data::decode_square_image(dir.file("locked.png"), 32, 3, out.data()),
                        Contains("locked.png: cannot read the image (Permission denied"));
    }
  }
}

TEST_CASE("prepare --dataset folder writes the dataset schema, in chunks",
          "[data][image_folder][prepare]") {
  TempDir dir;
  const auto root = dir.file("shapes");
  // 2 parties; party p, image i: a flat 32 x 32 image of colour (i % 256, i / 256, 40 p + 1),
  // in class folder "c<i % 3>" (party 1 lacks class c2). More than one chunk of rows.
  const int n0 = static_cast<int>(data::kFolderChunk) + 37, n1 = 30;
  for (int p = 0; p < 2; ++p)
    for (int i = 0; i < (p == 0 ? n0 : n1); ++i) {
      const int cls = p == 0 ? i % 3 : i % 2;
      char name[32];
      std::snprintf(name, sizeof name, "/c%d/%04d.png", cls, i);
      folder_flat(root + "/party_" + std::to_string(p) + name, 32, 32, 3,
                  {i % 256, i / 256, 40 * p + 1});
    }
  folder_flat(root + "/party_1/c0/grey_big.png", 80, 60, 1, {50});
  folder_flat(root + "/party_1/c1/small.png", 16, 16, 3, {9, 9, 9});

  auto config = folder_config(root, dir.file("out.h5"));
  config.partition.method = data::PartitionMethod::Folders;
  const auto r = data::prepare_image_folder(config);
  const std::int64_t n = n0 + n1 + 2;
  CHECK(r.result.samples == n);
  CHECK(r.stats.written == n);
  CHECK(r.stats.grey == 1);
  CHECK(r.stats.non_square == 1);
  CHECK(r.stats.upscaled == 1);
  CHECK(r.stats.min_side == 16);
  CHECK(r.stats.max_side == 60);
  CHECK(r.class_names == std::vector<std::string>{"c0", "c1", "c2"});
  CHECK(r.party_names == std::vector<std::string>{"party_0", "party_1"});

  const auto info = data::read_dataset_info(config.out);
  CHECK(info.size == n);
  CHECK(info.image_shape == std::vector<std::int64_t>{3, 32, 32});
  CHECK(info.num_classes == 3);
  CHECK(info.num_parties == 2);
  data::check_partition(config.out);
  h5::File f(config.out, h5::File::Mode::Read);
  CHECK(f.attr_strings("/", "class_names") == r.class_names);
  CHECK(f.attr_strings("/parties", "names") == r.party_names);
  CHECK(f.attr_string("/parties", "method") == "folders");
  CHECK(f.attr_string("/", "name") == "shapes");
  const auto p0 = data::read_party_indices(config.out, 0, n);
  const auto p1 = data::read_party_indices(config.out, 1, n);
  CHECK(p0.size() == std::size_t(n0));
  CHECK(p1.size() == std::size_t(n1 + 2));
  CHECK((p0.front() == 0 && p0.back() == n0 - 1 && p1.front() == n0));
  // Rows in path order: party 0's class c0 first (i = 0, 3, 6, ...), across the chunk boundary.
  const auto images = f.read("/images");
  const auto labels = f.read("/labels");
  std::int64_t row = 0;
  for (int cls = 0; cls < 3; ++cls)
    for (int i = cls; i < n0; i += 3, ++row) {
      INFO("row " << row << " image " << i);
      REQUIRE(images[row][0][5][7].item<int>() == i % 256);
      REQUIRE(images[row][1][31][0].item<int>() == i / 256);
      REQUIRE(images[row][2][0][31].item<int>() == 1);
      REQUIRE(labels[row].item<std::int64_t>() == cls);
    }
  CHECK(torch::equal(f.read("/parties/1/class_counts"), torch::tensor({16, 16, 0}, torch::kInt64)));
  // The grey 80 x 60 image (after party 1's 15 numbered c0 images): replicated, still flat.
  const auto grey = images[row + 15];
  CHECK(grey.min().item<int>() == 50);
  CHECK(grey.max().item<int>() == 50);
}

TEST_CASE("prepare --dataset folder: drawn partitions, unlabelled, grey, --classes",
          "[data][image_folder][prepare]") {
  TempDir dir;
  const auto root = dir.file("set");
  for (int i = 0; i < 12; ++i)
    folder_flat(root + "/" + (i % 2 ? "b" : "a") + "/" + std::to_string(10 + i) + ".jpg", 40, 40, 3,
                {200, 100, 0});
  SECTION("dirichlet over the class folders, grey 64 px") {
    auto config = folder_config(root, dir.file("d.h5"));
    config.image_size = 64;
    config.channels = 1;
    config.partition.method = data::PartitionMethod::Dirichlet;
    config.partition.parties = 3;
    config.partition.seed = 5;
    const auto r = data::prepare_image_folder(config);
    CHECK(r.result.parties.size() == 3);
    CHECK(r.stats.upscaled == 12);
    const auto info = data::read_dataset_info(config.out);
    CHECK(info.image_shape == std::vector<std::int64_t>{1, 64, 64});
    CHECK(info.num_classes == 2);
    data::check_partition(config.out);
    h5::File f(config.out, h5::File::Mode::Read);
    CHECK_FALSE(f.has_attr("/parties", "names"));
  }
  SECTION("--classes keeps class ids") {
    auto config = folder_config(root, dir.file("c.h5"));
    config.classes = {1};
    const auto r = data::prepare_image_folder(config);
    CHECK(r.result.samples == 6);
    h5::File f(config.out, h5::File::Mode::Read);
    CHECK(f.read("/labels").eq(1).all().item<bool>());
    CHECK(f.attr_int("/", "num_classes") == 2);
    CHECK(f.attr_string("/", "classes") == "1");
    config.classes = {2};
    config.force = true;
    CHECK_THROWS_WITH(data::prepare_image_folder(config),
                      Contains("--classes: unknown class id 2"));
  }
  SECTION("unlabelled: one class, no class names") {
    const auto flat = dir.file("flat");
    folder_flat(flat + "/1.png", 32, 32, 3, {1, 1, 1});
    folder_flat(flat + "/2.png", 32, 32, 3, {2, 2, 2});
    auto config = folder_config(flat, dir.file("u.h5"));
    data::prepare_image_folder(config);
    h5::File f(config.out, h5::File::Mode::Read);
    CHECK(f.attr_int("/", "num_classes") == 1);
    CHECK_FALSE(f.has_attr("/", "class_names"));
    CHECK(f.read("/labels").eq(0).all().item<bool>());
  }
  SECTION("--partition folders is refused for other datasets") {
    data::PrepareConfig config;
    config.dataset = data::DatasetSource::Hdf5;
    config.source = dir.file("whatever.h5");
    config.out = dir.file("x.h5");
    config.partition.method = data::PartitionMethod::Folders;
    CHECK_THROWS_WITH(data::run_prepare(config),
                      Contains("--partition folders: only with --dataset folder"));
  }
}

TEST_CASE("prepare --dataset folder: a bad image stops it, or is skipped with a count",
          "[data][image_folder][prepare]") {
  TempDir dir;
  const auto root = dir.file("set");
  for (int i = 0; i < 5; ++i)
    folder_flat(root + "/p0/" + std::to_string(i) + ".png", 32, 32, 3, {i, i, i});
  folder_flat(root + "/p1/0.png", 32, 32, 3, {7, 7, 7});
  folder_text(root + "/p0/2b.png", "truncated");
  auto config = folder_config(root, dir.file("out.h5"));
  config.partition.method = data::PartitionMethod::Folders;
  CHECK_THROWS_WITH(
      data::prepare_image_folder(config),
      Contains("p0/2b.png: not a readable image (stb_image:") && Contains("--skip-bad-images"));
  CHECK_FALSE(fs::exists(config.out));  // nothing written, no temporary left
  CHECK(std::distance(fs::directory_iterator(dir.path()), fs::directory_iterator()) == 1);

  config.skip_bad_images = true;
  const auto r = data::prepare_image_folder(config);
  CHECK(r.stats.bad == 1);
  CHECK(r.stats.bad_examples == std::vector<std::string>{root + "/p0/2b.png"});
  CHECK(r.result.samples == 6);
  h5::File f(config.out, h5::File::Mode::Read);
  CHECK(f.shape("/images") == std::vector<std::int64_t>{6, 3, 32, 32});
  // Rows: 0, 1, 2, 3, 4 of p0 (2b.png left out), then p1.
  CHECK(f.read("/images").select(2, 0).select(2, 0).select(1, 0).equal(
      torch::tensor({0, 1, 2, 3, 4, 7}, torch::kUInt8)));

  // A party whose every image is bad is an error even with --skip-bad-images.
  fs::remove(root + "/p1/0.png");
  folder_text(root + "/p1/0.png", "not a png either");
  config.force = true;
  CHECK_THROWS_WITH(data::prepare_image_folder(config),
                    Contains("set/p1: party folder holds no images that could be decoded"));
}
