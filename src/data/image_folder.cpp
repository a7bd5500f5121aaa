// Walking an image folder tree (see include/fedgan/data/image_folder.hpp).
#include "fedgan/data/image_folder.hpp"

#include <dirent.h>
#include <sys/stat.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <map>
#include <memory>
#include <utility>

#include "fedgan/core/error.hpp"

namespace fedgan::data {
namespace {

constexpr std::size_t kSkippedExamples = 5;

struct DirEntry {
  std::string name;
  std::string path;
  bool is_dir = false;
};

// One party folder's (or the root's) images: per class folder, or directly in it.
struct GroupScan {
  std::string dir;
  std::vector<std::pair<std::string, std::vector<std::string>>> classes;  // sorted by name
  std::vector<std::string> images;                                        // unlabelled
  bool labelled() const { return !classes.empty(); }
  bool empty() const {
    return images.empty() && std::all_of(classes.begin(), classes.end(),
                                         [](const auto& c) { return c.second.empty(); });
  }
};

std::string join(const std::string& dir, const std::string& name) {
  return !dir.empty() && dir.back() == '/' ? dir + name : dir + "/" + name;
}

class Walker {
 public:
  explicit Walker(ImageListing& out) : m_out(out) {}

  // The entries of `dir` in name order, hidden ones and non-image files counted as skipped.
  // `dir` is registered as visited first: a directory met twice is an error.
  void list(const std::string& dir, std::vector<DirEntry>& dirs, std::vector<std::string>& images) {
    enter(dir);
    std::unique_ptr<DIR, int (*)(DIR*)> handle(::opendir(dir.c_str()), ::closedir);
    if (!handle) throw Error(dir + ": cannot read the directory (" + std::strerror(errno) + ")");
    std::vector<DirEntry> entries;
    errno = 0;
    while (const dirent* e = ::readdir(handle.get())) {
      const std::string name = e->d_name;
      if (name == "." || name == "..") continue;
      DirEntry entry{name, join(dir, name), false};
      if (name[0] == '.') {
        skip(entry.path);
        continue;
      }
      // d_type spares a stat per file; links and file systems without d_type need one.
      if (e->d_type == DT_DIR) {
        entry.is_dir = true;
      } else if (e->d_type != DT_REG) {
        struct stat st {};
        if (::stat(entry.path.c_str(), &st) != 0)
          throw Error(entry.path + ": cannot inspect (" + std::strerror(errno) +
                      "; a broken symbolic link?)");
        entry.is_dir = S_ISDIR(st.st_mode);
        if (!entry.is_dir && !S_ISREG(st.st_mode)) {
          skip(entry.path);  // fifo, socket, device
          continue;
        }
      }
      entries.push_back(std::move(entry));
    }
    std::sort(entries.begin(), entries.end(),
              [](const DirEntry& a, const DirEntry& b) { return a.name < b.name; });
    for (auto& e : entries) {
      if (e.is_dir)
        dirs.push_back(std::move(e));
      else if (has_image_extension(e.name))
        images.push_back(std::move(e.path));
      else
        skip(e.path);
    }
  }

  // Every image below `dir`, at any depth, in walk order (sorted at each level).
  void collect(const std::string& dir, std::vector<std::string>& out) {
    std::vector<DirEntry> dirs;
    std::vector<std::string> images;
    list(dir, dirs, images);
    // Files of a folder first, then its subfolders: the order is fixed by the names alone.
    for (auto& p : images) out.push_back(std::move(p));
    for (const auto& d : dirs) collect(d.path, out);
  }

  // A party folder (or the root): class folders, or images directly in it, never both.
  GroupScan scan_group(const std::string& dir) {
    GroupScan scan;
    scan.dir = dir;
    std::vector<DirEntry> dirs;
    list(dir, dirs, scan.images);
    if (!dirs.empty() && !scan.images.empty()) {
      std::vector<std::string> names;
      for (const auto& d : dirs) names.push_back(d.name + "/");
      throw Error(
          dir + ": holds both images (" +
          name_examples(file_names(scan.images), static_cast<std::int64_t>(scan.images.size())) +
          ") and folders (" + name_examples(names, static_cast<std::int64_t>(names.size())) +
          "); put every image in a class folder (" + join(dir, "<class>/") +
          ") for labels, or no folders at all for unlabelled images");
    }
    for (const auto& d : dirs) {
      scan.classes.emplace_back(d.name, std::vector<std::string>{});
      collect(d.path, scan.classes.back().second);
    }
    return scan;
  }

 private:
  static std::vector<std::string> file_names(const std::vector<std::string>& paths) {
    std::vector<std::string> names;
    for (std::size_t i = 0; i < std::min<std::size_t>(paths.size(), 3); ++i)
      names.push_back(paths[i].substr(paths[i].find_last_of('/') + 1));
    return names;
  }

  void enter(const std::string& dir) {
    struct stat st {};
    if (::stat(dir.c_str(), &st) != 0)
      throw Error(dir + ": cannot inspect (" + std::strerror(errno) + ")");
    const auto id = std::make_pair(st.st_dev, st.st_ino);
    const auto [it, fresh] = m_visited.emplace(id, dir);
    if (fresh) return;
    const std::string& first = it->second;
    if (dir.rfind(first + "/", 0) == 0)
      throw Error(dir + ": a symbolic link loop (it leads back to " + first +
                  ", a folder above it); remove the link");
    throw Error(dir + " and " + first +
                " are the same directory (a symbolic link?); its images would be counted twice: "
                "remove one of them");
  }

