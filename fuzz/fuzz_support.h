#pragma once
// What several fuzz targets share: splitting one input into the parts of a
// multi-file format, and a scratch directory that nothing outside of can be
// written by the target (for parsers that only take a path, and for unpacking).

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace kernelet::fuzz {

// The parts of `data` between separator lines "\n#--#\n" (seeds are text files
// a person can read; the fuzzer learns the separator from the comparison).
// Always `count` parts: missing ones are empty, extra text stays in the last.
std::vector<std::string> splitParts(const uint8_t* data, size_t size, size_t count);

// Confines this process' writes, then makes a scratch directory: as root, a
// private mount namespace where every mount is read-only except the working
// directory (libFuzzer's corpus and crash files) and a fresh tmpfs on its
// `scratch` subdirectory (which the kernel drops with the namespace, even after
// a crash; not on /tmp, which may hold the checkout itself); as another
// user, a user namespace with the same mounts. Aborts if it cannot: a target
// that writes files must not run unconfined on a developer's machine.
// Call once, from LLVMFuzzerInitialize. Returns the scratch directory.
std::string confineToScratch();

// Moves this process into a network namespace of its own with only the
// loopback interface up: a target whose inputs name hosts (a token realm, a
// redirect) can then reach nothing but its own loopback server. Aborts if it
// cannot. Call once, from LLVMFuzzerInitialize, before starting a server.
void confineToLoopback();

// Removes everything under `dir`, keeping `dir`.
void emptyDir(const std::string& dir);

// Writes `content` to `path` (created or truncated); aborts on failure.
void writeFileOrDie(const std::string& path, std::string_view content);

}  // namespace kernelet::fuzz
