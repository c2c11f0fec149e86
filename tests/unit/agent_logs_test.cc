// Container logs (agent/logs): the options of /containerLogs, CRI line
// decoding, the files of a run, the streaming reader (tail, limitBytes,
// follow across rotation, constant memory) and the endpoint's answers.
#include <gtest/gtest.h>
#include <malloc.h>
#include <poll.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "agent/logs/cri_lines.h"
#include "agent/logs/log_files.h"
#include "agent/logs/log_options.h"
#include "agent/logs/log_stream.h"
#include "agent/logs/log_time.h"
#include "agent/logs/logs_endpoint.h"
#include "isolation/cri_log.h"
#include "support/temp_dir.h"

namespace kernelet::agent::logs {
namespace {

using State = LogStream::State;
using testing::TempDir;

constexpr int64_t kSecond = 1000000000;

std::string cri(const std::string& time, const std::string& stream, const std::string& tag,
                const std::string& content) {
  return time + " " + stream + " " + tag + " " + content + "\n";
}

Result<LogOptions> options(const std::string& query, int64_t now = 1000 * kSecond) {
  TRY(auto q, server::Query::parse(query));
  return parseLogOptions(q, now);
}

std::string errorOf(const std::string& query) {
  auto o = options(query);
  return o ? "(no error)" : o.error().message();
}

// Everything a stream gives until kEnd (or kWait: then what it had).
std::string readAll(LogStream& s, size_t max = size_t{64} * 1024, State* last = nullptr) {
  std::string all, piece;
  for (int i = 0; i < 10000000; i++) {
    piece.clear();
    auto st = s.read(piece, max);
    EXPECT_TRUE(st.has_value()) << (st ? "" : st.error().message());
    if (!st) {
      break;
    }
    EXPECT_LE(piece.size(), max);
    all += piece;
    if (*st != State::kData) {
      if (last != nullptr) {
        *last = *st;
      }
      break;
    }
  }
  return all;
}

std::unique_ptr<LogStream> openStream(
    const std::string& dir, int run, const LogOptions& o,
    LogStream::Running running = [] { return false; }) {
  auto s = LogStream::open(dir, run, o, std::move(running));
  EXPECT_TRUE(s.has_value()) << (s ? "" : s.error().message());
  return s ? std::move(*s) : nullptr;
}

TEST(LogOptions, ReadsEveryParameter) {
  auto o = options("follow=true&previous=1&timestamps=true&tailLines=10&limitBytes=500");
  ASSERT_TRUE(o) << o.error().message();
  EXPECT_TRUE(o->follow);
  EXPECT_TRUE(o->previous);
  EXPECT_TRUE(o->timestamps);
  EXPECT_EQ(o->tail_lines, 10);
  EXPECT_EQ(o->limit_bytes, 500);
  EXPECT_FALSE(o->since_nanos);
  EXPECT_EQ(o->stream, StreamFilter::kAll);

  o = options("sinceSeconds=10", 1000 * kSecond);
  ASSERT_TRUE(o);
  EXPECT_EQ(o->since_nanos, 990 * kSecond);
  o = options("sinceTime=2026-01-02T03:04:05Z&stream=Stderr");
  ASSERT_TRUE(o);
  EXPECT_EQ(o->since_nanos, parseRfc3339("2026-01-02T03:04:05.000Z"));
  EXPECT_EQ(o->stream, StreamFilter::kStderr);
  // The kubelet's older name, and its "all".
  o = options("tail=3");
  ASSERT_TRUE(o);
  EXPECT_EQ(o->tail_lines, 3);
  o = options("tail=all");
  ASSERT_TRUE(o);
  EXPECT_FALSE(o->tail_lines);
}

TEST(LogOptions, BadValuesAreRefusedNamingTheParameter) {
  EXPECT_NE(errorOf("tailLines=-1")
                .find("tailLines: Invalid value: -1: must be greater than or "
                      "equal to 0"),
            std::string::npos)
      << errorOf("tailLines=-1");
  EXPECT_NE(errorOf("limitBytes=0").find("limitBytes: Invalid value: 0: must be greater than 0"),
            std::string::npos);
  EXPECT_NE(errorOf("sinceSeconds=0").find("sinceSeconds"), std::string::npos);
  EXPECT_NE(errorOf("sinceSeconds=5&sinceTime=2026-01-02T03:04:05Z")
                .find("at most one of `sinceTime` or `sinceSeconds` may be specified"),
            std::string::npos);
  EXPECT_NE(errorOf("sinceTime=yesterday").find("sinceTime"), std::string::npos);
  EXPECT_NE(errorOf("stream=Both").find("stream: Unsupported value: \"Both\""), std::string::npos);
  EXPECT_NE(errorOf("stream=Stdout&tailLines=1").find("tailLines"), std::string::npos);
  EXPECT_NE(errorOf("tailLines=99999999999999999999").find("tailLines"), std::string::npos);
  EXPECT_NE(errorOf("follow=maybe").find("follow"), std::string::npos);
  EXPECT_NE(errorOf("limitBytes=-5").find("limitBytes"), std::string::npos);
}

TEST(LogTime, ParsesRfc3339AndPrintsFixedWidthNanos) {
  EXPECT_EQ(parseRfc3339("1970-01-01T00:00:00Z"), 0);
  EXPECT_EQ(parseRfc3339("1970-01-01T00:00:01.5Z"), kSecond + kSecond / 2);
  EXPECT_EQ(parseRfc3339("1970-01-01T01:00:00+01:00"), 0);
  EXPECT_EQ(parseRfc3339("2016-10-06T00:17:09.669794202Z"), 1475713029669794202);
  for (const char* bad : {"", "2016-10-06", "2016-13-06T00:17:09Z", "2016-02-30T00:17:09Z",
                          "2016-10-06T00:17:09", "2016-10-06T00:17:09.Z", "2016-10-06T24:00:00Z",
                          "2016-10-06T00:17:09Zjunk", "2016-10-06T00:17:09+1:00"}) {
    EXPECT_FALSE(parseRfc3339(bad)) << bad;
  }
  std::string out;
  appendTimestamp(out, 1475713029669794202);
  EXPECT_EQ(out, "2016-10-06T00:17:09.669794202Z");
  out.clear();
  appendTimestamp(out, parseRfc3339("2024-02-29T23:59:59.1Z").value_or(0));
  EXPECT_EQ(out, "2024-02-29T23:59:59.100000000Z");
}

TEST(CriLines, PayloadOnlyPartialsJoinedMalformedSkipped) {
  std::string log = cri("2026-01-01T00:00:00.1Z", "stdout", "F", "hello") +
                    "garbage without fields\n" +
                    cri("2026-01-01T00:00:00.2Z", "stderr", "P", "first ") +
                    cri("notatime-xxxxxxxxxxxxxxxx", "stdout", "F", "bad time") +
                    cri("2026-01-01T00:00:00.3Z", "stderr", "F", "second") +
                    cri("2026-01-01T00:00:00.4Z", "stdin", "F", "bad stream") +
                    "2026-01-01T00:00:00.5Z stdout F\n" +  // no content field
                    cri("2026-01-01T00:00:00.6Z", "stdout", "F", "") +
                    cri("2026-01-01T00:00:00.7Z", "stdout", "F:x", "tag with more parts");
  EXPECT_EQ(criLogMessages(log), "hello\nfirst second\n\ntag with more parts\n");
}

TEST(CriLines, TimestampsPrefixTheFirstPieceOfAJoinedLine) {
  LogOptions o{.timestamps = true};
  CriDecoder d(o);
  std::string out;
  d.decode("2026-01-01T00:00:00.1Z stdout P one ", out);
  d.decode("2026-01-01T00:00:00.2Z stderr F err", out);
  d.decode("2026-01-01T00:00:00.3Z stdout F two", out);
  d.decode("2026-01-01T00:00:01Z stdout F three", out);
  EXPECT_EQ(out,
            "2026-01-01T00:00:00.100000000Z one "
            "2026-01-01T00:00:00.200000000Z err\n"
            "two\n"
            "2026-01-01T00:00:01.000000000Z three\n");
}

TEST(CriLines, StreamAndSinceFilter) {
  std::string log = cri("2026-01-01T00:00:01Z", "stdout", "F", "out1") +
                    cri("2026-01-01T00:00:02Z", "stderr", "F", "err2") +
                    cri("2026-01-01T00:00:03Z", "stdout", "F", "out3") +
                    cri("2026-01-01T00:00:04Z", "stderr", "F", "err4");
  auto decodeWith = [&log](const LogOptions& o) {
    CriDecoder d(o);
    std::string out;
    for (size_t at = 0; at < log.size();) {
      size_t nl = log.find('\n', at);
      d.decode(std::string_view(log).substr(at, nl - at), out);
      at = nl + 1;
    }
    return out;
  };
  EXPECT_EQ(decodeWith({.stream = StreamFilter::kStdout}), "out1\nout3\n");
  EXPECT_EQ(decodeWith({.stream = StreamFilter::kStderr}), "err2\nerr4\n");
  EXPECT_EQ(decodeWith({.since_nanos = parseRfc3339("2026-01-01T00:00:02Z")}),
            "err2\nout3\nerr4\n");
  EXPECT_EQ(decodeWith({.since_nanos = parseRfc3339("2026-01-01T00:00:03Z"),
                        .stream = StreamFilter::kStderr}),
            "err4\n");
}

TEST(LogFiles, RotatedFilesComeByTimeThenIndexThenTheLiveOne) {
  TempDir t;
  for (const char* name : {"2.log", "2.log.20260101-000002", "2.log.20260101-000001.10",
                           "2.log.20260101-000001", "2.log.20260101-000001.2", "1.log",
                           "12.log.20260101-000000", "2.log.bak", "2.log.20260101-00000x"}) {
    t.write(name, name);
  }
  auto files = openRunLogFiles(t.path(), 2);
  ASSERT_TRUE(files) << files.error().message();
  std::vector<std::string> names;
  for (const auto& f : *files) {
    names.push_back(std::filesystem::path(f.path).filename());
  }
  EXPECT_EQ(names, (std::vector<std::string>{"2.log.20260101-000001", "2.log.20260101-000001.2",
                                             "2.log.20260101-000001.10", "2.log.20260101-000002",
                                             "2.log"}));
  auto none = openRunLogFiles(t.path() + "/missing", 0);
  ASSERT_TRUE(none);
  EXPECT_TRUE(none->empty());
}

// N lines "line I" over `files` files of the run (the last one live).
void writeNumbered(const TempDir& t, int lines, int files, const std::string& tag = "F") {
  std::vector<std::string> text(static_cast<size_t>(files));
  for (int i = 0; i < lines; i++) {
    text[static_cast<size_t>(i * files / lines)] +=
        cri("2026-01-01T00:00:00.1Z", "stdout", tag, "line " + std::to_string(i));
  }
  for (int f = 0; f < files; f++) {
    std::string name = f + 1 == files ? "0.log" : "0.log.20260101-00000" + std::to_string(f);
    t.write(name, text[static_cast<size_t>(f)]);
  }
}

std::string numbered(int from, int to) {
  std::string out;
  for (int i = from; i < to; i++) {
    out += "line " + std::to_string(i) + "\n";
  }
  return out;
}

TEST(LogStream, ReadsRotatedFilesThenTheLiveOneInSmallPieces) {
  TempDir t;
  writeNumbered(t, 3000, 3);
  auto s = openStream(t.path(), 0, {});
  ASSERT_TRUE(s);
  EXPECT_EQ(readAll(*s, 100), numbered(0, 3000));
}

TEST(LogStream, TailReadsBackwardsOverManyBlocksAndFiles) {
  TempDir t;
  // ~2.2 MiB in three files: the tail crosses 64 KiB blocks and a file boundary.
  writeNumbered(t, 60000, 3);
  for (int64_t n : {0, 1, 7, 25000, 45000, 60000, 100000}) {
    auto s = openStream(t.path(), 0, {.tail_lines = n});
    ASSERT_TRUE(s);
    int from = static_cast<int>(std::max<int64_t>(0, 60000 - n));
    EXPECT_EQ(readAll(*s), numbered(from, 60000)) << "tailLines=" << n;
  }
}

TEST(LogStream, LimitBytesCapsTheDecodedOutput) {
  TempDir t;
  writeNumbered(t, 1000, 2);
  auto s = openStream(t.path(), 0, {.limit_bytes = 20});
  ASSERT_TRUE(s);
  EXPECT_EQ(readAll(*s), numbered(0, 3).substr(0, 20));  // "line 0\nline 1\nline 2"
  // The timestamps count: the kubelet cuts what it writes.
  s = openStream(t.path(), 0, {.timestamps = true, .limit_bytes = 35});
  ASSERT_TRUE(s);
  EXPECT_EQ(readAll(*s), "2026-01-01T00:00:00.100000000Z line");
}

TEST(LogStream, NoFilesIsAnEmptyLog) {
  TempDir t;
  auto s = openStream(t.path() + "/nothing", 0, {});
  ASSERT_TRUE(s);
  State last = State::kData;
  EXPECT_EQ(readAll(*s, 1024, &last), "");
  EXPECT_EQ(last, State::kEnd);
}

TEST(LogStream, AnOverlongLineIsSkippedNotHeld) {
  TempDir t;
  std::string huge(LogStream::kMaxLine + LogStream::kBlock + 10, 'x');
  t.write("0.log", cri("2026-01-01T00:00:00Z", "stdout", "F", "before") + huge + "\n" +
                       cri("2026-01-01T00:00:00Z", "stdout", "F", "after"));
  auto s = openStream(t.path(), 0, {});
  ASSERT_TRUE(s);
  EXPECT_EQ(readAll(*s), "before\nafter\n");
}

// Follows until kEnd, waiting on the stream's fd as the server does.
std::string follow(LogStream& s) {
  std::string all, piece;
  for (int waits = 0; waits < 100000;) {
    piece.clear();
    auto st = s.read(piece, 4096);
    if (!st) {
      ADD_FAILURE() << st.error().message();
      break;
    }
    all += piece;
    if (*st == State::kEnd) {
      return all;
    }
    if (*st == State::kWait) {
      waits++;
      pollfd p{.fd = s.waitFd(), .events = POLLIN, .revents = 0};
      (void)::poll(&p, 1, static_cast<int>(s.pollAfter().count()));  // either wakes us
    }
  }
  ADD_FAILURE() << "the followed log did not end";
  return all;
}

TEST(LogStream, FollowGetsEveryLineOnceInOrderAcrossRotations) {
  TempDir t;
  const int kLines = 20000;
  std::atomic<bool> writing{true};
  auto writer = isolation::CriLogWriter::open(t.path() + "/0.log");
  ASSERT_TRUE(writer) << writer.error().message();
  // Small files, kept: a rotation every ~100 lines, many in one second (.1, .2, ...).
  writer->rotateAt(4096, 100000);
  auto s = openStream(t.path(), 0, {.follow = true}, [&writing] { return writing.load(); });
  ASSERT_TRUE(s);
  std::thread w([&] {
    for (int i = 0; i < kLines; i++) {
      auto fed = writer->feed(isolation::Stream::kStdout, "line " + std::to_string(i) + "\n");
      if (!fed) {
        ADD_FAILURE() << fed.error().message();
        break;
      }
      if (i % 1000 == 0) {
        std::this_thread::yield();
      }
    }
    writing = false;
  });
  std::string got = follow(*s);
  w.join();
  size_t rotated = 0;
  for (const auto& e : std::filesystem::directory_iterator(t.path())) {
    rotated += e.path().filename().string().starts_with("0.log.") ? 1 : 0;
  }
  EXPECT_GT(rotated, 100u);
  EXPECT_TRUE(got == numbered(0, kLines))
      << "got " << got.size() << " bytes, want " << numbered(0, kLines).size();
}

TEST(LogStream, FollowWaitsThenEndsWhenTheContainerStops) {
  TempDir t;
  t.write("0.log", cri("2026-01-01T00:00:00Z", "stdout", "F", "first"));
  std::atomic<bool> running{true};
  std::atomic<int> asked{0};
  auto s = openStream(t.path(), 0, {.follow = true}, [&] {
    asked++;
    return running.load();
  });
  ASSERT_TRUE(s);
  ASSERT_GE(s->waitFd(), 0);
  State last = State::kData;
  EXPECT_EQ(readAll(*s, 4096, &last), "first\n");
  EXPECT_EQ(last, State::kWait);
  EXPECT_GE(asked.load(), 1);
  // A write wakes the watch; the line comes, then it waits again.
  std::ofstream(t.path() + "/0.log", std::ios::app)
      << cri("2026-01-01T00:00:01Z", "stdout", "F", "second");
  pollfd p{.fd = s->waitFd(), .events = POLLIN, .revents = 0};
  EXPECT_EQ(::poll(&p, 1, 5000), 1);
  EXPECT_EQ(readAll(*s, 4096, &last), "second\n");
  EXPECT_EQ(last, State::kWait);
  // The last line written just before it stopped is still read, then kEnd.
  std::ofstream(t.path() + "/0.log", std::ios::app)
      << cri("2026-01-01T00:00:02Z", "stdout", "F", "last");
  running = false;
  EXPECT_EQ(readAll(*s, 4096, &last), "last\n");
  EXPECT_EQ(last, State::kEnd);
}

TEST(LogStream, FollowFromTheTail) {
  TempDir t;
  writeNumbered(t, 100, 1);
  std::atomic<bool> running{true};
  auto s = openStream(t.path(), 0, {.follow = true, .tail_lines = 2},
                      [&running] { return running.load(); });
  ASSERT_TRUE(s);
  State last = State::kData;
  EXPECT_EQ(readAll(*s, 4096, &last), numbered(98, 100));
  EXPECT_EQ(last, State::kWait);
  std::ofstream(t.path() + "/0.log", std::ios::app)
      << cri("2026-01-01T00:00:00Z", "stdout", "F", "line 100");
  running = false;
  EXPECT_EQ(readAll(*s, 4096, &last), numbered(100, 101));
  EXPECT_EQ(last, State::kEnd);
}

size_t heapInUse() {
  struct mallinfo2 m = ::mallinfo2();
  return m.uordblks + m.hblkhd;
}

TEST(LogStream, A100MiBLogStreamsInConstantMemory) {
  TempDir t;
  std::string line = cri("2026-01-01T00:00:00.123456789Z", "stdout", "F", std::string(90, 'x'));
  {
    std::string chunk;
    while (chunk.size() < (1 << 20)) {
      chunk += line;
    }
    std::ofstream f(t.path() + "/0.log", std::ios::binary);
    for (int i = 0; i < 100; i++) {
      f << chunk;
    }
  }
  size_t file_size = std::filesystem::file_size(t.path() + "/0.log");
  size_t lines = file_size / line.size();
  size_t base = heapInUse();
  size_t peak = base;
  auto s = openStream(t.path(), 0, {});
  ASSERT_TRUE(s);
  std::string piece;
  size_t total = 0;
  for (;;) {
    piece.clear();
    auto st = s->read(piece, size_t{64} * 1024);
    ASSERT_TRUE(st);
    total += piece.size();
    peak = std::max(peak, heapInUse());
    if (*st == State::kEnd) {
      break;
    }
  }
  EXPECT_EQ(total, lines * 91);
  EXPECT_LT(peak - base, 4u << 20) << "the reader held " << (peak - base) << " bytes";
}

// A pod of one container "app" in the snapshot, and its log dir.
struct EndpointFixture {
  TempDir logs;
  SnapshotPublisher pods;
  server::Endpoints endpoints;

