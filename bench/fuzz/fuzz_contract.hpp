#pragma once
// The contract every fuzz target holds a reader to: an input either loads, or throws
// tidemark's error type with a message that names the input; anything else is a bug.
// A sanitizer report, a crash, a leak or a hang is caught by libFuzzer itself; an
// exception of another type, or a broken invariant, ends here in abort() with the reason
// on stderr, which libFuzzer also records as a crash (with the input that caused it).
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>
#include <string_view>
#include <typeinfo>

#include "tidemark/core/error.hpp"

namespace tidemark::fuzz {

[[noreturn]] inline void bug(std::string_view what) {
  std::fprintf(stderr, "\ntidemark fuzz: contract broken: %.*s\n", static_cast<int>(what.size()),
               what.data());
  std::abort();
}

// Runs `load`. Returns true when it loaded, false when it threw `Expected` whose message
// starts with `prefix` (readers name the file, parsers the quantity). Any other exception
// is a bug.
template <typename Expected, typename Load>
bool loads(Load&& load, std::string_view prefix) {
  try {
    load();
    return true;
  } catch (const Expected& e) {
    const std::string_view message = e.what();
    if (message.substr(0, prefix.size()) != prefix) {
      bug(std::string("error message does not start with '") + std::string(prefix) + "': " +
          std::string(message));
    }
    return false;
  } catch (const std::exception& e) {
    bug(std::string("unexpected ") + typeid(e).name() + ": " + e.what());
  } catch (...) {
    bug("unexpected exception of a type not derived from std::exception");
  }
}

// What a reader loaded, written and read back, must be written the same again: the writer
// only produces what the reader accepts, and nothing the reader kept is lost on the way.
template <typename Value, typename Write, typename Read>
void round_trips(const Value& loaded, Write&& write, Read&& read) {
  const std::string once = write(loaded);
  std::string twice;
  const bool reread = loads<FormatError>([&] { twice = write(read(once, "round-trip")); }, "round-trip");
  if (!reread) bug("the reader refuses what the writer wrote from a loaded value:\n" + once);
  if (twice != once) bug("written, read and written again differs:\n" + once + "\n---\n" + twice);
}

}  // namespace tidemark::fuzz
