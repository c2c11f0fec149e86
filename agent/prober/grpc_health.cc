#include "agent/prober/grpc_health.h"

#include <nghttp2/nghttp2.h>

#include <array>
#include <cctype>
#include <cstdio>
#include <cstring>
#include <vector>

namespace kernelet::agent {
namespace {

constexpr const char* kPath = "/grpc.health.v1.Health/Check";
// grpc-go appends its own name and version to the user agent the kubelet sets.
constexpr const char* kUserAgent = "kube-probe/1.35 grpc-go/1.72.1";
// A HealthCheckResponse is a few bytes; more than this is not one, and the
// agent keeps no more of it (grpc-go's limit is 4 MiB).
constexpr size_t kMaxMessage = 64 * 1024;
// What is kept of grpc-message.
constexpr size_t kMaxStatusMessage = 1024;

// grpc-go's codes.Code names.
std::string codeName(int64_t code) {
  static constexpr std::array<const char*, 17> kNames = {
      "OK",       "Canceled",       "Unknown",          "InvalidArgument",   "DeadlineExceeded",
      "NotFound", "AlreadyExists",  "PermissionDenied", "ResourceExhausted", "FailedPrecondition",
      "Aborted",  "OutOfRange",     "Unimplemented",    "Internal",          "Unavailable",
      "DataLoss", "Unauthenticated"};
  if (code >= 0 && code < static_cast<int64_t>(kNames.size())) {
    return kNames[static_cast<size_t>(code)];
  }
  return "Code(" + std::to_string(code) + ")";
}

// grpc-go's HTTPStatusConvTab: the code of a non-200 answer.
const char* codeOfHttpStatus(int status) {
  switch (status) {
    case 400:
      return "Internal";
    case 401:
      return "Unauthenticated";
    case 403:
      return "PermissionDenied";
    case 404:
      return "Unimplemented";
    case 429:
    case 502:
    case 503:
    case 504:
      return "Unavailable";
    default:
      return "Unknown";
  }
}

// Go's http.StatusText for the statuses a gRPC server or a proxy answers.
std::string statusText(int status) {
  switch (status) {
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 415:
      return "Unsupported Media Type";
    case 429:
      return "Too Many Requests";
    case 500:
      return "Internal Server Error";
    case 502:
      return "Bad Gateway";
    case 503:
      return "Service Unavailable";
    case 504:
      return "Gateway Timeout";
    default:
      return "";
  }
}

// Go's http2.ErrCode names, and the gRPC code grpc-go gives a stream reset
// with each (http2ErrConvTab).
struct ResetCode {
  const char* name;
  const char* code;
};
ResetCode resetCode(uint32_t e) {
  static constexpr std::array<ResetCode, 14> kCodes = {{{"NO_ERROR", "Internal"},
                                                        {"PROTOCOL_ERROR", "Internal"},
                                                        {"INTERNAL_ERROR", "Internal"},
                                                        {"FLOW_CONTROL_ERROR", "ResourceExhausted"},
                                                        {"SETTINGS_TIMEOUT", "Internal"},
                                                        {"STREAM_CLOSED", "Internal"},
                                                        {"FRAME_SIZE_ERROR", "Internal"},
                                                        {"REFUSED_STREAM", "Unavailable"},
                                                        {"CANCEL", "Canceled"},
                                                        {"COMPRESSION_ERROR", "Internal"},
                                                        {"CONNECT_ERROR", "Internal"},
                                                        {"ENHANCE_YOUR_CALM", "ResourceExhausted"},
                                                        {"INADEQUATE_SECURITY", "PermissionDenied"},
                                                        {"HTTP_1_1_REQUIRED", "Internal"}}};
  if (e < kCodes.size()) {
    return kCodes[e];
  }
  return {nullptr, "Internal"};
}

// grpc-message is percent-encoded (grpc-go's decodeGrpcMessage); a bad
// escape is kept as it came.
std::string percentDecode(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size(); i++) {
    if (s[i] == '%' && i + 2 < s.size() && std::isxdigit(static_cast<unsigned char>(s[i + 1])) &&
        std::isxdigit(static_cast<unsigned char>(s[i + 2]))) {
      out += static_cast<char>(std::stoi(s.substr(i + 1, 2), nullptr, 16));
      i += 2;
      continue;
    }
    out += s[i];
  }
  return out;
}

// One protobuf varint from `p`; false when it runs past `end` or over 10 bytes.
bool readVarint(const uint8_t*& p, const uint8_t* end, uint64_t& v) {
  v = 0;
  for (int shift = 0; shift < 70; shift += 7) {
    if (p == end) {
      return false;
    }
    uint8_t b = *p++;
    v |= static_cast<uint64_t>(b & 0x7f) << shift;
    if ((b & 0x80) == 0) {
      return true;
    }
  }
  return false;
}

// HealthCheckResponse { ServingStatus status = 1; }: the status, or nothing
// when the bytes are not wire-format protobuf. Unknown fields are skipped,
// as proto3 does; a repeated field 1 counts last.
std::optional<int32_t> servingStatus(const std::string& message) {
  const auto* p = reinterpret_cast<const uint8_t*>(message.data());
  const uint8_t* end = p + message.size();
  int32_t status = 0;  // proto3: absent is UNKNOWN (0)
  while (p != end) {
    uint64_t tag = 0, v = 0;
    if (!readVarint(p, end, tag) || (tag >> 3) == 0) {
      return std::nullopt;
    }
    switch (tag & 7) {
      case 0:
        if (!readVarint(p, end, v)) {
          return std::nullopt;
        }
        if ((tag >> 3) == 1) {
          status = static_cast<int32_t>(static_cast<uint32_t>(v));
        }
        break;
      case 1:
      case 5: {
        size_t n = (tag & 7) == 1 ? 8 : 4;
        if (static_cast<size_t>(end - p) < n) {
          return std::nullopt;
        }
        p += n;
        break;
      }
      case 2:
        if (!readVarint(p, end, v) || v > static_cast<uint64_t>(end - p)) {
          return std::nullopt;
        }
        p += v;
        break;
      default:
        return std::nullopt;  // groups (3, 4) and 6, 7 are not proto3
    }
  }
  return status;
}

std::string servingStatusName(int32_t s) {
  switch (s) {
    case 0:
      return "UNKNOWN";
    case 1:
      return "SERVING";
    case 2:
      return "NOT_SERVING";
    case 3:
      return "SERVICE_UNKNOWN";
    default:
      return std::to_string(s);  // Go's protobuf String() of an unnamed value
  }
}

}  // namespace

