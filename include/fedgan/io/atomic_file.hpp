// Atomic writes: write to a temporary file beside the target, then rename over it, so a
// reader (or a crash) never sees a half-written checkpoint, dataset or image.
#pragma once

#include <functional>
#include <string>

namespace fedgan::io {

// Calls `write(temp_path)`, fsyncs the result and renames it to `path`. On any exception the
// temporary file is removed and the target is left untouched.
void write_atomically(const std::string& path, const std::function<void(const std::string&)>& write);

// Writes text atomically.
void write_text_atomically(const std::string& path, const std::string& text);

// Removes a file or a directory tree (rm -rf); true when nothing is left. Uses POSIX nftw, not
// std::filesystem::remove_all: linked with PyTorch 2.x wheels (their libraries carry a
// libstdc++ of their own), remove_all is suspected of the segfaults seen on the GPU machine.
bool remove_tree(const std::string& path);

}  // namespace fedgan::io
