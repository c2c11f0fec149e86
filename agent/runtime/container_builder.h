#pragma once
// One container of a pod as an isolation::ContainerSpec: the image's config
// merged with the container's command, args, env, workingDir and
// securityContext (the pod's as the default), the pod's shared namespaces,
// volumes and /etc files, and the QoS class's oom_score_adj.

#include <string>
#include <vector>

#include "agent/model/field_refs.h"
#include "agent/model/pod.h"
#include "agent/model/qos.h"
#include "agent/runtime/pod_sandbox.h"
#include "agent/runtime/volumes.h"
#include "agent/sources/pod_objects.h"
#include "images/image_config.h"
#include "isolation/container_spec.h"
#include "sys/result.h"
#include "sys/unique_fd.h"

namespace kernelet::agent {

struct ContainerInput {
  const Pod* pod = nullptr;
  const Container* container = nullptr;
  const PodSandbox* sandbox = nullptr;
  const PodVolumes* volumes = nullptr;
  images::ImageConfig image;
  std::string rootfs;  // the mounted overlay
  QosClass qos = QosClass::kBestEffort;
  int64_t node_memory = 0;
  PodRuntimeInfo info;
  std::string seccomp_dir;        // where Localhost profiles live: ROOT/seccomp
  bool seccomp_default = false;   // seccompDefault: RuntimeDefault when the pod sets none
  std::string pid_ns;             // shareProcessNamespace: a running container's pid ns
  PodObjects* objects = nullptr;  // ConfigMaps and Secrets for env; null without an API server
  // Where the detached mounts of subPath volume mounts go (Mount::source_fd
  // names them), for the one start they are made for: the caller closes them
  // once the container's child has its copies. Null: none are made (a spec
  // for execs, which join the running container's mounts).
  std::vector<UniqueFd>* subpath_mounts = nullptr;
  // The run's termination-message file on the host, bind-mounted read-write at
  // the container's terminationMessagePath; empty: none.
  std::string termination_file;
  // The Services for the service variables; null without an API server (then
  // there are none, as with a kubelet that has no API client).
  const ServiceLister* services = nullptr;
};

// An error here is the kubelet's CreateContainerConfigError (runAsNonRoot
// violated, a bad fieldRef, an unknown capability, a missing seccomp profile,
// a ConfigMap or Secret key the env needs that is not there, a subPath that
// cannot be mounted safely, the Services not listed yet).
Result<isolation::ContainerSpec> buildContainerSpec(const ContainerInput& in);

// The container's environment ("NAME=value"): the image's, HOSTNAME, the
// service variables, envFrom and env with $(VAR) expanded. Needs no sandbox
// (`hostname` is its), nor `in.volumes` or `in.rootfs`.
Result<std::vector<std::string>> containerEnvironment(const ContainerInput& in,
                                                      const std::string& hostname);

}  // namespace kernelet::agent
