#pragma once
// Strategic merge patches, two-way (old vs new), as client-go computes them for
// the objects the kubelet patches: maps recurse, removed fields become null,
// lists with a merge key (conditions by "type", podIPs by "ip", ...) send only
// changed items plus "$setElementOrder/<list>" and {"$patch":"delete"} for
// removed ones, and other lists are replaced whole.

#include <map>
#include <string>

#include "sys/result.h"

namespace kernelet::apiclient {

// List field name -> merge key, for every list that merges by key; the key
// kReplaceList instead sends a changed list whole with {"$patch":"replace"}
// (what the kubelet does for node addresses).
using MergeKeys = std::map<std::string, std::string>;
inline constexpr const char* kReplaceList = "$replace";

// The merge keys of PodStatus in the official schema.
const MergeKeys& podStatusMergeKeys();

// Returns the patch as JSON text; "{}" when nothing changed. Both inputs are
// JSON objects; errors name which one is not.
Result<std::string> twoWayMergePatch(const std::string& old_json, const std::string& new_json,
                                     const MergeKeys& keys);

}  // namespace kernelet::apiclient
