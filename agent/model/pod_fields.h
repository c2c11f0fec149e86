#pragma once
// What kernelet does with every field of a v1 Pod: one table, checked against
// the API's OpenAPI schema by tests/unit/pod_fields_test.cc, so that no field
// is accepted and silently dropped, and a new Kubernetes version's fields
// cannot slip in unnoticed.
//
// Path notation: the field names from the object's root joined by '.', a list
// of objects as `[]` (`spec.containers[].lifecycle.preStop`), a map or a list
// of scalars as its own name (`metadata.labels`, `spec.containers[].args`).
// In messages about a document the `[]` carry the concrete index
// (`spec.containers[1].lifecycle`).

#include <yaml-cpp/yaml.h>

#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace kernelet::agent {

enum class FieldUse {
  kImplemented,  // the agent acts on it as the kubelet does
  kRefused,      // a manifest that sets it is an error; an API pod that sets it is rejected
  kNoEffect,     // nothing on a node acts on it (the scheduler's, the API server's)
};

struct PodField {
  std::string_view path;
  FieldUse use;
  // kRefused only: values (separated by '|') that pass, because they are
  // what kernelet does anyway (often the API's default, present on every pod).
  std::string_view accepted = {};
};

// The table, sorted by path. A kRefused or kNoEffect entry covers the whole
// subtree under it; a kImplemented entry is a leaf of the schema (a scalar, a
// map, a list of scalars), so a field added under an implemented object is
// missing from the table until someone classifies it.
std::span<const PodField> podFields();

// The entry that decides `path` (in the table's notation): its own, or a
// kRefused or kNoEffect ancestor's. nullptr: not a known field.
const PodField* podField(std::string_view path);

// Whether `path` is an object on the way to entries of the table
// (`spec`, `spec.containers[]`, `spec.containers[].securityContext`).
bool podFieldParent(std::string_view path);

// The first field of a Pod document that is set to something kernelet
// refuses, with the concrete index in its path and where it is.
// Null, empty strings, lists and maps count as unset, as they do for the API.
// Fields the schema does not know are let through, as the kubelet's decoder
// does for static pods (and the API server has dropped them from API pods).
struct RefusedField {
  std::string path;  // spec.containers[1].lifecycle
  YAML::Mark mark;
};
std::optional<RefusedField> firstRefusedField(const YAML::Node& doc);

// The message for it: "spec.containers[1].lifecycle: not supported by kernelet".
std::string refusedMessage(const RefusedField& f);

}  // namespace kernelet::agent
