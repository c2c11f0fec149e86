#pragma once
// Content-Encoding: gzip bodies, which the API server sends for large
// responses when asked with Accept-Encoding: gzip.

#include <string>

#include "sys/result.h"

namespace kernelet::apiclient {

Result<std::string> gunzip(const std::string& data, const std::string& where);

}  // namespace kernelet::apiclient
