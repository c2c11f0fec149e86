#include "agent/server/authn.h"

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

Authenticator::Authenticator(AuthnOptions options, Post post, Clock clock)
    : options_(options), post_(std::move(post)), clock_(std::move(clock)) {
  if (!clock_) {
    clock_ = [] { return std::chrono::steady_clock::now(); };
  }
  bucket_ = options_.review_burst;
  refilled_ = clock_();
}

bool Authenticator::takeReview() {
  if (options_.review_qps <= 0) {
    return true;
  }
  auto now = clock_();
  std::chrono::duration<double> since = now - refilled_;
  refilled_ = now;
  bucket_ = std::min<double>(options_.review_burst, bucket_ + since.count() * options_.review_qps);
  if (bucket_ < 1) {
    return false;
  }
  bucket_ -= 1;
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
    if (!takeReview()) {
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
