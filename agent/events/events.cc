#include "agent/events/events.h"

#include <cstdio>

namespace kernelet::agent {

bool EventRecorder::record(const EventRecord& e) {
  timespec now{};
  ::clock_gettime(CLOCK_REALTIME, &now);
  std::string t = apiclient::formatTime(now);
  std::string key = e.involved_uid + "\n" + e.reason + "\n" + e.message;
  auto it = seen_.find(key);
  auto mono = std::chrono::steady_clock::now();
  std::string ns = e.involved_namespace.empty() ? "default" : e.involved_namespace;
  if (it != seen_.end() && mono - it->second.last < std::chrono::minutes(10)) {
    Seen& s = it->second;
    auto r = client_.patch(
        apiclient::resourcePath("v1", "events", s.namespace_, s.name),
        apiclient::PatchType::kStrategicMerge,
        "{\"count\":" + std::to_string(s.count + 1) + ",\"lastTimestamp\":\"" + t + "\"}");
    if (r) {
      s.count++;
      s.last = mono;
      return true;
    }
    if (r.error().code != 404) {
      return false;
    }
    seen_.erase(it);  // gone: a new one below
  }
  char suffix[32];
  std::snprintf(suffix, sizeof suffix, "%llx",
                static_cast<unsigned long long>(now.tv_sec) * 1000000000ull +
                    static_cast<unsigned long long>(now.tv_nsec));
  apiclient::EventSpec spec{.namespace_ = ns,
                            .name = e.involved_name + "." + suffix,
                            .involved_kind = e.involved_kind,
                            .involved_name = e.involved_name,
                            .involved_namespace = e.involved_namespace,
                            .involved_uid = e.involved_uid,
                            .involved_api_version = "v1",
                            .involved_field_path = e.field_path,
                            .reason = e.reason,
                            .message = e.message,
                            .type = e.type,
                            .host = node_,
                            .first_timestamp = t,
                            .last_timestamp = t};
  auto r =
      client_.create(apiclient::resourcePath("v1", "events", ns), apiclient::encodeEvent(spec));
  if (!r) {
    return false;
  }
  seen_[key] = {spec.name, ns, t, 1, mono};
  return true;
}

}  // namespace kernelet::agent