// The nghttp2 session and what the one stream brought.
struct GrpcHealthCheck::Session {
  nghttp2_session* h2 = nullptr;
  std::string out;            // request body: the gRPC-framed HealthCheckRequest
  size_t out_sent = 0;        // how much of it the data provider gave
  int32_t stream = -1;        // the call's stream
  int http_status = 0;        // 0: none came
  bool headers_done = false;  // the first header block (the response's) ended
  std::optional<std::string> content_type, grpc_status, grpc_message;
  std::string body;
  bool body_too_large = false;
  size_t body_declared = 0;  // the size a too-large message said it had

  ~Session() { nghttp2_session_del(h2); }

  static GrpcHealthCheck& owner(void* user_data) {
    return *static_cast<GrpcHealthCheck*>(user_data);
  }

  static int onFrameRecv(nghttp2_session*, const nghttp2_frame* frame, void* user_data) {
    GrpcHealthCheck& c = owner(user_data);
    if (frame->hd.type == NGHTTP2_SETTINGS && (frame->hd.flags & NGHTTP2_FLAG_ACK) == 0 &&
        !c.connected_) {
      c.connected_ = true;  // grpc-go's transport is READY at the server's preface
      c.sendCall();
    }
    if (frame->hd.type == NGHTTP2_HEADERS && frame->hd.stream_id == c.session_->stream &&
        (frame->hd.flags & NGHTTP2_FLAG_END_HEADERS) != 0) {
      c.session_->headers_done = true;
    }
    return 0;
  }

