#pragma once
// Standard base64 (with padding), as kubeconfig -data fields, Docker auth files
// and Basic credentials use it.

#include <optional>
#include <string>

namespace kernelet::apiclient {

std::string base64Encode(const std::string& in);
// Line breaks and spaces are skipped; nullopt when the text is not base64.
std::optional<std::string> base64Decode(std::string in);

}  // namespace kernelet::apiclient
