#include "agent/server/authn.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/evp.h>

#include <algorithm>
#include <memory>

namespace kernelet::agent::server {

std::string sha256Hex(const std::string& s) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(s.data(), s.size(), md, &len, EVP_sha256(), nullptr);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (unsigned int i = 0; i < len; i++) {
    out += kHex[md[i] >> 4];
    out += kHex[md[i] & 0xf];
  }
  return out;
}

std::string clientKey(const std::string& address) {
  in6_addr v6{};
  if (::inet_pton(AF_INET6, address.c_str(), &v6) != 1) {
    return address;  // IPv4, or not an address at all
  }
  if (IN6_IS_ADDR_V4MAPPED(&v6)) {
    char v4[INET_ADDRSTRLEN] = {};
    ::inet_ntop(AF_INET, &v6.s6_addr[12], v4, sizeof v4);
    return v4;
  }
  std::fill(&v6.s6_addr[8], &v6.s6_addr[16], 0);
  char text[INET6_ADDRSTRLEN] = {};
  ::inet_ntop(AF_INET6, &v6, text, sizeof text);
  return std::string(text) + "/64";
}

Authenticator::Authenticator(AuthnOptions options, Post post, Clock clock)
    : options_(options), post_(std::move(post)), clock_(std::move(clock)) {
  if (!clock_) {
    clock_ = [] { return std::chrono::steady_clock::now(); };
  }
  shared_ = {static_cast<double>(options_.review_burst), clock_()};
}

namespace {

// Refills a bucket up to `burst` at `qps` for the time since it was last refilled.
void refill(double& tokens, std::chrono::steady_clock::time_point& refilled,
            std::chrono::steady_clock::time_point now, double qps, int burst) {
  std::chrono::duration<double> since = now - refilled;
  refilled = now;
  tokens = std::min<double>(burst, tokens + since.count() * qps);
}

}  // namespace

Authenticator::Bucket& Authenticator::peerBucket(const std::string& peer,
                                                 std::chrono::steady_clock::time_point now) {
  if (auto it = peers_.find(peer); it != peers_.end()) {
    return it->second;
  }
  if (peers_.size() >= options_.peer_buckets) {
    // A bucket that has refilled to its burst holds nothing a new one would
    // not: those go first; if none has, one is dropped, so the map stays
    // bounded however many addresses a client uses (it only gains a burst).
    std::erase_if(peers_, [&](const auto& kv) {
      std::chrono::duration<double> since = now - kv.second.refilled;
      return kv.second.tokens + since.count() * options_.peer_review_qps >=
             options_.peer_review_burst;
    });
    if (!peers_.empty() && peers_.size() >= options_.peer_buckets) {
      peers_.erase(peers_.begin());
    }
  }
  return peers_[peer] = {static_cast<double>(options_.peer_review_burst), now};
}

bool Authenticator::takeReview(const std::string& peer) {
  if (options_.review_qps <= 0) {
    return true;  // no budget at all
  }
  auto now = clock_();
  Bucket* mine = nullptr;
  if (options_.peer_review_qps > 0) {
    mine = &peerBucket(peer, now);
    refill(mine->tokens, mine->refilled, now, options_.peer_review_qps, options_.peer_review_burst);
    if (mine->tokens < 1) {
      return false;
    }
  }
  refill(shared_.tokens, shared_.refilled, now, options_.review_qps, options_.review_burst);
  if (shared_.tokens < 1) {
    return false;
  }
  shared_.tokens -= 1;
  if (mine != nullptr) {
    mine->tokens -= 1;
  }
  return true;
}

void Authenticator::remember(const std::string& key, const TokenAnswer& answer) {
  auto now = clock_();
  if (cache_.size() >= options_.cache_size) {
    // Expired entries first; if none, the cache is full of live answers and
    // one is dropped (it is asked again when needed): the size stays bounded
    // however many distinct tokens arrive.
    std::erase_if(cache_, [&](const auto& kv) { return kv.second.expires <= now; });
    if (cache_.size() >= options_.cache_size) {
      cache_.erase(cache_.begin());
    }
  }
  auto ttl = answer.authenticated ? options_.cache_ttl : options_.failure_ttl;
  if (ttl.count() > 0) {
    cache_[key] = {answer, now + ttl};
  }
}

void Authenticator::authenticate(const Credentials& creds, std::function<void(AuthnResult)> done) {
  if (creds.cert_present && options_.x509) {
    if (creds.cert_verified && !creds.cert_cn.empty()) {
      done({UserInfo{creds.cert_cn, creds.cert_orgs}, ""});
      return;
    }
    if (creds.cert_verified) {
      // As the kubelet's x509 authenticator: no CN, no user (an empty user
      // would be judged by its groups alone).
      done({std::nullopt, "x509: the client certificate has no common name"});
      return;
    }
    // A certificate the CA did not sign is an error, not "no credentials".
    done({std::nullopt, "x509: " + creds.cert_error});
    return;
  }
  if (creds.bearer && options_.tokens != nullptr) {
    std::string key = sha256Hex(*creds.bearer);
    if (auto it = cache_.find(key); it != cache_.end()) {
      if (it->second.expires > clock_()) {
        const TokenAnswer& a = it->second.answer;
        done(a.authenticated ? AuthnResult{a.user, ""} : AuthnResult{std::nullopt, a.error});
        return;
      }
      cache_.erase(it);
    }
    if (auto it = waiting_.find(key); it != waiting_.end()) {
      it->second.push_back(std::move(done));  // answered with the review in flight
      return;
    }
    if (!takeReview(creds.peer)) {
      done({std::nullopt, "too many token reviews", true});
      return;
    }
    reviews_++;
    waiting_[key].push_back(std::move(done));
    options_.tokens->review(*creds.bearer, [this, key](Result<TokenAnswer> r) {
      post_([this, key, r = std::move(r)] {
        AuthnResult result;
        if (!r) {
          result = {std::nullopt, "token review failed: " + r.error().message()};
        } else {
          remember(key, *r);
          result = r->authenticated
                       ? AuthnResult{r->user, ""}
                       : AuthnResult{std::nullopt,
                                     "invalid bearer token" +
                                         (r->error.empty() ? std::string() : ": " + r->error)};
        }
        auto it = waiting_.find(key);
        if (it == waiting_.end()) {
          return;
        }
        auto waiters = std::move(it->second);
        waiting_.erase(it);
        for (auto& w : waiters) {
          w(result);
        }
      });
    });
    return;
  }
  if (creds.bearer || creds.cert_present) {
    // Credentials this server cannot check are not made anonymous.
    done({std::nullopt, creds.bearer ? "bearer tokens are not accepted (no token webhook)"
                                     : "client certificates are not accepted (no client CA)"});
    return;
  }
  if (options_.anonymous) {
    done({UserInfo{"system:anonymous", {"system:unauthenticated"}}, ""});
    return;
  }
  done({std::nullopt, "no credentials"});
}

}  // namespace kernelet::agent::server
