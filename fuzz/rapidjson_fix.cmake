# Two bugs of Debian 12's RapidJSON 1.1.0, both fixed upstream since, would stop
# the fuzz build: GenericStringRef's copy assignment assigns a const member
# (g++ 12 never looks at it, clang 19 rejects it; upstream deleted it), and
# Stack::Reserve adds to a null pointer on the first push of every parse
# (UBSan aborts; upstream compares the room left instead). The fuzz build reads
# a copy of the headers with those two lines fixed, ahead of the system's.
find_package(RapidJSON REQUIRED)
set(fixed ${CMAKE_BINARY_DIR}/rapidjson-fixed)
file(COPY ${RAPIDJSON_INCLUDE_DIRS}/rapidjson DESTINATION ${fixed})
file(READ ${fixed}/rapidjson/document.h text)
string(REPLACE
  "GenericStringRef& operator=(const GenericStringRef& rhs) { s = rhs.s; length = rhs.length; }"
  "GenericStringRef& operator=(const GenericStringRef& rhs) = delete;" text "${text}")
file(WRITE ${fixed}/rapidjson/document.h "${text}")
file(READ ${fixed}/rapidjson/internal/stack.h text)
string(REPLACE "if (RAPIDJSON_UNLIKELY(stackTop_ + sizeof(T) * count > stackEnd_))"
  "if (RAPIDJSON_UNLIKELY(static_cast<std::ptrdiff_t>(sizeof(T) * count) > (stackEnd_ - stackTop_)))"
  text "${text}")
file(WRITE ${fixed}/rapidjson/internal/stack.h "${text}")
include_directories(BEFORE SYSTEM ${fixed})
