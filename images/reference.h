#pragma once
// Image references as the Docker/containerd reference grammar reads them:
//   busybox                    -> docker.io/library/busybox:latest
//   localhost:5000/team/app:v1 -> host localhost:5000, repository team/app, tag v1
//   quay.io/x/y@sha256:...     -> by digest (no tag is added)

#include <string>

#include "sys/result.h"

namespace kernelet::images {

struct Reference {
  std::string domain;      // "docker.io", "localhost:5000"
  std::string repository;  // "library/busybox"
  std::string tag;         // may be empty when a digest is given
  std::string digest;      // "sha256:..." or empty

  // The normalized full form: docker.io/library/busybox:latest[@sha256:...].
  std::string str() const;
  // domain/repository, without tag or digest.
  std::string name() const { return domain + "/" + repository; }
};

// Errors name the reference and what is wrong with it.
Result<Reference> parseReference(const std::string& text);

}  // namespace kernelet::images
