// libFuzzer target: the config file of `bilevel solve --config FILE` (INI text), through
// ParseSolveConfigText, the same parser and checks as --config. Expected: a configuration, or a
// UsageError of one line naming the file.
#include <cstdint>
#include <exception>
#include <string>

#include "cli/option_parser.h"
#include "fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  try {
    const bilevel::cli::SolveConfig config = bilevel::cli::ParseSolveConfigText(text, "fuzz.ini");
    // What a run derives from a parsed configuration must work too.
    if (!config.help) bilevel::cli::ResolvedOptions(config);
  } catch (const bilevel::cli::UsageError& e) {
    const std::string m = e.what();
    bilevel::fuzz::ExpectClearMessage(e.what(), "");
    bilevel::fuzz::Expect(m.find("fuzz.ini") != std::string::npos || m.rfind("option --", 0) == 0,
                          "a config error that names neither the file nor an option: " + m);
  } catch (const std::exception& e) {
    bilevel::fuzz::Finding(std::string("an exception other than UsageError: ") + e.what());
  }
  return 0;
}
