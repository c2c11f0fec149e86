#include "agent/app/cluster_sync.h"

#include <set>

#include "agent/log/log.h"

namespace kernelet::agent {

Result<std::unique_ptr<ClusterSync>> ClusterSync::start(const AgentConfig& config,
                                                        const apiclient::ClusterAccess& access,
                                                        EventLoop& loop, apiclient::ApiLoop& net,
                                                        NodeFacts facts, PodsChanged changed,
                                                        std::function<void()> synced) {
  std::unique_ptr<ClusterSync> s(new ClusterSync());
  TRY(s->client_, apiclient::ApiClient::create(
                      access, {.user_agent = std::string("kernelet/") + config.node_name}));
  TRY(s->to_loop_, LoopQueue::create(loop));
  apiclient::ApiClient& client = *s->client_;
  s->events_ = std::make_unique<EventWriter>(client, config.node_name);
  s->mirrors_ = std::make_unique<MirrorPods>(client, facts.name);
  s->status_ = std::make_unique<StatusWriter>(client, *s->mirrors_, *s->to_loop_);
  StatusWriter* status = s->status_.get();
  s->heartbeat_ = std::make_unique<NodeHeartbeat>(
      client, config, std::move(facts), *s->events_,
      [status](const std::string& node_uid) { status->nodeBeat(node_uid); });
  s->pods_ =
      std::make_unique<ApiPodSource>(client, net, config.node_name, *s->to_loop_, *s->status_,
                                     *s->mirrors_, std::move(changed), std::move(synced));
  return s;
}

ClusterSync::~ClusterSync() {
  // Every thread is told first, so that their last API calls overlap; then
  // the watch stops (it feeds the writer and the mirrors), and each thread is
  // joined before what it uses goes.
  if (heartbeat_) {
    heartbeat_->stop();
  }
  if (status_) {
    status_->stop();
  }
  if (events_) {
    events_->stop();
  }
  pods_.reset();
  log::v(4, "Stopping the heartbeat and the writer");
  heartbeat_.reset();  // it reports to the writer and the events
  status_.reset();
  events_.reset();
  log::v(4, "Cluster sync stopped");
}

void ClusterSync::setStaticPods(std::vector<MirrorPod> pods) {
  std::set<std::string> keys;
  for (const auto& m : pods) {
    keys.insert(m.namespace_ + "/" + m.name);
  }
  mirrors_->setStaticPods(std::move(pods));
  status_->retainStatic(keys);
  status_->mirrorsChanged();
}

}  // namespace kernelet::agent
