#include "agent/app/oom_score.h"

#include "sys/fileio.h"

namespace kernelet::agent {

Result<void> setOomScoreAdj(int value, const std::string& path) {
  // Lowering it below what it was needs CAP_SYS_RESOURCE: without it the
  // write fails with EACCES, which the caller logs.
  return addContext(writeFile(path, std::to_string(value)), "set the agent's oom_score_adj");
}

}  // namespace kernelet::agent
