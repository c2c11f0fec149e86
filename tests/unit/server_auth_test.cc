// Authentication and authorization of the node server with fake reviewers:
// the order of authenticators, the caches' lifetimes (denied cached shorter,
// failures not at all, size bounded) and the kubelet's forbidden message.
#include <gtest/gtest.h>

#include <deque>

#include "agent/server/authn.h"
#include "agent/server/authz.h"

namespace kernelet::agent::server {
namespace {

using namespace std::chrono_literals;

struct FakeClock {
  std::chrono::steady_clock::time_point now = std::chrono::steady_clock::time_point() + 1h;
  Authenticator::Clock fn() {
    return [this] { return now; };
  }
};

// Answers each review later, when the test says so (as the API would, from
// another thread), and counts them.
class FakeTokens : public TokenReviewer {
 public:
  std::map<std::string, TokenAnswer> known;
  bool fail = false;
  int calls = 0;
  bool hold = false;
  std::deque<std::function<void()>> later;  // held answers
  void review(const std::string& token, std::function<void(Result<TokenAnswer>)> done) override {
    calls++;
    auto answer = [this, token, done] {
      if (fail) {
        done(makeError("TokenReview", "", "connection refused"));
        return;
      }
      auto it = known.find(token);
      done(it != known.end() ? it->second : TokenAnswer{false, {}, "token not known"});
    };
    if (hold) {
      later.push_back(answer);
    } else {
      answer();
    }
  }
};

class FakeAccess : public AccessReviewer {
 public:
  std::set<std::string> allowed;  // "user verb subresource"
  std::vector<std::string> asked;
  bool fail = false;
  std::deque<std::function<void()>> later;  // held answers
  bool hold = false;
  void review(const AccessRequest& r, std::function<void(Result<AccessAnswer>)> done) override {
    std::string key = r.user.name + " " + r.verb + " " + r.subresource;
    asked.push_back(key);
    auto answer = [this, key, done] {
      if (fail) {
        done(makeError("SubjectAccessReview", "", "timed out"));
      } else {
        done(AccessAnswer{allowed.contains(key), ""});
      }
    };
    if (hold) {
      later.push_back(answer);
    } else {
      answer();
    }
  }
};

Authenticator::Post inlinePost() {
  return [](std::function<void()> fn) { fn(); };
}

AuthnResult authn(Authenticator& a, const Credentials& c) {
  std::optional<AuthnResult> out;
  a.authenticate(c, [&](AuthnResult r) { out = std::move(r); });
  EXPECT_TRUE(out.has_value());
  return out.value_or(AuthnResult{});
}

TEST(ServerAuthn, CertificatesTokensAnonymousInTheKubeletsOrder) {
  FakeTokens tokens;
  tokens.known["good"] = {true, {"alice", {"devs"}}, ""};
  Authenticator a({.x509 = true, .tokens = &tokens, .anonymous = false}, inlinePost());
  Credentials cert{.cert_present = true,
                   .cert_verified = true,
                   .cert_cn = "system:node:n1",
                   .cert_orgs = {"system:nodes", "x"}};
  auto r = authn(a, cert);
  ASSERT_TRUE(r.user);
  EXPECT_EQ(r.user->name, "system:node:n1");
  EXPECT_EQ(r.user->groups, (std::vector<std::string>{"system:nodes", "x"}));
  // Another CA's certificate is refused, even with anonymous on.
  Authenticator anon({.x509 = true, .tokens = &tokens, .anonymous = true}, inlinePost());
  Credentials other{.cert_present = true,
                    .cert_verified = false,
                    .cert_error = "unable to get local issuer certificate",
                    .cert_cn = "root"};
  r = authn(anon, other);
  EXPECT_FALSE(r.user);
  EXPECT_NE(r.reason.find("issuer"), std::string::npos);
  // A token: reviewed.
  r = authn(a, {.bearer = "good"});
  ASSERT_TRUE(r.user);
  EXPECT_EQ(r.user->name, "alice");
  r = authn(a, {.bearer = "bad"});
  EXPECT_FALSE(r.user);
  // Nothing: 401 unless anonymous is allowed.
  EXPECT_FALSE(authn(a, {}).user);
  r = authn(anon, {});
  ASSERT_TRUE(r.user);
  EXPECT_EQ(r.user->name, "system:anonymous");
  EXPECT_EQ(r.user->groups, std::vector<std::string>{"system:unauthenticated"});
  // A bad token is not turned into anonymous.
  EXPECT_FALSE(authn(anon, {.bearer = "bad"}).user);
  // Without a token webhook, a token is refused, not ignored.
  Authenticator x509only({.x509 = true}, inlinePost());
  EXPECT_FALSE(authn(x509only, {.bearer = "good"}).user);
}

TEST(ServerAuthn, TokenAnswersAreCachedForTheirTtlFailuresShorterErrorsNot) {
  FakeClock clock;
  FakeTokens tokens;
  tokens.known["good"] = {true, {"alice", {}}, ""};
  Authenticator a({.tokens = &tokens, .cache_ttl = 120s, .failure_ttl = 10s}, inlinePost(),
                  clock.fn());
  EXPECT_TRUE(authn(a, {.bearer = "good"}).user);
  EXPECT_TRUE(authn(a, {.bearer = "good"}).user);
  EXPECT_EQ(tokens.calls, 1);
  clock.now += 119s;
  EXPECT_TRUE(authn(a, {.bearer = "good"}).user);
  EXPECT_EQ(tokens.calls, 1);
  clock.now += 2s;  // past cacheTTL: asked again
  EXPECT_TRUE(authn(a, {.bearer = "good"}).user);
  EXPECT_EQ(tokens.calls, 2);
  // Not authenticated: cached, shorter.
  EXPECT_FALSE(authn(a, {.bearer = "bad"}).user);
  EXPECT_FALSE(authn(a, {.bearer = "bad"}).user);
  EXPECT_EQ(tokens.calls, 3);
  clock.now += 11s;
  EXPECT_FALSE(authn(a, {.bearer = "bad"}).user);
  EXPECT_EQ(tokens.calls, 4);
  // A failed review is not an answer: never cached.
  tokens.fail = true;
  EXPECT_FALSE(authn(a, {.bearer = "other"}).user);
  EXPECT_FALSE(authn(a, {.bearer = "other"}).user);
  EXPECT_EQ(tokens.calls, 6);
}

TEST(ServerAuthn, TheCacheIsBounded) {
  FakeTokens tokens;
  Authenticator a({.tokens = &tokens, .cache_size = 16, .review_qps = 0}, inlinePost());
  for (int i = 0; i < 1000; i++) {
    tokens.known["t" + std::to_string(i)] = {true, {"u", {}}, ""};
    EXPECT_TRUE(authn(a, {.bearer = "t" + std::to_string(i)}).user);
  }
  EXPECT_LE(a.cacheEntries(), 16u);
}

TEST(ServerAuthn, DistinctUnknownTokensSpendABoundedReviewBudget) {
  FakeTokens tokens;
  FakeClock clock;
  tokens.known["good"] = {true, {"alice", {}}, ""};
  Authenticator a({.tokens = &tokens, .review_qps = 2, .review_burst = 4}, inlinePost(),
                  clock.fn());
  // A client sending a new bad token each time: the burst, then 429s that
  // ask nothing of the API server.
  for (int i = 0; i < 4; i++) {
    AuthnResult r = authn(a, {.bearer = "bad" + std::to_string(i)});
    EXPECT_FALSE(r.user);
    EXPECT_FALSE(r.throttled);
  }
  AuthnResult over = authn(a, {.bearer = "bad-next"});
  EXPECT_FALSE(over.user);
  EXPECT_TRUE(over.throttled);
  EXPECT_EQ(tokens.calls, 4);
  // Cached answers cost nothing: a known-bad token is still a 401, not a 429.
  AuthnResult cached = authn(a, {.bearer = "bad0"});
  EXPECT_FALSE(cached.user);
  EXPECT_FALSE(cached.throttled);
  // The bucket refills at review_qps: half a second is one more review.
  clock.now += 500ms;
  EXPECT_TRUE(authn(a, {.bearer = "good"}).user);
  EXPECT_TRUE(authn(a, {.bearer = "bad-later"}).throttled);
  clock.now += 10s;  // never more than the burst
  for (int i = 0; i < 4; i++) {
    EXPECT_FALSE(authn(a, {.bearer = "x" + std::to_string(i)}).throttled);
  }
  EXPECT_TRUE(authn(a, {.bearer = "x-over"}).throttled);
  EXPECT_EQ(tokens.calls, 9);
}

TEST(ServerAuthn, OneClientCannotSpendTheWholeReviewBudget) {
  FakeTokens tokens;
  FakeClock clock;
  tokens.known["scraper"] = {true, {"prometheus", {}}, ""};
  Authenticator a({.tokens = &tokens,
                   .review_qps = 10,
                   .review_burst = 20,
                   .peer_review_qps = 1,
                   .peer_review_burst = 3,
                   .peer_buckets = 2},
                  inlinePost(), clock.fn());
  // A bad client gets its own burst, then 429s, while the shared budget
  // still has room for everyone else.
  for (int i = 0; i < 3; i++) {
    EXPECT_FALSE(authn(a, {.bearer = "bad" + std::to_string(i), .peer = "10.0.0.66"}).throttled);
  }
  EXPECT_TRUE(authn(a, {.bearer = "bad-over", .peer = "10.0.0.66"}).throttled);
  AuthnResult other = authn(a, {.bearer = "scraper", .peer = "10.0.0.7"});
  ASSERT_TRUE(other.user);
  EXPECT_EQ(other.user->name, "prometheus");
  EXPECT_EQ(tokens.calls, 4);
  // A refused request takes nothing from the shared bucket: 20 - 4 left.
  clock.now += 1s;  // one more for the bad client
  EXPECT_FALSE(authn(a, {.bearer = "bad-later", .peer = "10.0.0.66"}).throttled);
  EXPECT_TRUE(authn(a, {.bearer = "bad-later2", .peer = "10.0.0.66"}).throttled);
  // Remembered addresses are bounded: many clients do not grow the map, and
  // a client that was dropped only gets a fresh burst.
  for (int i = 0; i < 10; i++) {
    EXPECT_FALSE(
        authn(a, {.bearer = "n" + std::to_string(i), .peer = "10.1.0." + std::to_string(i)})
            .throttled);
  }
  EXPECT_LE(a.peerBuckets(), 2u);
  EXPECT_EQ(tokens.calls, 15);
}

TEST(ServerAuthn, AClientIsItsIpv4AddressOrItsIpv6Slash64) {
  EXPECT_EQ(clientKey("10.0.0.7"), "10.0.0.7");
  EXPECT_EQ(clientKey("::ffff:10.0.0.7"), "10.0.0.7");
  EXPECT_EQ(clientKey("2001:db8:1:2:aaaa:bbbb:cccc:dddd"), "2001:db8:1:2::/64");
  EXPECT_EQ(clientKey("2001:db8:1:2::1"), clientKey("2001:db8:1:2:ffff::9"));
  EXPECT_NE(clientKey("2001:db8:1:2::1"), clientKey("2001:db8:1:3::1"));
  EXPECT_EQ(clientKey("::1"), "::/64");
}

TEST(ServerAuthn, OneTokenSentManyTimesAtOnceIsReviewedOnce) {
  FakeTokens tokens;
  tokens.hold = true;
  tokens.known["good"] = {true, {"alice", {}}, ""};
  Authenticator a({.tokens = &tokens}, inlinePost());
  std::vector<AuthnResult> got;
  for (int i = 0; i < 50; i++) {
    a.authenticate({.bearer = "good"}, [&](AuthnResult r) { got.push_back(std::move(r)); });
  }
  EXPECT_EQ(tokens.calls, 1);
  ASSERT_EQ(tokens.later.size(), 1u);
  tokens.later.front()();
  ASSERT_EQ(got.size(), 50u);
  for (const auto& r : got) {
    ASSERT_TRUE(r.user);
    EXPECT_EQ(r.user->name, "alice");
  }
  EXPECT_EQ(a.reviews(), 1u);
}

AuthzResult authz(Authorizer& z, const std::string& user, const AccessAttributes& attrs) {
  std::optional<AuthzResult> out;
  z.authorize({user, {"g"}}, attrs, [&](AuthzResult r) { out = std::move(r); });
  EXPECT_TRUE(out.has_value());
  return out.value_or(AuthzResult{});
}

TEST(ServerAuthz, FineGrainedFallsBackToProxyAndDeniesInTheKubeletsWords) {
  FakeAccess access;
  access.allowed = {"bob get proxy"};
  Authorizer z({.reviewer = &access}, inlinePost());
  AccessAttributes healthz{"get", {"healthz", "proxy"}};
  EXPECT_TRUE(authz(z, "bob", healthz).allowed);
  EXPECT_EQ(access.asked, (std::vector<std::string>{"bob get healthz", "bob get proxy"}));
  auto r = authz(z, "bob", {"create", {"proxy"}});
  EXPECT_FALSE(r.allowed);
  EXPECT_EQ(r.status, 403);
  EXPECT_EQ(r.message, "Forbidden (user=bob, verb=create, resource=nodes, subresource(s)=[proxy])");
  r = authz(z, "eve", healthz);
  EXPECT_EQ(r.message,
            "Forbidden (user=eve, verb=get, resource=nodes, subresource(s)=[healthz proxy])");
  Authorizer always({}, inlinePost());
  EXPECT_TRUE(authz(always, "anyone", {"create", {"proxy"}}).allowed);
}

TEST(ServerAuthz, AllowedCachedLongerThanDeniedFailuresNotAtAll) {
  FakeClock clock;
  FakeAccess access;
  access.allowed = {"bob get stats"};
  Authorizer z({.reviewer = &access, .allowed_ttl = 300s, .denied_ttl = 30s}, inlinePost(),
               clock.fn());
  AccessAttributes stats{"get", {"stats"}};
  EXPECT_TRUE(authz(z, "bob", stats).allowed);
  EXPECT_FALSE(authz(z, "eve", stats).allowed);
  EXPECT_EQ(access.asked.size(), 2u);
  clock.now += 29s;
  EXPECT_TRUE(authz(z, "bob", stats).allowed);
  EXPECT_FALSE(authz(z, "eve", stats).allowed);
  EXPECT_EQ(access.asked.size(), 2u);  // both cached
  clock.now += 2s;                     // 31s: the denial expired, the allowance not
  access.allowed.insert("eve get stats");
  EXPECT_TRUE(authz(z, "bob", stats).allowed);
  EXPECT_TRUE(authz(z, "eve", stats).allowed);
  EXPECT_EQ(access.asked.size(), 3u);
  clock.now += 270s;  // 301s: bob's allowance expired too
  EXPECT_TRUE(authz(z, "bob", stats).allowed);
  EXPECT_EQ(access.asked.size(), 4u);
  // Failed reviews: 500, never cached.
  access.fail = true;
  auto r = authz(z, "carol", stats);
  EXPECT_FALSE(r.allowed);
  EXPECT_EQ(r.status, 500);
  authz(z, "carol", stats);
  EXPECT_EQ(access.asked.size(), 6u);
}

TEST(ServerAuthz, AnswersArriveLaterThroughPost) {
  FakeAccess access;
  access.hold = true;
  access.allowed = {"bob get proxy"};
  std::vector<std::function<void()>> posted;
  Authorizer z({.reviewer = &access}, [&](std::function<void()> fn) { posted.push_back(fn); });
  std::optional<AuthzResult> out;
  z.authorize({"bob", {}}, {"get", {"pods", "proxy"}}, [&](AuthzResult r) { out = r; });
  EXPECT_FALSE(out);
  // pods: denied (posted back), then proxy asked and allowed.
  while (!access.later.empty() || !posted.empty()) {
    if (!access.later.empty()) {
      auto f = access.later.front();
      access.later.pop_front();
      f();
    }
    auto ps = std::move(posted);
    posted.clear();
    for (auto& p : ps) {
      p();
    }
  }
  ASSERT_TRUE(out);
  EXPECT_TRUE(out->allowed);
  EXPECT_EQ(access.asked, (std::vector<std::string>{"bob get pods", "bob get proxy"}));
}

}  // namespace
}  // namespace kernelet::agent::server
