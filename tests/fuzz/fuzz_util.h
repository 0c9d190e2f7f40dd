// Shared by the libFuzzer targets: the input as a file, and what counts as a finding.
#ifndef BILEVEL_TESTS_FUZZ_FUZZ_UTIL_H_
#define BILEVEL_TESTS_FUZZ_FUZZ_UTIL_H_

#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

namespace bilevel::fuzz {

// Reports a finding and aborts, which libFuzzer records as a crash with the input.
[[noreturn]] inline void Finding(const std::string& what) {
  std::fprintf(stderr, "FUZZ FINDING: %s\n", what.c_str());
  std::abort();
}

inline void Expect(bool ok, const std::string& what) {
  if (!ok) Finding(what);
}

// A rejection must be one line that starts with `prefix` (the input's name).
inline void ExpectClearMessage(const char* message, const std::string& prefix) {
  const std::string m = message ? message : "";
  Expect(!m.empty(), "an exception without a message");
  Expect(m.find('\n') == std::string::npos, "a message of several lines: " + m);
  Expect(m.rfind(prefix, 0) == 0, "a message that does not start with '" + prefix + "': " + m);
}

// The input as a file the readers can open by name: an in-memory file (memfd), rewritten for
// each input and opened through /proc/self/fd.
class InputFile {
 public:
  InputFile() {
    fd_ = memfd_create("bilevel-fuzz", 0);
    if (fd_ < 0) {
      std::perror("memfd_create");
      std::abort();
    }
    path_ = "/proc/self/fd/" + std::to_string(fd_);
  }
  void Set(const std::uint8_t* data, std::size_t size) {
    if (ftruncate(fd_, 0) != 0) std::abort();
    std::size_t done = 0;
    while (done < size) {
      const ssize_t n = pwrite(fd_, data + done, size - done, static_cast<off_t>(done));
      if (n <= 0) std::abort();
      done += static_cast<std::size_t>(n);
    }
  }
  const std::string& path() const { return path_; }

 private:
  int fd_ = -1;
  std::string path_;
};

}  // namespace bilevel::fuzz

#endif  // BILEVEL_TESTS_FUZZ_FUZZ_UTIL_H_
