#pragma once
// Strategic merge patches, two-way (old vs new), as client-go computes them for
// the objects the kubelet patches: maps recurse, removed fields become null,
// lists with a merge key (conditions by "type", podIPs by "ip", ...) send only
// changed items plus "$setElementOrder/<list>" and {"$patch":"delete"} for
// removed ones, and other lists are replaced whole.

#include <map>
#include <set>
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

// `ours` (a v1.PodStatus) with, first, the conditions of `api` (an object
// with the API's "status") whose type is not in `owned`: the kubelet keeps
// the conditions other controllers set (readiness gates) and writes only its
// own, so a status patch never deletes or reverts them. A type both have and
// `owned` lacks (DisruptionTarget, shared) is taken from `ours`.
Result<std::string> keepForeignConditions(const std::string& api, const std::string& ours,
                                          const std::set<std::string>& owned);

}  // namespace kernelet::apiclient
