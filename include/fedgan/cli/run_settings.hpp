// A run's settings as text: the config.toml a run writes (reusable with --config) and the check
// that `--resume` continues the same run (same data, seed, parties, model, ...) as the one
// whose checkpoint it reads.
#pragma once

#include <CLI/CLI.hpp>
#include <map>
#include <string>
#include <vector>

namespace fedgan::cli {

// "[section]" and every option of `sub` as key=value (defaults included), without the options
// that are actions rather than settings (resume, force, allow-change): reusing the file with
// another --out must start a fresh run there.
std::string run_config_text(const std::string& section, const CLI::App& sub);

// key -> value (quotes removed) of the key=value lines of a config text; [sections] and
// comments skipped.
std::map<std::string, std::string> config_values(const std::string& text);

// The settings that make a run what it is: a resumed run must keep them (unless --allow-change).
const std::vector<std::string>& run_defining_settings();

// fedgan::Error naming `checkpoint`, each differing setting and both values when `current`
// differs from `saved` (the checkpoint's config text) in a run-defining setting not listed in
// `allowed` ("all" allows every change). File settings (data, init) that name the same file
// through another path are equal. An empty `saved` (a checkpoint without its config) passes.
void check_resume_settings(const std::string& checkpoint, const std::string& saved,
                           const std::string& current, const std::vector<std::string>& allowed);

}  // namespace fedgan::cli
