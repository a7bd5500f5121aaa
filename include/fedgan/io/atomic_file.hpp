// Whole files: atomic writes (write to a temporary file beside the target, then rename over it,
// so a reader or a crash never sees a half-written checkpoint, dataset or image), and reading a
// file whole.
#pragma once

#include <functional>
#include <string>

namespace fedgan::io {

// Calls `write(temp_path)`, fsyncs the result and renames it to `path`. On any exception the
// temporary file is removed and the target is left untouched.
void write_atomically(const std::string& path, const std::function<void(const std::string&)>& write);

// Writes text (or any bytes) atomically.
void write_text_atomically(const std::string& path, const std::string& text);

// The whole file as bytes. fedgan::Error "PATH (WHAT): no such file[ (expected EXPECTED)]" when
// it is not a regular file, "PATH (WHAT): cannot be read" when reading fails.
std::string read_file(const std::string& path, const std::string& what,
                      const std::string& expected = "");

// Removes a file or a directory tree (rm -rf); true when nothing is left. Uses POSIX nftw, not
// std::filesystem::remove_all: linked with PyTorch 2.x wheels (their libraries carry a
// libstdc++ of their own), remove_all is suspected of the segfaults seen on the GPU machine.
bool remove_tree(const std::string& path);

}  // namespace fedgan::io
