"""Who a request is and what it may do, as the real API server decides it for
the parts the kubelet's own server delegates to it:

- the token file (`--token-auth-file`, the real API server's CSV form:
  token,user,uid,"group1,group2"): users whose every request is authorized by
- the policy (`--authz-policy FILE`): JSON {"rules": [{"user" | "group", "verb",
  "resource", "subresource", "name", "namespace"}]}, a missing field or "*"
  matching anything, the group system:masters always allowed (as the real
  API server's RBAC has it);
- TokenReview (authentication.k8s.io/v1) and SubjectAccessReview
  (authorization.k8s.io/v1) answers built from both.
"""

import csv
import io
import json

MASTERS = "system:masters"
AUTHENTICATED = "system:authenticated"
RULE_FIELDS = ("user", "group", "verb", "resource", "subresource", "name", "namespace")


class PolicyError(Exception):
    pass


def load_token_file(path):
    """token -> {"username", "uid", "groups"} from the real API server's CSV."""
    users = {}
    if not path:
        return users
    with open(path, newline="") as f:
        text = f.read()
    for lineno, row in enumerate(csv.reader(io.StringIO(text)), 1):
        if not row or row[0].startswith("#"):
            continue
        if len(row) < 2 or not row[0] or not row[1]:
            raise PolicyError(f"{path}:{lineno}: want token,user[,uid[,\"groups\"]]")
        groups = [g.strip() for g in row[3].split(",") if g.strip()] if len(row) > 3 else []
        users[row[0]] = {"username": row[1], "uid": row[2] if len(row) > 2 else "",
                         "groups": groups}
    return users


def load_policy(path):
    if not path:
        return []
    with open(path) as f:
        try:
            doc = json.load(f)
        except ValueError as e:
            raise PolicyError(f"{path}: {e}")
    rules = doc.get("rules") if isinstance(doc, dict) else None
    if not isinstance(rules, list):
        raise PolicyError(f'{path}: want {{"rules": [...]}}')
    for i, r in enumerate(rules):
        if not isinstance(r, dict) or not (r.get("user") or r.get("group")):
            raise PolicyError(f"{path}: rules[{i}]: needs a user or a group")
        unknown = set(r) - set(RULE_FIELDS)
        if unknown:
            raise PolicyError(f"{path}: rules[{i}]: unknown field {sorted(unknown)[0]}")
    return rules


def _matches(rule_value, value):
    return rule_value in (None, "*") or rule_value == (value or "")


def allowed(rules, user, groups, attrs):
    """Whether `user` in `groups` may do `attrs` ({verb, resource, subresource,
    name, namespace}); the reason as the real authorizers word it."""
    if MASTERS in groups:
        return True, ""
    for r in rules:
        who = (r.get("user") and _matches(r["user"], user)) or \
            (r.get("group") and (r["group"] == "*" or r["group"] in groups))
        if who and all(_matches(r.get(f), attrs.get(f)) for f in
                       ("verb", "resource", "subresource", "name", "namespace")):
            return True, "allowed by the test policy"
    return False, ""


def forbidden_message(user, attrs):
    """The real API server's 403 text for a resource request."""
    resource = attrs.get("resource", "")
    sub = attrs.get("subresource")
    group = attrs.get("group", "")
    name = attrs.get("name")
    ns = attrs.get("namespace")
    noun = f'{resource} "{name}"' if name else resource
    where = f' in the namespace "{ns}"' if ns else " at the cluster scope"
    return (f'{noun} is forbidden: User "{user}" cannot {attrs.get("verb")} resource '
            f'"{resource}{"/" + sub if sub else ""}" in API group "{group}"{where}')


