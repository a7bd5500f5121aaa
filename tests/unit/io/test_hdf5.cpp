// The h5 wrapper: tensors of every supported type round-trip, row selections come back in the
// caller's order, attributes and groups work, and errors name the file.
#include <catch2/catch.hpp>

#include "fedgan/core/error.hpp"
#include "fedgan/io/atomic_file.hpp"
#include "fedgan/io/hdf5.hpp"

#include <filesystem>
#include <fstream>
#include "temp_dir.hpp"

using namespace fedgan;
using Catch::Matchers::Contains;
using fedgan::testing::TempDir;

TEST_CASE("h5::File round-trips tensors, rows and attributes", "[io][hdf5]") {
  TempDir dir;
  const auto path = dir.file("t.h5");
  const auto f32 = torch::randn({5, 3});
  const auto f64 = torch::randn({4}, torch::kFloat64);
  const auto i64 = torch::arange(12, torch::kInt64).view({3, 4}) - 5;
  const auto u8 = torch::arange(200, torch::kInt64).to(torch::kUInt8).view({50, 2, 2});
  {
    h5::File f(path, h5::File::Mode::Create);
    f.write("/a/f32", f32);
    f.write("/a/b/f64", f64);
    f.write("/i64", i64);
    f.write("/u8", u8, /*compress=*/true);
    f.set_attr("/", "name", std::string("round trip"));
    f.set_attr("/a", "count", std::int64_t{-7});
    f.set_attr("/a/f32", "scale", 0.25);
    f.close();
  }
  h5::File f(path, h5::File::Mode::Read);
  CHECK(torch::equal(f.read("/a/f32"), f32));
  CHECK(torch::equal(f.read("/a/b/f64"), f64));
  CHECK(torch::equal(f.read("/i64"), i64));
  CHECK(torch::equal(f.read("/u8"), u8));
  CHECK(f.dtype("/u8") == torch::kUInt8);
  CHECK(f.shape("/u8") == std::vector<std::int64_t>{50, 2, 2});
  CHECK(f.exists("/a/b/f64"));
  CHECK_FALSE(f.exists("/a/c/f64"));
  CHECK(f.children("/a") == std::vector<std::string>{"b", "f32"});
  CHECK(f.attr_string("/", "name") == "round trip");
  CHECK(f.attr_int("/a", "count") == -7);
  CHECK(f.attr_double("/a/f32", "scale") == 0.25);
  CHECK_FALSE(f.attr_int("/a", "missing").has_value());

  // Rows in any order, with repeats and runs, from a compressed dataset too.
  const std::vector<std::int64_t> rows = {49, 3, 4, 5, 0, 3, 17};
  const auto index = torch::tensor(rows, torch::kInt64);
  CHECK(torch::equal(f.read_rows("/u8", rows), u8.index_select(0, index)));
  CHECK(torch::equal(f.read_rows("/a/f32", {4, 0}), f32.index_select(0, torch::tensor({4, 0}))));
  CHECK(f.read_rows("/u8", {}).size(0) == 0);
  REQUIRE_THROWS_WITH(f.read_rows("/u8", {50}), Contains(path) && Contains("out of range"));
  REQUIRE_THROWS_WITH(f.read("/nothing"), Contains(path) && Contains("missing dataset /nothing"));
}

