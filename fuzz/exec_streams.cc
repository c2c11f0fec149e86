// What exec reads from the client besides the command's own bytes: the
// resize stream's JSON messages, fed in pieces (agent/streams/terminal_size.h),
// and the /exec and /attach queries' options (agent/streams/exec_endpoint.h,
// attach_endpoint.h). Splitting the input anywhere must give the sizes the
// whole gives; attach must read the streams exactly as exec does.

#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "agent/streams/attach_endpoint.h"
#include "agent/streams/exec_endpoint.h"
#include "agent/streams/exec_status.h"
#include "agent/streams/terminal_size.h"

using kernelet::agent::streams::ResizeDecoder;
using kernelet::agent::streams::TerminalSize;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  ResizeDecoder whole;
  auto all = whole.feed(in);
  if (!all && !whole.failed()) {
    std::abort();  // an error leaves the decoder failed
  }
  if (size > 0) {
    ResizeDecoder pieces;
    size_t cut = data[0] % size;
    std::vector<TerminalSize> got;
    bool ok = true;
    for (std::string_view part : {in.substr(0, cut), in.substr(cut)}) {
      auto r = pieces.feed(part);
      if (!r) {
        ok = false;
        break;
      }
      got.insert(got.end(), r->begin(), r->end());
    }
    // Only a complete, valid stream must agree: a cut can move an error
    // (an over-long pending message) but not change what decodes.
    if (all && ok && got != *all) {
      std::abort();
    }
  }
  (void)kernelet::agent::streams::goJsonString(in);  // any bytes: no crash, no over-read
  auto q = kernelet::agent::server::Query::parse(in);
  if (q) {
    kernelet::agent::server::Request req{.params = {"ns", "pod", "c"}, .query = *q};
    auto o = kernelet::agent::streams::execOptions(req);
    if (o && (o->command.empty() || (o->tty && o->use_stderr))) {
      std::abort();
    }
    auto a = kernelet::agent::streams::attachOptions(req);
    if (a && ((a->tty && a->use_stderr) || !(a->use_stdin || a->use_stdout || a->use_stderr))) {
      std::abort();
    }
    if (o && (!a || a->use_stdin != o->use_stdin || a->use_stdout != o->use_stdout ||
              a->use_stderr != o->use_stderr || a->tty != o->tty)) {
      std::abort();  // an exec's streams parse, so the same attach's must, alike
    }
  }
  return 0;
}