  static int onHeader(nghttp2_session*, const nghttp2_frame* frame, const uint8_t* name,
                      size_t namelen, const uint8_t* value, size_t valuelen, uint8_t,
                      void* user_data) {
    GrpcHealthCheck& c = owner(user_data);
    Session& s = *c.session_;
    if (frame->hd.stream_id != s.stream) {
      return 0;
    }
    std::string_view n(reinterpret_cast<const char*>(name), namelen);
    std::string v(reinterpret_cast<const char*>(value), std::min(valuelen, kMaxStatusMessage));
    bool first_block = !s.headers_done;
    if (n == ":status" && first_block) {
      s.http_status = std::atoi(v.c_str());
    } else if (n == "content-type" && first_block) {
      s.content_type = v;
    } else if (n == "grpc-status") {
      s.grpc_status = v;
    } else if (n == "grpc-message") {
      s.grpc_message = v;
    }
    return 0;
  }

  static int onData(nghttp2_session*, uint8_t, int32_t stream_id, const uint8_t* data, size_t len,
                    void* user_data) {
    Session& s = *owner(user_data).session_;
    if (stream_id != s.stream || s.body_too_large) {
      return 0;
    }
    size_t room = kMaxMessage + 5 - s.body.size();
    if (len > room) {
      s.body_too_large = true;
      return 0;
    }
    s.body.append(reinterpret_cast<const char*>(data), len);
    return 0;
  }

  static int onStreamClose(nghttp2_session*, int32_t stream_id, uint32_t error_code,
                           void* user_data) {
    GrpcHealthCheck& c = owner(user_data);
    if (stream_id != c.session_->stream || c.outcome_) {
      return 0;
    }
    if (error_code != NGHTTP2_NO_ERROR) {
      ResetCode r = resetCode(error_code);
      char hex[16];
      std::snprintf(hex, sizeof hex, "0x%x", error_code);
      std::string name = r.name != nullptr ? r.name : std::string("unknown error code ") + hex;
      c.fail(r.code, "stream terminated by RST_STREAM with error code: " + name);
      return 0;
    }
    c.endCall();
    return 0;
  }

  static ssize_t readBody(nghttp2_session*, int32_t, uint8_t* buf, size_t length,
                          uint32_t* data_flags, nghttp2_data_source*, void* user_data) {
    Session& s = *owner(user_data).session_;
    size_t n = std::min(length, s.out.size() - s.out_sent);
    std::memcpy(buf, s.out.data() + s.out_sent, n);
    s.out_sent += n;
    if (s.out_sent == s.out.size()) {
      *data_flags |= NGHTTP2_DATA_FLAG_EOF;
    }
    return static_cast<ssize_t>(n);
  }
};

GrpcHealthCheck::GrpcHealthCheck(std::string authority, std::string service, int timeout_seconds)
    : authority_(std::move(authority)),
      service_(std::move(service)),
      timeout_seconds_(timeout_seconds),
      session_(std::make_unique<Session>()) {
  nghttp2_session_callbacks* cbs = nullptr;
  if (nghttp2_session_callbacks_new(&cbs) != 0) {
    outcome_ = Outcome{false, "error: health rpc probe failed: out of memory"};
    return;
  }
  nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, Session::onFrameRecv);
  nghttp2_session_callbacks_set_on_header_callback(cbs, Session::onHeader);
  nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, Session::onData);
  nghttp2_session_callbacks_set_on_stream_close_callback(cbs, Session::onStreamClose);
  int rv = nghttp2_session_client_new(&session_->h2, cbs, this);
  nghttp2_session_callbacks_del(cbs);
  if (rv != 0) {
    session_->h2 = nullptr;
    outcome_ = Outcome{false, "error: health rpc probe failed: out of memory"};
    return;
  }
  // The client preface goes out with these SETTINGS (nghttp2 writes the magic
  // first on its own). No push, as grpc-go.
  nghttp2_settings_entry settings[] = {{NGHTTP2_SETTINGS_ENABLE_PUSH, 0}};
  nghttp2_submit_settings(session_->h2, NGHTTP2_FLAG_NONE, settings, 1);

  // The request message: a gRPC frame (not compressed, 4-byte big-endian
  // length) around HealthCheckRequest { string service = 1; }, empty for "".
  std::string msg;
  if (!service_.empty()) {
    msg += '\x0a';
    for (uint64_t n = service_.size();; n >>= 7) {
      msg += static_cast<char>((n & 0x7f) | (n > 0x7f ? 0x80 : 0));
      if (n <= 0x7f) {
        break;
      }
    }
    msg += service_;
  }
  uint32_t len = static_cast<uint32_t>(msg.size());
  session_->out = std::string(1, '\0');
  for (int shift = 24; shift >= 0; shift -= 8) {
    session_->out += static_cast<char>((len >> shift) & 0xff);
  }
  session_->out += msg;
}

