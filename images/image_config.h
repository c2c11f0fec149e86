#pragma once
// What an image's config says about running it, and how Kubernetes merges that
// with a container's command and args.

#include <sys/types.h>

#include <optional>
#include <string>
#include <vector>

#include "sys/result.h"

namespace kernelet::images {

struct ImageConfig {
  std::vector<std::string> entrypoint;
  std::vector<std::string> cmd;
  std::vector<std::string> env;
  std::string working_dir;
  std::string user;                        // "name", "uid", "name:group", "uid:gid"
  std::vector<std::string> exposed_ports;  // "80/tcp"
  std::string stop_signal;
};

// Reads the "config" of an OCI/Docker image config JSON; `where` names it in errors.
Result<ImageConfig> parseImageConfig(const std::string& json, const std::string& where);

// The argv a container runs (Kubernetes' rules):
//   no command, no args   -> Entrypoint + Cmd
//   command only          -> command (the image's Cmd is dropped)
//   args only             -> Entrypoint + args
//   command and args      -> command + args
// An empty result is an error naming the container.
Result<std::vector<std::string>> containerArgv(const ImageConfig& image,
                                               const std::vector<std::string>& command,
                                               const std::vector<std::string>& args,
                                               const std::string& container);

struct ResolvedUser {
  uid_t uid = 0;
  gid_t gid = 0;
  std::vector<gid_t> additional_gids;  // from the image's /etc/group, the primary gid first
  std::string home;                    // from /etc/passwd, "/" if unknown
};

// Resolves "name[:group]" or "uid[:gid]" through ROOTFS/etc/passwd and
// ROOTFS/etc/group, as runc and containerd do: a numeric uid not in passwd is
// fine (gid 0), a name not in passwd is an error.
Result<ResolvedUser> resolveUser(const std::string& rootfs, const std::string& user);

}  // namespace kernelet::images
