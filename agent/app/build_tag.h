#pragma once
// A tag main() gives the agent when one binary must tell itself apart from
// another built from the same sources: the test build `kernelet-next` (an
// "upgrade" in the live-restore tests) says "next"; the real one says nothing.

namespace kernelet::agent {

void setBuildTag(const char* tag);
// Empty unless set.
const char* buildTag();

}  // namespace kernelet::agent
