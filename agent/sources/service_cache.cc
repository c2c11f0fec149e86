#include "agent/sources/service_cache.h"

#include "agent/log/log.h"

namespace kernelet::agent {

Result<std::unique_ptr<ServiceCache>> ServiceCache::create(apiclient::ApiClient& client,
                                                           apiclient::ApiLoop& net, EventLoop& loop,
                                                           std::function<void()> synced) {
  std::unique_ptr<ServiceCache> c(new ServiceCache(std::move(synced)));
  TRY(c->to_loop_, LoopQueue::create(loop));
  ServiceCache* self = c.get();
  c->reflector_ = std::make_unique<apiclient::Reflector>(
      client, net, apiclient::ReflectorOptions{.path = "/api/v1/services"},
      [self](const apiclient::ObjectEvent& e) { self->onEvent(e); }, [self] { self->onSynced(); });
  c->reflector_->start();
  return c;
}

ServiceCache::~ServiceCache() {
  if (reflector_) {
    reflector_->stop();  // no event after it returns
  }
}

std::optional<std::vector<apiclient::Service>> ServiceCache::services() const {
  std::lock_guard lock(mu_);
  if (!listed_) {
    return std::nullopt;
  }
  std::vector<apiclient::Service> out;
  out.reserve(services_.size());
  for (const auto& [key, s] : services_) {
    out.push_back(s);
  }
  return out;
}

void ServiceCache::onEvent(const apiclient::ObjectEvent& e) {
  std::pair<std::string, std::string> key{e.namespace_, e.name};
  if (e.type == apiclient::ObjectEvent::Type::kDeleted) {
    std::lock_guard lock(mu_);
    services_.erase(key);
    return;
  }
  auto s = apiclient::decodeService(e.object, "service " + e.namespace_ + "/" + e.name);
  if (!s) {
    // Left out, as a Service the kubelet's informer could not decode would be.
    log::error("Decode service", {{"err", s.error().message()}});
    std::lock_guard lock(mu_);
    services_.erase(key);
    return;
  }
  std::lock_guard lock(mu_);
  services_[key] = std::move(*s);
}

void ServiceCache::onSynced() {
  {
    std::lock_guard lock(mu_);
    if (listed_) {
      return;  // a relist: the containers have what they need already
    }
    listed_ = true;
  }
  log::v(2, "Services listed", {});
  to_loop_->post([this] {
    if (synced_) {
      synced_();
    }
  });
}

}  // namespace kernelet::agent
