"""The pods/NAME/ephemeralcontainers subresource as the real API server
serves it (pkg/registry/core/pod: podEphemeralContainersStrategy, and
ValidatePodEphemeralContainersUpdate): a write through it changes nothing of
the pod but spec.ephemeralContainers (whatever else it carries is dropped),
existing ephemeral containers may not be changed or removed, new ones are
defaulted and validated as the API validates ephemeral containers. A pod is
never created with ephemeral containers."""
import copy
import json
import re

DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
# What an ephemeral container may not set (validateEphemeralContainers).
FORBIDDEN = ("ports", "livenessProbe", "readinessProbe", "startupProbe", "lifecycle",
             "resizePolicy", "restartPolicy")
FORBIDDEN_TEXT = "Forbidden: cannot be set for an Ephemeral Container"
MIRROR_ANNOTATION = "kubernetes.io/config.mirror"


def _set(value):
    """Set in the API's sense: not absent, null, nor an empty list or map."""
    return value not in (None, [], {}, "")


def default_container(c):
    """SetDefaults for the container fields of a new ephemeral container."""
    c.setdefault("terminationMessagePath", "/dev/termination-log")
    c.setdefault("terminationMessagePolicy", "File")
    image = c.get("image", "")
    tag = image.rsplit("/", 1)[-1]
    latest = "@" not in image and (":" not in tag or tag.endswith(":latest"))
    c.setdefault("imagePullPolicy", "Always" if latest else "IfNotPresent")


def create_errors(pod):
    """A pod may not be created with ephemeral containers."""
    if _set((pod.get("spec") or {}).get("ephemeralContainers")):
        return ["spec.ephemeralContainers: Forbidden: cannot be set on create"]
    return []


def _container_errors(ec, path, taken, targets, volumes):
    errors = []
    name = ec.get("name")
    if not isinstance(name, str) or not name:
        errors.append(f"{path}.name: Required value")
    elif not DNS_LABEL.match(name) or len(name) > 63:
        errors.append(f'{path}.name: Invalid value: "{name}": a lowercase RFC 1123 label must '
                      f"consist of lower case alphanumeric characters or '-', and must start "
                      f"and end with an alphanumeric character")
    elif name in taken:
        errors.append(f'{path}.name: Duplicate value: "{name}"')
    if not ec.get("image"):
        errors.append(f"{path}.image: Required value")
    for key in FORBIDDEN:
        if _set(ec.get(key)):
            errors.append(f"{path}.{key}: {FORBIDDEN_TEXT}")
    resources = ec.get("resources")
    if isinstance(resources, dict) and any(_set(v) for v in resources.values()):
        errors.append(f"{path}.resources: {FORBIDDEN_TEXT}")
    for i, m in enumerate(ec.get("volumeMounts") or []):
        for key in ("subPath", "subPathExpr"):
            if _set((m or {}).get(key)):
                errors.append(f"{path}.volumeMounts[{i}].{key}: {FORBIDDEN_TEXT}")
        if (m or {}).get("name") not in volumes:
            errors.append(f'{path}.volumeMounts[{i}].name: Not found: "{(m or {}).get("name")}"')
    target = ec.get("targetContainerName")
    if target and target not in targets:
        errors.append(f'{path}.targetContainerName: Not found: "{target}"')
    return errors


def update(body, cur):
    """(the pod as stored after a write of `body` through the subresource,
    the validation errors). `cur` is the stored pod."""
    new = copy.deepcopy(cur)
    body_spec = body.get("spec") if isinstance(body.get("spec"), dict) else {}
    wanted = body_spec.get("ephemeralContainers") or []
    if not isinstance(wanted, list) or not all(isinstance(c, dict) for c in wanted):
        return new, ["spec.ephemeralContainers: Invalid value: must be a list of objects"]
    if MIRROR_ANNOTATION in (cur.get("metadata", {}).get("annotations") or {}):
        return new, [": Forbidden: static pods do not support ephemeral containers"]
    spec = cur.get("spec") or {}
    old = {c.get("name"): c for c in spec.get("ephemeralContainers") or []}
    errors = []
    by_name = {c.get("name"): c for c in wanted}
    for name, c in old.items():
        if name not in by_name:
            errors.append(f'spec.ephemeralContainers: Forbidden: existing ephemeral containers '
                          f'"{name}" may not be removed\n')
    regular = [c.get("name") for c in spec.get("containers", []) + spec.get("initContainers", [])]
    volumes = {v.get("name") for v in spec.get("volumes") or []}
    taken = set(regular)
    out = []
    for i, c in enumerate(wanted):
        c = copy.deepcopy(c)
        name = c.get("name")
        if name in old:
            if c != old[name]:
                # Compared as stored: what a client read back and sent unchanged passes.
                candidate = copy.deepcopy(c)
                default_container(candidate)
                if candidate != old[name]:
                    errors.append(f'spec.ephemeralContainers[{name}]: Forbidden: existing '
                                  f'ephemeral containers "{name}" may not be changed\n'
                                  f'{json.dumps(old[name], sort_keys=True)} -> '
                                  f'{json.dumps(candidate, sort_keys=True)}')
            out.append(old[name])
        else:
            default_container(c)
            errors += _container_errors(c, f"spec.ephemeralContainers[{i}]", taken, regular,
                                        volumes)
            out.append(c)
        taken.add(name)
    new.setdefault("spec", {})["ephemeralContainers"] = out
    if not out:
        new["spec"].pop("ephemeralContainers")
    return new, errors
