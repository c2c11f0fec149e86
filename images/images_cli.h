#pragma once
// `kernelet images ...`: import, list, inspect and remove images in the
// agent's store (--root-dir, default /var/lib/kernelet).

namespace kernelet::images {

// argv[0] is "images". Returns the exit status (2 for a usage error).
int imagesMain(int argc, char** argv);

}  // namespace kernelet::images
