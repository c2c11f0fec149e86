#pragma once
// volumeMounts[].subPath and subPathExpr: a mount of one file or directory
// inside a volume, safe against a container that shares the volume and swaps
// a component for a symlink (the kubelet's CVE-2017-1002101 and
// CVE-2021-25741 both came from binding a path that was checked earlier).
//
// So nothing here hands a path on: the subpath is opened inside the volume's
// directory with openat2(RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS) and the
// resulting fd is cloned into a detached mount (open_tree OPEN_TREE_CLONE),
// which the container's child attaches with move_mount. What is mounted is
// the inode the agent resolved, whatever the path says a moment later.

#include <map>
#include <string>

#include "agent/model/pod.h"
#include "sys/result.h"
#include "sys/unique_fd.h"

namespace kernelet::agent {

// The kubelet's ExpandContainerVolumeMounts: $(VAR) from the container's env;
// a reference to a variable that is unset or empty is an error
// ("missing value for A, B", names sorted), $$ is a literal $.
Result<std::string> expandSubPathExpr(const std::string& expr,
                                      const std::map<std::string, std::string>& env);

// The subpath of a mount as the kubelet's makeMounts takes it: subPath, or
// subPathExpr expanded; then it must be relative and without "..", in the
// kubelet's words. Empty: the mount has none (the whole volume).
Result<std::string> mountSubPath(const VolumeMount& m,
                                 const std::map<std::string, std::string>& env);

// Creates a missing `sub_path` below the directory `volume_dir` (an fd) as
// directories, as the kubelet's SafeMakeDir does: one mkdirat per missing
// component under its resolved parent (never through a symlink), with the
// volume directory's mode. Nothing to do when it exists, or when opening it
// fails otherwise (openSubPath says why).
Result<void> makeSubPathDirs(int volume_dir, const std::string& sub_path);

// Opens `sub_path` below `volume_dir` as O_PATH. Symlinks are followed while
// they stay below the volume, as the kubelet allows; one that leaves it
// (absolute, or "../" out of it) fails with EXDEV, a magic link with ELOOP.
// RESOLVE_BENEATH rather than RESOLVE_IN_ROOT: the latter would re-root
// `evil -> /` at the volume, safe too, but it would mount something other
// than what the link names, where the kubelet refuses the link.
Result<UniqueFd> openSubPath(int volume_dir, const std::string& sub_path);

// A detached copy of the mount at `fd` (recursive: with the mounts below it),
// made private at once: cloned from the agent's namespace it would otherwise
// be a peer of the volume's mount until the container made it private.
Result<UniqueFd> detachedMount(int fd, bool recursive);

}  // namespace kernelet::agent
