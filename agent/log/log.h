#pragma once
// The agent's log on stderr in the kubelet's klog form, so the same greps work:
//   I1128 15:30:00.123456    4242 kernelet] "Container started" pod="default/web" container="app"
// V(n) lines show with -v=n or more.

#include <string>
#include <utility>
#include <vector>

namespace kernelet::agent::log {

using Fields = std::vector<std::pair<std::string, std::string>>;

void setVerbosity(int v);
bool enabled(int v);
void info(const std::string& msg, const Fields& fields = {});
void v(int level, const std::string& msg, const Fields& fields = {});
void warning(const std::string& msg, const Fields& fields = {});
void error(const std::string& msg, const Fields& fields = {});

}  // namespace kernelet::agent::log
