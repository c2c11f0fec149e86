#pragma once
// Every document of a YAML (or JSON) text, loaded with yaml-cpp only after a
// first pass over its events has shown the load cannot run away. yaml-cpp 0.7's
// LoadAll loops for ever, one null document per turn and without bound in
// memory, when a document starts with a token no node consumes: a ',' outside
// any flow collection ("{},", or a JSON object followed by a stray ",").
// Upstream fixed it after 0.7 (jbeder/yaml-cpp#1319); Debian 12 ships 0.7.
// The pass also bounds what aliases expand to: yaml-cpp shares an aliased
// node, but every walk over the document (the pod decoder, yamlNodeToJson)
// visits it once per alias, so "a billion laughs" is a billion visits.
//
// Errors read "OP `NAME`: line N: what", N counted from 1.

#include <yaml-cpp/anchor.h>
#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/parser.h>
#include <yaml-cpp/yaml.h>

#include <cstdint>
#include <string>
#include <vector>

#include "sys/result.h"

namespace kernelet::agent {

struct YamlLimits {
  // Nodes of one document counted as often as walks visit them (an alias of
  // a mapping counts the mapping's nodes again). A Pod of a few hundred
  // containers and volumes has some tens of thousands.
  uint64_t max_expanded_nodes = 1u << 20;
};

Result<std::vector<YAML::Node>> loadYamlDocuments(const std::string& text, const std::string& op,
                                                  const std::string& name, YamlLimits limits = {});

}  // namespace kernelet::agent
