#include "agent/server/authz.h"

namespace kernelet::agent::server {
namespace {

std::string cacheKey(const UserInfo& user, const std::string& verb, const std::string& sub) {
  // Each part with its length before it: a name may hold any byte (a NUL in
  // a TokenReview's JSON, or in a certificate's CN), and no two identities
  // may share a key, or one would be given the other's cached answer.
  std::string key;
  auto part = [&key](const std::string& s) {
    key += std::to_string(s.size());
    key += ':';
    key += s;
  };
  part(user.name);
  key += std::to_string(user.groups.size()) + '#';
  for (const auto& g : user.groups) {
    part(g);
  }
  part(verb);
  part(sub);
  return key;
}

}  // namespace

std::string forbiddenMessage(const std::string& user, const AccessAttributes& access) {
  std::string subs;
  for (const auto& s : access.subresources) {
    subs += (subs.empty() ? "" : " ") + s;
  }
  return "Forbidden (user=" + user + ", verb=" + access.verb +
         ", resource=nodes, subresource(s)=[" + subs + "])";
}

Authorizer::Authorizer(AuthzOptions options, Post post, Clock clock)
    : options_(options), post_(std::move(post)), clock_(std::move(clock)) {
  if (!clock_) {
    clock_ = [] { return std::chrono::steady_clock::now(); };
  }
}

void Authorizer::remember(const std::string& key, const AccessAnswer& answer) {
  auto now = clock_();
  if (cache_.size() >= options_.cache_size) {
    std::erase_if(cache_, [&](const auto& kv) { return kv.second.expires <= now; });
    if (cache_.size() >= options_.cache_size) {
      cache_.erase(cache_.begin());
    }
  }
  auto ttl = answer.allowed ? options_.allowed_ttl : options_.denied_ttl;
  if (ttl.count() > 0) {
    cache_[key] = {answer, now + ttl};
  }
}

void Authorizer::authorize(const UserInfo& user, const AccessAttributes& access,
                           std::function<void(AuthzResult)> done) {
  if (options_.reviewer == nullptr) {
    done({true, 200, ""});
    return;
  }
  tryFrom(std::make_shared<const UserInfo>(user), std::make_shared<const AccessAttributes>(access),
          0, std::make_shared<std::function<void(AuthzResult)>>(std::move(done)));
}

void Authorizer::tryFrom(const std::shared_ptr<const UserInfo>& user,
                         const std::shared_ptr<const AccessAttributes>& access, size_t index,
                         const std::shared_ptr<std::function<void(AuthzResult)>>& done) {
  while (index < access->subresources.size()) {
    const std::string& sub = access->subresources[index];
    std::string key = cacheKey(*user, access->verb, sub);
    auto it = cache_.find(key);
    if (it != cache_.end() && it->second.expires <= clock_()) {
      cache_.erase(it);
      it = cache_.end();
    }
    if (it == cache_.end()) {
      reviews_++;
      options_.reviewer->review({*user, access->verb, sub}, [this, user, access, index, done,
                                                             key](Result<AccessAnswer> r) {
        post_([this, user, access, index, done, key, r = std::move(r)] {
          if (!r) {
            (*done)({false, 500,
                     "Authorization error (user=" + user->name + ", verb=" + access->verb +
                         ", resource=nodes, subresource=" + access->subresources[index] +
                         "): " + r.error().message()});
            return;
          }
          remember(key, *r);
          if (r->allowed) {
            (*done)({true, 200, ""});
          } else {
            tryFrom(user, access, index + 1, done);
          }
        });
      });
      return;
    }
    if (it->second.answer.allowed) {
      (*done)({true, 200, ""});
      return;
    }
    index++;
  }
  (*done)({false, 403, forbiddenMessage(user->name, *access)});
}

}  // namespace kernelet::agent::server
