// The pods' status files (ROOT/pods/UID/status.json, agent/status/pod_status.h):
// `kernelet pods` reads them, and a new agent reads the previous agent's back
// to keep adopted containers ready (agent/app/last_status.h). Whatever the
// file holds, reading it returns a status or an error, and a status read
// back writes and reads again.

#include "agent/status/pod_status.h"

#include <cstdint>
#include <string>

#include "agent/model/pod.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string text(reinterpret_cast<const char*>(data), size);
  auto read = kernelet::agent::parsePodJson(text, "/var/lib/kernelet/pods/u1/status.json");
  if (read) {
    kernelet::agent::Pod pod;
    pod.name = read->name;
    pod.namespace_ = read->namespace_;
    pod.uid = read->uid;
    std::string again = kernelet::agent::podJson(pod, read->status, read->created);
    if (!kernelet::agent::parsePodJson(again, "again")) {
      __builtin_trap();  // what podJson writes must read back
    }
  }
  return 0;
}
