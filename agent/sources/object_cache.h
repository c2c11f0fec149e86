#pragma once
// The cluster's PodObjects, kept as the kubelet keeps them:
//   - each ConfigMap and Secret a pod refers to has a watch of its own
//     (fieldSelector metadata.name=NAME, what the Node authorizer allows),
//     started on first use and stopped when no pod refers to it any more;
//   - service-account tokens come from the TokenRequest API (bound to the
//     pod), requested and renewed once 80% of their life has passed (or after
//     24 h), as the kubelet's token manager does.
// The watches and the token requests all run on the network thread (ApiLoop):
// no thread per object.
// The loop asks without blocking; `changed` runs on the loop after anything
// arrived or changed, with what did (many changes in a row, one call), so
// only the pods that refer to it need to look again.

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>

#include "agent/sources/pod_objects.h"
#include "apiclient/api_client.h"
#include "apiclient/api_loop.h"
#include "apiclient/reflector.h"
#include "sys/event_loop.h"
#include "sys/loop_queue.h"

namespace kernelet::agent {

class ObjectCache : public PodObjects {
 public:
  // `net` must outlive the cache.
  static Result<std::unique_ptr<ObjectCache>> create(apiclient::ApiClient& client,
                                                     apiclient::ApiLoop& net, EventLoop& loop,
                                                     std::function<void(const PodRefs&)> changed);
  ~ObjectCache() override;  // stops the watches and the token requests

  // From the loop.
  std::optional<ObjectData> object(const ObjectRef& ref) override;
  std::optional<Result<std::string>> token(const TokenRef& ref) override;
  // Keeps what these pods refer to; every other watch and token is dropped.
  void retain(const std::vector<PodRefs>& in_use);

  // For tests and logs.
  size_t watches() const;

 private:
  using Clock = std::chrono::system_clock;
  struct Watch {
    std::unique_ptr<apiclient::Reflector> reflector;
    std::optional<ObjectData> data;  // guarded by mu_; set once the watch synced
  };
  struct Token {
    std::optional<Result<std::string>> value;
    Clock::time_point refresh_at;  // a new one is requested from then on
  };
  ObjectCache(apiclient::ApiClient& client, apiclient::ApiLoop& net,
              std::function<void(const PodRefs&)> changed)
      : client_(client), net_(net), changed_(std::move(changed)), token_timer_(net) {}
  void onEvent(const ObjectRef& ref, const apiclient::ObjectEvent& e);
  void onSynced(const ObjectRef& ref);
  // Under mu_: `ref` changed; the loop hears of it soon.
  void notify(const ObjectRef& ref);
  void notify(const TokenRef& ref);
  void postChanged();
  // On the network thread: requests the tokens that are due, then sleeps
  // until the next one is.
  void scheduleTokens();
  void requestToken(const TokenRef& ref);
  void tokenAnswered(const TokenRef& ref, Token fresh);
  static Token tokenFrom(const TokenRef& ref, const std::string& path,
                         const apiclient::ApiResult<std::string>& answer);

  apiclient::ApiClient& client_;
  apiclient::ApiLoop& net_;
  std::function<void(const PodRefs&)> changed_;
  std::unique_ptr<LoopQueue> to_loop_;
  mutable std::mutex mu_;
  bool stopping_ = false, notify_posted_ = false;
  PodRefs changed_refs_;  // since the loop last heard
  std::map<ObjectRef, std::shared_ptr<Watch>> watches_;
  std::map<TokenRef, Token> tokens_;
  // The network thread's own: the wake-up for the next renewal, and the
  // TokenRequests in flight.
  apiclient::LoopTimer token_timer_;
  std::map<TokenRef, std::shared_ptr<apiclient::AsyncCall>> token_calls_;
};

}  // namespace kernelet::agent
