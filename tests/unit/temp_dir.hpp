// A fresh temporary directory per test, removed at the end (data and io tests write files).
#pragma once

#include "fedgan/io/atomic_file.hpp"

#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <string>

namespace fedgan::testing {

class TempDir {
 public:
  TempDir() {
    static std::atomic<int> counter{0};
    m_path = std::filesystem::temp_directory_path() /
             ("fedgan_test_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
    io::remove_tree(m_path.string());
    std::filesystem::create_directories(m_path);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  ~TempDir() { io::remove_tree(m_path.string()); }
  std::string file(const std::string& name) const { return (m_path / name).string(); }
  std::string path() const { return m_path.string(); }

 private:
  std::filesystem::path m_path;
};

}  // namespace fedgan::testing