TEST_CASE("h5::File reads UTF-8 string attributes (as h5py writes them)", "[io][hdf5]") {
  TempDir dir;
  const auto path = dir.file("utf8.h5");
  {
    h5::File f(path, h5::File::Mode::Create);
    f.close();
  }
  {
    // What h5py does for f.attrs["architecture"] = "...": a variable-length UTF-8 string.
    const hid_t file = H5Fopen(path.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
    const hid_t type = H5Tcopy(H5T_C_S1);
    H5Tset_size(type, H5T_VARIABLE);
    H5Tset_cset(type, H5T_CSET_UTF8);
    const hid_t space = H5Screate(H5S_SCALAR);
    const hid_t attr = H5Acreate2(file, "architecture", type, space, H5P_DEFAULT, H5P_DEFAULT);
    const char* text = "dcgan gw=8 \u00e9";
    REQUIRE(H5Awrite(attr, type, &text) >= 0);
    H5Aclose(attr);
    H5Sclose(space);
    H5Tclose(type);
    H5Fclose(file);
  }
  h5::File f(path, h5::File::Mode::Read);
  CHECK(f.attr_string("/", "architecture") == "dcgan gw=8 \u00e9");
}

TEST_CASE("h5::File names the file when it cannot open it", "[io][hdf5]") {
  TempDir dir;
  REQUIRE_THROWS_WITH(h5::File(dir.file("none.h5"), h5::File::Mode::Read),
                      Contains("none.h5") && Contains("no such file"));
  {
    std::FILE* text = std::fopen(dir.file("text.h5").c_str(), "w");
    std::fputs("not hdf5", text);
    std::fclose(text);
  }
  REQUIRE_THROWS_WITH(h5::File(dir.file("text.h5"), h5::File::Mode::Read),
                      Contains("not an HDF5 file"));
  CHECK_FALSE(h5::is_hdf5(dir.file("text.h5")));
}

TEST_CASE("remove_tree removes a nested tree and nothing else", "[io]") {
  TempDir dir;
  const auto root = dir.file("tree");
  std::filesystem::create_directories(root + "/a/b");
  std::ofstream(root + "/a/b/x.txt") << "x";
  std::ofstream(root + "/top.txt") << "y";
  std::ofstream(dir.file("keep.txt")) << "z";
  CHECK(io::remove_tree(root));
  CHECK_FALSE(std::filesystem::exists(root));
  CHECK(std::filesystem::exists(dir.file("keep.txt")));
  CHECK(io::remove_tree(root));  // already gone: nothing to do
}

TEST_CASE("one format check for every fedgan file kind", "[io][hdf5]") {
  TempDir dir;
  const auto path = dir.file("f.h5"), bare = dir.file("bare.h5");
  {
    h5::File f(path, h5::File::Mode::Create);
    f.set_attr("/", "format", std::string("fedgan-evaluator-1"));
    h5::File b(bare, h5::File::Mode::Create);
    b.set_attr("/", "round", std::int64_t{3});
  }
  const h5::File f(path, h5::File::Mode::Read), b(bare, h5::File::Mode::Read);
  CHECK(h5::has_format(f, "fedgan-evaluator-1"));
  CHECK_FALSE(h5::has_format(f, "fedgan-checkpoint-1"));
  CHECK_FALSE(h5::has_format(b, "fedgan-checkpoint-1"));
  CHECK_NOTHROW(h5::require_format(f, "fedgan-evaluator-1", "evaluator"));
  CHECK_THROWS_WITH(h5::require_format(f, "fedgan-checkpoint-1", "checkpoint"),
                    Contains(path + ": not a fedgan checkpoint (attribute 'format' is "
                                    "'fedgan-evaluator-1', expected 'fedgan-checkpoint-1')"));
  CHECK_THROWS_WITH(h5::require_format(b, "fedgan-evaluator-1", "evaluator", "; make one"),
                    Contains("not a fedgan evaluator (attribute 'format' is missing, expected "
                             "'fedgan-evaluator-1'; make one)"));
}

TEST_CASE("h5::File fills a dataset by rows, shrinks it, and stores string arrays",
          "[io][hdf5]") {
  TempDir dir;
  const auto path = dir.file("rows.h5");
  const auto all = torch::arange(7 * 3 * 4, torch::kInt64).to(torch::kUInt8).view({7, 3, 2, 2});
  {
    h5::File f(path, h5::File::Mode::Create);
    f.create_rows("/g/images", torch::kUInt8, {9, 3, 2, 2}, /*compress=*/true);
    f.write_rows("/g/images", 0, all.slice(0, 0, 4));
    f.write_rows("/g/images", 4, all.slice(0, 4, 7));
    CHECK_THROWS_WITH(f.write_rows("/g/images", 8, all.slice(0, 0, 2)),
                      Contains("rows [8, 10) outside [0, 9)"));
    CHECK_THROWS_WITH(f.write_rows("/g/images", 0, torch::zeros({1, 3, 2, 3}, torch::kUInt8)),
                      Contains("another shape"));
    f.shrink_rows("/g/images", 7);
    f.set_attr("/", "names", std::vector<std::string>{"cat", "", "hippopotamus"});
    f.close();
  }
  h5::File f(path, h5::File::Mode::Read);
  CHECK(f.shape("/g/images") == std::vector<std::int64_t>{7, 3, 2, 2});
  CHECK(torch::equal(f.read("/g/images"), all));
  CHECK(torch::equal(f.read_rows("/g/images", {5, 1}), all.index_select(0, torch::tensor({5, 1}))));
  CHECK(f.attr_strings("/", "names") == std::vector<std::string>{"cat", "", "hippopotamus"});
  CHECK_FALSE(f.attr_strings("/", "missing").has_value());
}