  explicit EndpointFixture(const ContainerStatus& status) {
    PodSnapshot p;
    p.uid = "u1";
    p.namespace_ = "ns";
    p.name = "web";
    p.containers = {"app"};
    p.init_containers = {"setup"};
    p.status.container_statuses = {status};
    pods.update(std::move(p));
    pods.publish();
    addLogEndpoints(endpoints, pods, logs.path());
    std::filesystem::create_directories(logs.path() + "/ns_web_u1/app");
  }
  void log(int run, const std::string& text) const {
    logs.write("ns_web_u1/app/" + std::to_string(run) + ".log", text);
  }
  server::Response get(std::vector<std::string> params, const std::string& query = "") {
    server::Request req{.method = "GET", .params = std::move(params)};
    auto q = server::Query::parse(query);
    EXPECT_TRUE(q);
    req.query = *q;
    std::optional<server::Response> got;
    endpoints.container_logs(req, [&got](server::Response r) { got = std::move(r); });
    EXPECT_TRUE(got.has_value());
    return got ? std::move(*got) : server::Response{};
  }
  static std::string body(server::Response& r) {
    std::string all = r.body;
    if (r.stream) {
      all += readAll(static_cast<LogStream&>(*r.stream));
    }
    return all;
  }
};

ContainerStatus runningApp(int restarts) {
  ContainerStatus s;
  s.name = "app";
  s.restart_count = restarts;
  s.state.kind = ContainerState::Kind::kRunning;
  if (restarts > 0) {
    s.last_state.kind = ContainerState::Kind::kTerminated;
  }
  return s;
}

TEST(LogsEndpoint, ServesTheCurrentRunAndThePrevious) {
  EndpointFixture f(runningApp(1));
  f.log(0, cri("2026-01-01T00:00:00Z", "stdout", "F", "zero"));
  f.log(1, cri("2026-01-01T00:00:01Z", "stdout", "F", "one"));
  auto r = f.get({"ns", "web", "app"});
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.content_type.rfind("text/plain", 0), 0u);
  EXPECT_EQ(EndpointFixture::body(r), "one\n");
  r = f.get({"ns", "web", "app"}, "previous=true&timestamps=true");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(EndpointFixture::body(r), "2026-01-01T00:00:00.000000000Z zero\n");
  // With the pod's uid in the path too.
  r = f.get({"ns", "web", "u1", "app"});
  EXPECT_EQ(EndpointFixture::body(r), "one\n");
}

TEST(LogsEndpoint, AnswersLikeTheKubeletForWhatIsNotThere) {
  EndpointFixture f(runningApp(0));
  auto r = f.get({"ns", "nope", "app"});
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(r.body, "pod \"nope\" does not exist\n");
  r = f.get({"other", "web", "app"});
  EXPECT_EQ(r.status, 404);
  r = f.get({"ns", "web", "sidecar"});
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(r.body, "container \"sidecar\" not found in pod \"web\"\n");
  r = f.get({"ns", "web", "setup"});  // in the spec, no status yet
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(r.body, "container \"setup\" in pod \"web\" is not available\n");
  r = f.get({"ns", "web", "app"}, "previous=true");
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(r.body, "previous terminated container \"app\" in pod \"web\" not found\n");
  // Options the API's validation refuses: 422; a query that does not decode: 400.
  r = f.get({"ns", "web", "app"}, "tailLines=-1");
  EXPECT_EQ(r.status, 422);
  EXPECT_NE(r.body.find("tailLines"), std::string::npos) << r.body;
  r = f.get({"ns", "web", "app"}, "sinceSeconds=5&sinceTime=2026-01-02T03:04:05Z");
  EXPECT_EQ(r.status, 422);
  r = f.get({"ns", "web", "app"}, "stream=Both");
  EXPECT_EQ(r.status, 422);
  r = f.get({"ns", "web", "app"}, "tailLines=ten");
  EXPECT_EQ(r.status, 400);
  EXPECT_NE(r.body.find("tailLines"), std::string::npos) << r.body;
  r = f.get({"ns", "web", "app"}, "sinceTime=yesterday");
  EXPECT_EQ(r.status, 400);
  EXPECT_NE(r.body.find("sinceTime"), std::string::npos) << r.body;
  EXPECT_FALSE(r.stream);
}

TEST(LogsEndpoint, AWaitingContainerHasNoLogYet) {
  ContainerStatus s;
  s.name = "app";
  s.state = {.kind = ContainerState::Kind::kWaiting, .reason = "ContainerCreating"};
  EndpointFixture f(s);
  auto r = f.get({"ns", "web", "app"});
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(r.body, "container \"app\" in pod \"web\" is waiting to start: ContainerCreating\n");
  s.state.reason = "ImagePullBackOff";
  EndpointFixture g(s);
  r = g.get({"ns", "web", "app"});
  EXPECT_EQ(r.body,
            "container \"app\" in pod \"web\" is waiting to start: trying and failing to pull "
            "image\n");
}

TEST(LogsEndpoint, BackingOffTheLogIsTheRunThatDied) {
  ContainerStatus s;
  s.name = "app";
  s.restart_count = 2;
  s.state = {.kind = ContainerState::Kind::kWaiting, .reason = "CrashLoopBackOff"};
  s.last_state.kind = ContainerState::Kind::kTerminated;
  EndpointFixture f(s);
  f.log(1, cri("2026-01-01T00:00:01Z", "stdout", "F", "run one"));
  f.log(2, cri("2026-01-01T00:00:02Z", "stdout", "F", "run two"));
  auto r = f.get({"ns", "web", "app"});
  EXPECT_EQ(EndpointFixture::body(r), "run two\n");
  // lastState is that run too, as with the kubelet.
  r = f.get({"ns", "web", "app"}, "previous=true");
  EXPECT_EQ(EndpointFixture::body(r), "run two\n");
}

TEST(LogsEndpoint, AFollowedLogEndsWhenTheRunIsNoLongerRunning) {
  EndpointFixture f(runningApp(0));
  f.log(0, cri("2026-01-01T00:00:00Z", "stdout", "F", "hi"));
  auto r = f.get({"ns", "web", "app"}, "follow=true");
  ASSERT_TRUE(r.stream);
  State last = State::kData;
  EXPECT_EQ(readAll(static_cast<LogStream&>(*r.stream), 4096, &last), "hi\n");
  EXPECT_EQ(last, State::kWait);
  // The container restarted: run 0 is over.
  PodSnapshot p = *f.pods.current()->pods.at("u1");
  p.status.container_statuses[0] = runningApp(1);
  f.pods.update(std::move(p));
  f.pods.publish();
  EXPECT_EQ(readAll(static_cast<LogStream&>(*r.stream), 4096, &last), "");
  EXPECT_EQ(last, State::kEnd);
}

}  // namespace
}  // namespace kernelet::agent::logs
