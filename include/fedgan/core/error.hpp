// fedgan::Error: the one exception type of fedgan; says where (file/field) and what was expected.
#pragma once

#include <stdexcept>
#include <string>

namespace fedgan {

// An error in user input or in the run. The message names the file or field at fault and
// what was expected. `collective()` is true when every rank is known to raise the same error
// (after Communicator::agree_ok), so the program may finalize MPI cleanly instead of aborting.
class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message, bool collective = false)
      : std::runtime_error(message), m_collective(collective) {}
  bool collective() const noexcept { return m_collective; }

 private:
  bool m_collective;
};

// An exception's message without the C++ backtrace LibTorch appends to its errors
// ("\nException raised from ... frame #0: ..."), which says nothing to a user.
inline std::string error_message(const std::exception& e) {
  std::string text = e.what();
  const auto trace = text.find("\nException raised from ");
  if (trace != std::string::npos) text.resize(trace);
  return text;
}

// Throws fedgan::Error with the message when the condition is false.
inline void require(bool condition, const std::string& message) {
  if (!condition) throw Error(message);
}

}  // namespace fedgan