# The fields of the review types (authentication.k8s.io/v1 TokenReview,
# authorization.k8s.io/v1 SubjectAccessReview) and their JSON types, for the
# test mode's check of what the agent sends (the OpenAPI documents here do
# not cover these groups).
STR, LIST, DICT, ATTRS = "string", "array", "object", "attributes"
REVIEW_SPECS = {
    "TokenReview": {"token": STR, "audiences": LIST},
    "SubjectAccessReview": {"resourceAttributes": ATTRS, "nonResourceAttributes": DICT,
                            "user": STR, "groups": LIST, "extra": DICT, "uid": STR},
}
RESOURCE_ATTRIBUTES = {"namespace", "verb", "group", "version", "resource", "subresource",
                       "name", "fieldSelector", "labelSelector"}
JSON_TYPES = {STR: str, LIST: list, DICT: dict, ATTRS: dict}


def review_violations(kind, body):
    """What the real API server would refuse in a review the agent sent."""
    problems = []
    if body.get("apiVersion") not in ("authentication.k8s.io/v1", "authorization.k8s.io/v1"):
        problems.append(f"{kind}.apiVersion: must be the v1 of its group")
    for k in body:
        if k not in ("apiVersion", "kind", "metadata", "spec", "status"):
            problems.append(f"{kind}.{k}: unknown field")
    spec = body.get("spec")
    if not isinstance(spec, dict):
        return problems + [f"{kind}.spec: must be an object"]
    for k, v in spec.items():
        want = REVIEW_SPECS[kind].get(k)
        if want is None:
            problems.append(f"{kind}.spec.{k}: unknown field")
        elif not isinstance(v, JSON_TYPES[want]):
            problems.append(f"{kind}.spec.{k}: must be an {want}"
                            if want[0] in "ao" else f"{kind}.spec.{k}: must be a {want}")
        elif want == ATTRS:
            for a, av in v.items():
                if a not in RESOURCE_ATTRIBUTES:
                    problems.append(f"{kind}.spec.resourceAttributes.{a}: unknown field")
                elif a not in ("fieldSelector", "labelSelector") and not isinstance(av, str):
                    problems.append(f"{kind}.spec.resourceAttributes.{a}: must be a string")
    if kind == "SubjectAccessReview":
        if not spec.get("user") and not spec.get("groups"):
            problems.append(f"{kind}.spec.user: Required value: at least one of user or group "
                            f"must be specified")
        if ("resourceAttributes" in spec) == ("nonResourceAttributes" in spec):
            problems.append(f"{kind}.spec.resourceAttributes: Required value: exactly one of "
                            f"nonResourceAttributes or resourceAttributes must be specified")
    return problems


def token_review(body, lookup):
    """A TokenReview's answer; `lookup(token)` gives the user dict or None."""
    spec = body.get("spec") or {}
    token = spec.get("token") or ""
    user = lookup(token) if token else None
    status = {"authenticated": False}
    if user:
        groups = list(user.get("groups", []))
        if AUTHENTICATED not in groups:
            groups.append(AUTHENTICATED)
        out_user = {"username": user["username"], "groups": groups}
        if user.get("uid"):
            out_user["uid"] = user["uid"]
        status = {"authenticated": True, "user": out_user}
        if spec.get("audiences"):
            status["audiences"] = spec["audiences"]
    else:
        status["error"] = "invalid bearer token"
    return {"kind": "TokenReview", "apiVersion": "authentication.k8s.io/v1",
            "metadata": {"creationTimestamp": None}, "spec": spec, "status": status}


def subject_access_review(body, rules):
    """A SubjectAccessReview's answer by the policy."""
    spec = body.get("spec") or {}
    attrs = spec.get("resourceAttributes")
    user = spec.get("user", "")
    groups = spec.get("groups") or []
    if attrs is None:
        # Non-resource requests (/healthz of the API server itself): only masters.
        ok = MASTERS in groups
        reason = ""
    else:
        ok, reason = allowed(rules, user, groups, attrs)
    status = {"allowed": ok}
    if reason:
        status["reason"] = reason
    return {"kind": "SubjectAccessReview", "apiVersion": "authorization.k8s.io/v1",
            "metadata": {"creationTimestamp": None}, "spec": spec, "status": status}