GrpcHealthCheck::~GrpcHealthCheck() = default;

void GrpcHealthCheck::sendCall() {
  if (call_sent_ || outcome_) {
    return;
  }
  call_sent_ = true;
  std::string timeout = std::to_string(timeout_seconds_ > 0 ? timeout_seconds_ : 1) + "S";
  auto nv = [](const char* name, const std::string& value) {
    return nghttp2_nv{reinterpret_cast<uint8_t*>(const_cast<char*>(name)),
                      reinterpret_cast<uint8_t*>(const_cast<char*>(value.data())),
                      std::strlen(name), value.size(), NGHTTP2_NV_FLAG_NONE};
  };
  const std::string post = "POST", http = "http", path = kPath, grpc = "application/grpc",
                    agent = kUserAgent, trailers = "trailers";
  std::vector<nghttp2_nv> headers = {nv(":method", post),      nv(":scheme", http),
                                     nv(":path", path),        nv(":authority", authority_),
                                     nv("content-type", grpc), nv("user-agent", agent),
                                     nv("te", trailers),       nv("grpc-timeout", timeout)};
  nghttp2_data_provider body{};
  body.read_callback = Session::readBody;
  int32_t id =
      nghttp2_submit_request(session_->h2, nullptr, headers.data(), headers.size(), &body, nullptr);
  if (id < 0) {
    return fail("Internal", std::string("transport: ") + nghttp2_strerror(id));
  }
  session_->stream = id;
}

std::string GrpcHealthCheck::takeOutput() {
  std::string out;
  if (session_->h2 == nullptr) {
    return out;
  }
  for (;;) {
    const uint8_t* data = nullptr;
    ssize_t n = nghttp2_session_mem_send(session_->h2, &data);
    if (n <= 0) {
      break;  // nothing more (or a fatal error, which receive() reports)
    }
    out.append(reinterpret_cast<const char*>(data), static_cast<size_t>(n));
  }
  return out;
}

