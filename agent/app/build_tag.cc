#include "agent/app/build_tag.h"

namespace kernelet::agent {
namespace {
const char* g_tag = "";
}  // namespace

void setBuildTag(const char* tag) { g_tag = tag; }
const char* buildTag() { return g_tag; }

}  // namespace kernelet::agent
