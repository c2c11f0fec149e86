# Debian 12's RapidJSON 1.1.0 defines a copy assignment of GenericStringRef that
# assigns a const member; g++ 12 never looks at it, clang 19 rejects it (fixed
# upstream by deleting it). The fuzz build reads a copy of the headers with
# that one line fixed, ahead of the system's.
find_package(RapidJSON REQUIRED)
set(fixed ${CMAKE_BINARY_DIR}/rapidjson-fixed)
file(COPY ${RAPIDJSON_INCLUDE_DIRS}/rapidjson DESTINATION ${fixed})
file(READ ${fixed}/rapidjson/document.h text)
string(REPLACE
  "GenericStringRef& operator=(const GenericStringRef& rhs) { s = rhs.s; length = rhs.length; }"
  "GenericStringRef& operator=(const GenericStringRef& rhs) = delete;" text "${text}")
file(WRITE ${fixed}/rapidjson/document.h "${text}")
include_directories(BEFORE SYSTEM ${fixed})