  void skip(const std::string& path) {
    ++m_out.skipped;
    if (m_out.skipped_examples.size() < kSkippedExamples) m_out.skipped_examples.push_back(path);
  }

  ImageListing& m_out;
  std::map<std::pair<dev_t, ino_t>, std::string> m_visited;
};

}  // namespace

bool has_image_extension(const std::string& name) {
  static const char* const kExtensions[] = {"png", "jpg", "jpeg", "bmp", "gif",
                                            "tga", "pgm", "ppm",  "pnm"};
  const auto dot = name.find_last_of('.');
  if (dot == std::string::npos || dot == 0) return false;
  std::string ext = name.substr(dot + 1);
  std::transform(ext.begin(), ext.end(), ext.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return std::any_of(std::begin(kExtensions), std::end(kExtensions),
                     [&](const char* e) { return ext == e; });
}

std::string name_examples(const std::vector<std::string>& names, std::int64_t total,
                          std::size_t limit) {
  std::string out;
  const std::size_t shown = std::min(limit, names.size());
  for (std::size_t i = 0; i < shown; ++i) out += (i ? ", " : "") + names[i];
  if (total > static_cast<std::int64_t>(shown))
    out += " and " + std::to_string(total - static_cast<std::int64_t>(shown)) + " more";
  return out;
}

ImageListing list_image_folder(const std::string& source, bool party_folders) {
  // "DIR/" and "DIR" name the same tree; the walk's paths (and its loop check) use "DIR".
  std::string root = source;
  while (root.size() > 1 && root.back() == '/') root.pop_back();
  struct stat st {};
  require(!root.empty(), "--dataset folder needs --source DIR (a directory of images)");
  require(::stat(root.c_str(), &st) == 0,
          root + ": no such directory (--source; " + std::strerror(errno) + ")");
  require(S_ISDIR(st.st_mode), root +
                                   ": not a directory (--dataset folder reads a directory "
                                   "of images)");
  ImageListing out;
  out.root = root;
  Walker walker(out);
  std::vector<GroupScan> groups;
  if (party_folders) {
    std::vector<DirEntry> dirs;
    std::vector<std::string> images;
    walker.list(root, dirs, images);
    if (!images.empty())
      throw Error(root + ": holds images directly (" +
                  images.front().substr(images.front().find_last_of('/') + 1) +
                  (images.size() > 1 ? ", ..." : "") +
                  "); with --partition folders each party's images go in " +
                  join(root, "<party>/"));
    require(!dirs.empty(), root + ": no party folders; --partition folders needs " +
                               join(root, "<party>/[<class>/]*.png"));
    for (const auto& d : dirs) {
      groups.push_back(walker.scan_group(d.path));
      out.party_names.push_back(d.name);
      // An empty party cannot train: refused rather than dropped, so the party ids the user
      // sees in the folder names stay those of the file.
      require(!groups.back().empty(),
              d.path + ": party folder holds no images (" +
                  (groups.back().labelled() ? "its class folders are empty"
                                            : "expected images or class folders") +
                  "); remove the folder or add images");
    }
    for (const auto& g : groups)
      require(g.labelled() == groups.front().labelled(),
              (g.labelled() ? g.dir : groups.front().dir) + " has class folders but " +
                  (g.labelled() ? groups.front().dir : g.dir) +
                  " holds its images directly; every party needs the same layout (class folders "
                  "for labels, or none)");
  } else {
    groups.push_back(walker.scan_group(root));
  }

  if (groups.front().labelled()) {
    for (const auto& g : groups)
      for (const auto& c : g.classes) out.class_names.push_back(c.first);
    std::sort(out.class_names.begin(), out.class_names.end());
    out.class_names.erase(std::unique(out.class_names.begin(), out.class_names.end()),
                          out.class_names.end());
  }
  for (std::size_t k = 0; k < groups.size(); ++k) {
    auto& g = groups[k];
    if (!g.labelled()) {
      for (auto& p : g.images) out.files.push_back({std::move(p), static_cast<std::int32_t>(k), 0});
      continue;
    }
    // g.classes is in name order, as is the union: labels ascend with the class name.
    for (auto& [name, paths] : g.classes) {
      const auto label = std::lower_bound(out.class_names.begin(), out.class_names.end(), name) -
                         out.class_names.begin();
      for (auto& p : paths)
        out.files.push_back(
            {std::move(p), static_cast<std::int32_t>(k), static_cast<std::int32_t>(label)});
    }
    g = GroupScan{};  // the paths moved out; free the rest
  }
  require(!out.files.empty(),
          root + ": no images found (looked for " + "png, jpg, jpeg, bmp, gif, tga, pgm, ppm, pnm" +
              (out.skipped ? "; skipped " + std::to_string(out.skipped) + " other files such as " +
                                 name_examples(out.skipped_examples, out.skipped)
                           : std::string()) +
              ")");
  return out;
}

}  // namespace fedgan::data
