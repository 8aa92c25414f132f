#pragma once
// A fresh directory for one test, under the system's temporary directory.
#include <cstdlib>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <string_view>

namespace subrelay::test_support {

inline std::filesystem::path make_temp_dir(std::string_view prefix) {
    std::string tmpl = (std::filesystem::temp_directory_path() / (std::string(prefix) + "-XXXXXX")).string();
    if (::mkdtemp(tmpl.data()) == nullptr) throw std::runtime_error("mkdtemp " + tmpl + " failed");
    return tmpl;
}

}  // namespace subrelay::test_support
