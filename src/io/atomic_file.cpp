// Temp file + fsync + rename, and whole-file reads (see include/fedgan/io/atomic_file.hpp).
#include "fedgan/io/atomic_file.hpp"

#include "fedgan/core/error.hpp"

#include <ftw.h>
#include <sys/stat.h>

#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>

namespace fedgan::io {

void write_atomically(const std::string& path,
                      const std::function<void(const std::string&)>& write) {
  namespace fs = std::filesystem;
  const fs::path target(path);
  const std::string temp =
      (target.parent_path() / ("." + target.filename().string() + ".tmp" +
                               std::to_string(::getpid())))
          .string();
  try {
    write(temp);
    // Data must reach the disk before the rename makes it visible.
    const int fd = ::open(temp.c_str(), O_RDONLY);
    if (fd >= 0) {
      ::fsync(fd);
      ::close(fd);
    }
    std::error_code ec;
    fs::rename(temp, target, ec);
    if (ec) throw Error(path + ": cannot move the finished file into place: " + ec.message());
  } catch (...) {
    std::error_code ignored;
    fs::remove(temp, ignored);
    throw;
  }
}

void write_text_atomically(const std::string& path, const std::string& text) {
  write_atomically(path, [&](const std::string& temp) {
    std::ofstream out(temp, std::ios::binary | std::ios::trunc);
    if (!out) throw Error(path + ": cannot write (is the directory writable?)");
    out << text;
    out.close();
    if (!out) throw Error(path + ": write failed (disk full?)");
  });
}

std::string read_file(const std::string& path, const std::string& what,
                      const std::string& expected) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec))
    throw Error(path + " (" + what + "): no such file" +
                (expected.empty() ? "" : " (expected " + expected + ")"));
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(path + " (" + what + "): cannot be read");
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

namespace {
int remove_entry(const char* path, const struct stat*, int, struct FTW*) {
  return ::remove(path) == 0 ? 0 : -1;
}
}  // namespace

bool remove_tree(const std::string& path) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) return true;  // nothing there
  // Depth first (children before their directory), without following symbolic links.
  ::nftw(path.c_str(), remove_entry, 16, FTW_DEPTH | FTW_PHYS);
  return ::lstat(path.c_str(), &st) != 0;
}

}  // namespace fedgan::io
