#include "agent/sources/pod_objects.h"

#include <algorithm>

namespace kernelet::agent {

std::string ObjectRef::quoted() const {
  return std::string(kind == Kind::kConfigMap ? "configmap" : "secret") + " \"" + name + "\"";
}

PodRefs podRefs(const Pod& pod) {
  PodRefs refs;
  auto add = [&](ObjectRef::Kind kind, const std::string& name) {
    ObjectRef r{kind, pod.namespace_, name};
    if (std::find(refs.objects.begin(), refs.objects.end(), r) == refs.objects.end()) {
      refs.objects.push_back(std::move(r));
    }
  };
  for (const auto& v : pod.volumes) {
    for (const auto& s : v.sources) {
      switch (s.kind) {
        case Projection::Kind::kConfigMap:
          add(ObjectRef::Kind::kConfigMap, s.name);
          break;
        case Projection::Kind::kSecret:
          add(ObjectRef::Kind::kSecret, s.name);
          break;
        case Projection::Kind::kServiceAccountToken: {
          std::string sa = pod.service_account_name.empty() ? "default" : pod.service_account_name;
          TokenRef t{pod.namespace_, sa, s.audience, s.expiration_seconds, pod.name, pod.uid};
          if (std::find(refs.tokens.begin(), refs.tokens.end(), t) == refs.tokens.end()) {
            refs.tokens.push_back(std::move(t));
          }
          break;
        }
        case Projection::Kind::kDownwardApi:
          break;
      }
    }
  }
  for (const auto& name : pod.image_pull_secrets) {
    add(ObjectRef::Kind::kSecret, name);
  }
  std::vector<const Container*> all;
  for (const auto* list : {&pod.init_containers, &pod.containers}) {
    for (const auto& c : *list) {
      all.push_back(&c);
    }
  }
  for (const auto& c : pod.ephemeral_containers) {
    all.push_back(&c);
  }
  for (const Container* c : all) {
    for (const auto& e : c->env) {
      if (e.config_map_key) {
        add(ObjectRef::Kind::kConfigMap, e.config_map_key->name);
      }
      if (e.secret_key) {
        add(ObjectRef::Kind::kSecret, e.secret_key->name);
      }
    }
    for (const auto& f : c->env_from) {
      if (!f.config_map.empty()) {
        add(ObjectRef::Kind::kConfigMap, f.config_map);
      }
      if (!f.secret.empty()) {
        add(ObjectRef::Kind::kSecret, f.secret);
      }
    }
  }
  return refs;
}

bool refersToAny(const PodRefs& pod, const PodRefs& changed) {
  auto in = [](const auto& list, const auto& x) {
    return std::find(list.begin(), list.end(), x) != list.end();
  };
  return std::any_of(pod.objects.begin(), pod.objects.end(),
                     [&](const ObjectRef& r) { return in(changed.objects, r); }) ||
         std::any_of(pod.tokens.begin(), pod.tokens.end(),
                     [&](const TokenRef& t) { return in(changed.tokens, t); });
}

std::vector<std::string> pendingRefs(const Pod& pod, PodObjects& objects) {
  std::vector<std::string> out;
  PodRefs refs = podRefs(pod);
  for (const auto& r : refs.objects) {
    if (!objects.object(r)) {
      out.push_back(std::string(r.kind == ObjectRef::Kind::kConfigMap ? "configmap " : "secret ") +
                    r.namespace_ + "/" + r.name);
    }
  }
  for (const auto& t : refs.tokens) {
    if (!objects.token(t)) {
      out.push_back("token of serviceaccount " + t.namespace_ + "/" + t.service_account);
    }
  }
  return out;
}

Result<std::map<std::string, std::string>> objectData(PodObjects* objects, const ObjectRef& ref,
                                                      bool optional) {
  if (objects == nullptr) {
    return makeError("get", ref.quoted(),
                     "ConfigMaps and Secrets come from an API server: run with --kubeconfig "
                     "(static pods cannot refer to them)");
  }
  auto got = objects->object(ref);
  if (!got) {
    return makeError("get", ref.quoted(), "not yet synced from the API server");
  }
  if (!got->found) {
    if (optional) {
      return std::map<std::string, std::string>{};
    }
    return std::unexpected(Error{.op = ref.quoted() + " not found"});
  }
  return got->data;
}

}  // namespace kernelet::agent
