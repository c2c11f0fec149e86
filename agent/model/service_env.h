#pragma once
// The service environment variables the kubelet gives every container
// (pkg/kubelet/kubelet_pods.go getServiceEnvVarMap, pkg/kubelet/envvars):
// the master service `kubernetes` of the default namespace always, and with
// enableServiceLinks every Service of the pod's own namespace, each as
// {NAME}_SERVICE_HOST/_SERVICE_PORT/_SERVICE_PORT_{PORTNAME} and the Docker
// link family {NAME}_PORT, {NAME}_PORT_{port}_{PROTO}[_PROTO|_PORT|_ADDR].

#include <string>
#include <utility>
#include <vector>

#include "apiclient/objects.h"

namespace kernelet::agent {

using EnvList = std::vector<std::pair<std::string, std::string>>;

// The kubelet's error while the Services have not been listed once.
inline constexpr const char* kServicesNotSynced =
    "services have not yet been read at least once, cannot construct envvars";

// Services without a cluster IP (headless "None", or none) give nothing. A
// Service of the pod's namespace named like the master service wins over it.
// In the order of the services' names, each service's variables in the
// kubelet's order.
EnvList serviceEnv(const std::vector<apiclient::Service>& services, const std::string& namespace_,
                   bool enable_service_links);

// NAME as a variable name: upper case, '-' as '_'.
std::string serviceVarName(const std::string& name);

}  // namespace kernelet::agent
