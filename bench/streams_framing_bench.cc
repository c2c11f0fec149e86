// The agent's stream framings alone, on the host, with no socket, no TLS and
// no process (Google Benchmark): what one hop of bench/run-streams costs the
// agent's thread per byte before any I/O.
//   - SPDY out: a chunk of a process's output into DATA frames
//     (spdy::Session::send + takeOutput), parsed back as the client would;
//   - SPDY in: a client's DATA frames through Session::receive, handed out
//     and consumed (the WINDOW_UPDATEs included);
//   - WebSocket: a chunk into a channel message and a client's message back.
// Sizes: 16 KiB (one TLS record), 32 KiB (the agent's old pump chunk), 64 KiB
// (a pipe's capacity, the chunk now).
//
//   streams_framing_bench [--benchmark_filter=...]
#include <benchmark/benchmark.h>

#include <string>

#include "agent/streams/ws_channels.h"
#include "spdy/frames.h"
#include "spdy/header_block.h"
#include "spdy/session.h"

namespace {

using kernelet::spdy::DataFrame;
using kernelet::spdy::FrameParser;
using kernelet::spdy::HeaderDeflater;
using kernelet::spdy::Session;
using kernelet::spdy::SynStream;

// A session with stream 1 open, as kubectl's first SYN_STREAM leaves it.
void openStream(Session& s, benchmark::State& state) {
  HeaderDeflater d;
  auto block = d.compress({{"streamtype", "stdout"}});
  if (!block) {
    state.SkipWithError("compress");
    return;
  }
  auto r = s.receive(kernelet::spdy::serialize(SynStream{.stream_id = 1, .header_block = *block}));
  if (!r) {
    state.SkipWithError(r.error().message().c_str());
    return;
  }
  (void)s.takeEvents();  // the kOpened we know of
  (void)s.takeOutput();  // the SYN_REPLY nobody reads here
}

void spdyOut(benchmark::State& state) {
  Session s;
  openStream(s, state);
  FrameParser client;
  std::string chunk(static_cast<size_t>(state.range(0)), 'x');
  for (auto _ : state) {
    if (!s.send(1, chunk)) {
      state.SkipWithError("send");
      break;
    }
    client.feed(s.takeOutput());
    for (;;) {
      auto f = client.next();
      if (!f || !*f) {
        break;
      }
      benchmark::DoNotOptimize(*f);
    }
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * state.range(0));
}

void spdyIn(benchmark::State& state) {
  Session s;
  openStream(s, state);
  std::string frame = kernelet::spdy::serialize(
      DataFrame{.stream_id = 1, .data = std::string(static_cast<size_t>(state.range(0)), 'x')});
  for (auto _ : state) {
    if (!s.receive(frame)) {
      state.SkipWithError("receive");
      break;
    }
    for (auto& ev : s.takeEvents()) {
      s.consumed(ev.stream_id, ev.data.size());
    }
    benchmark::DoNotOptimize(s.takeOutput());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * state.range(0));
}

void webSocket(benchmark::State& state) {
  auto p = kernelet::agent::streams::channelProtocol("v5.channel.k8s.io");
  if (!p) {
    state.SkipWithError("no v5.channel.k8s.io");
    return;
  }
  std::string chunk(static_cast<size_t>(state.range(0)), 'x');
  for (auto _ : state) {
    std::string out = kernelet::agent::streams::encodeChannelMessage(*p, 1, chunk);
    auto in = kernelet::agent::streams::decodeChannelMessage(*p, out);
    benchmark::DoNotOptimize(in);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * state.range(0));
}

BENCHMARK(spdyOut)->Arg(16 << 10)->Arg(32 << 10)->Arg(64 << 10);
BENCHMARK(spdyIn)->Arg(16 << 10)->Arg(32 << 10)->Arg(64 << 10);
BENCHMARK(webSocket)->Arg(16 << 10)->Arg(32 << 10)->Arg(64 << 10);

}  // namespace

BENCHMARK_MAIN();