bool GrpcHealthCheck::receive(std::string_view bytes) {
  if (outcome_ || session_->h2 == nullptr) {
    return true;
  }
  ssize_t rv = nghttp2_session_mem_recv(
      session_->h2, reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
  // A connection error (a malformed frame, a frame too large) either fails
  // the call here or makes nghttp2 queue a GOAWAY and read no more.
  if (rv >= 0 && (outcome_ || nghttp2_session_want_read(session_->h2) != 0)) {
    return true;
  }
  if (connected_) {
    fail("Unavailable", std::string("error reading from server: ") +
                            (rv < 0 ? nghttp2_strerror(static_cast<int>(rv))
                                    : "the server broke the HTTP/2 protocol"));
    return true;
  }
  // Before READY a broken preface leaves the call unsent: grpc-go would
  // reconnect until the deadline, whose message the prober gives.
  return false;
}

void GrpcHealthCheck::closed() {
  if (!outcome_ && connected_) {
    fail("Unavailable", "error reading from server: EOF");
  }
}

std::string GrpcHealthCheck::timeoutMessage() const {
  std::string t = std::to_string(timeout_seconds_) + "s";
  if (!connected_) {
    return "timeout: failed to connect service \"" + authority_ + "\" within " + t +
           ": context deadline exceeded";
  }
  return "timeout: health rpc did not complete within " + t;
}

void GrpcHealthCheck::fail(const std::string& code, const std::string& desc) {
  if (outcome_) {
    return;
  }
  if (code == "Unimplemented") {
    outcome_ = Outcome{false,
                       "error: this server does not implement the grpc health protocol "
                       "(grpc.health.v1.Health): " +
                           desc};
  } else if (code == "DeadlineExceeded") {
    outcome_ = Outcome{false, timeoutMessage()};
  } else {
    outcome_ = Outcome{
        false, "error: health rpc probe failed: rpc error: code = " + code + " desc = " + desc};
  }
}

// The stream ended cleanly: judge the answer as grpc-go's client does, in
// its order: the HTTP status and content type, then grpc-status, then the
// one response message.
void GrpcHealthCheck::endCall() {
  Session& s = *session_;
  bool is_grpc = s.content_type && (*s.content_type == "application/grpc" ||
                                    s.content_type->starts_with("application/grpc+") ||
                                    s.content_type->starts_with("application/grpc;"));
  if (s.http_status != 200 || !is_grpc) {
    std::string code = s.http_status == 0 ? "Internal" : codeOfHttpStatus(s.http_status);
    std::vector<std::string> errs;
    if (s.http_status == 0) {
      errs.push_back("malformed header: missing HTTP status");
    } else if (s.http_status != 200) {
      errs.push_back("unexpected HTTP status code received from server: " +
                     std::to_string(s.http_status) + " (" + statusText(s.http_status) + ")");
    }
    if (!s.content_type) {
      errs.push_back("malformed header: missing HTTP content-type");
    } else if (!is_grpc) {
      errs.push_back("transport: received unexpected content-type \"" + *s.content_type + "\"");
    }
    std::string desc;
    for (const auto& e : errs) {
      desc += (desc.empty() ? "" : "; ") + e;
    }
    return fail(code, desc);
  }
  if (!s.grpc_status) {
    return fail("Internal", "server closed the stream without sending trailers");
  }
  char* end = nullptr;
  long long code = std::strtoll(s.grpc_status->c_str(), &end, 10);
  if (s.grpc_status->empty() || *end != '\0') {
    return fail("Internal", "transport: malformed grpc-status: strconv.ParseInt: parsing \"" +
                                *s.grpc_status + "\": invalid syntax");
  }
  if (code != 0) {
    return fail(codeName(code), percentDecode(s.grpc_message.value_or("")));
  }
  if (s.body_too_large) {
    return fail("ResourceExhausted", "grpc: received message larger than max (more than " +
                                         std::to_string(kMaxMessage) + " bytes)");
  }
  if (s.body.empty()) {
    return fail("Internal",
                "cardinality violation: received no response message from non-streaming RPC");
  }
  if (s.body.size() < 5) {
    return fail("Internal", "unexpected EOF");
  }
  auto flag = static_cast<uint8_t>(s.body[0]);
  uint32_t len = 0;
  for (int i = 1; i <= 4; i++) {
    len = (len << 8) | static_cast<uint8_t>(s.body[i]);
  }
  if (flag > 1) {
    return fail("Internal", "grpc: received unexpected payload format");
  }
  if (flag == 1) {
    return fail("Internal", "grpc: compressed flag set with identity or empty encoding");
  }
  if (len > kMaxMessage) {
    return fail("ResourceExhausted", "grpc: received message larger than max (" +
                                         std::to_string(len) + " vs. " +
                                         std::to_string(kMaxMessage) + ")");
  }
  if (s.body.size() < 5 + static_cast<size_t>(len)) {
    return fail("Internal", "unexpected EOF");
  }
  if (s.body.size() > 5 + static_cast<size_t>(len)) {
    return fail("Internal",
                "cardinality violation: expected <EOF> for non server-streaming RPCs, but "
                "received another message");
  }
  auto status = servingStatus(s.body.substr(5));
  if (!status) {
    return fail("Internal",
                "grpc: failed to unmarshal the received message: proto: cannot parse invalid "
                "wire-format data");
  }
  if (*status != 1) {
    outcome_ =
        Outcome{false, "service unhealthy (responded with \"" + servingStatusName(*status) + "\")"};
    return;
  }
  outcome_ = Outcome{true, ""};
}

}  // namespace kernelet::agent
