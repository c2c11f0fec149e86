#pragma once
// What the error stream of a remote command carries at its end, exactly as
// the kubelet writes it (pkg/kubelet/cri/streaming/remotecommand): v4 and
// later a JSON metav1.Status, from which client-go takes the exit code
// (reason NonZeroExitCode, cause ExitCode) so `kubectl exec` exits with it;
// v1-v3 only a failure's message, nothing on success.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace kernelet::agent::streams {

// The protocol's version: 5 for v5.channel.k8s.io, 4 for v4.channel.k8s.io
// and v4.base64.channel.k8s.io, 3, 2, and 1 for channel.k8s.io and
// base64.channel.k8s.io (and no protocol at all, the kubelet's fallback).
int remoteCommandVersion(const std::string& protocol);

// How an exec (or an attach) ended.
struct ExecOutcome {
  enum class Kind : uint8_t { kExited, kFailed } kind = Kind::kExited;
  int exit_code = 0;                 // kExited: the status, 128+N for a signal N
  std::string error;                 // kFailed: why it could not run (start failure, no streams)
  std::vector<std::string> command;  // for the kubelet's message of a non-zero exit
  // An attach, not an exec: a failure reads "error attaching to container:
  // WHY" (the kubelet's ServeAttach); its clean end is Success.
  bool attach = false;
};

// The Status the kubelet writes (Go's json.Marshal of metav1.Status):
//   {"metadata":{},"status":"Success"}
//   {"metadata":{},"status":"Failure","message":"command terminated with non-zero exit code:
//    error executing command [sh -c exit 3], exit code 3","reason":"NonZeroExitCode",
//    "details":{"causes":[{"reason":"ExitCode","message":"3"}]}}
//   {"metadata":{},"status":"Failure","message":"Internal error occurred: error executing
//    command in container: WHY","reason":"InternalError","details":{"causes":[{"message":
//    "error executing command in container: WHY"}]},"code":500}
//   (an attach's: "error attaching to container: WHY")
std::string execStatusJson(const ExecOutcome& outcome);
// The Status's message (what v1-v3 write, and what kubectl prints).
std::string execStatusMessage(const ExecOutcome& outcome);
// The error stream's bytes for `version`: the JSON (v4+), or the message of a
// failure (v1-v3; empty on success, as the kubelet writes nothing then).
std::string errorStreamBytes(int version, const ExecOutcome& outcome);

// `s` as a JSON string the way Go's encoding/json writes it: <, > and &
// escaped as \u003c..., invalid UTF-8 as \ufffd, U+2028/U+2029 escaped.
std::string goJsonString(std::string_view s);

}  // namespace kernelet::agent::streams
