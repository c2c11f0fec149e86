"""The pods/NAME/resize subresource as the real API server (1.35) serves it
(pkg/registry/core/pod: podResizeStrategy, and ValidatePodResize): a write
through it changes nothing of the pod but the cpu and memory requests and
limits of its containers (and of restartable init containers), each change
validated as the API validates resources, the pod's QoS class may not change,
requests and limits may not be removed, static pods cannot be resized. The
main pods update may no longer change resources (ValidatePodUpdate)."""
import copy
import re
from decimal import Decimal, InvalidOperation

MIRROR_ANNOTATION = "kubernetes.io/config.mirror"
RESIZABLE = ("cpu", "memory")
QUANTITY = re.compile(r"^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$")
SUFFIXES = {"": 1, "n": Decimal("1e-9"), "u": Decimal("1e-6"), "m": Decimal("1e-3"),
            "k": Decimal(10) ** 3, "M": Decimal(10) ** 6, "G": Decimal(10) ** 9,
            "T": Decimal(10) ** 12, "P": Decimal(10) ** 15, "E": Decimal(10) ** 18,
            "Ki": 2 ** 10, "Mi": 2 ** 20, "Gi": 2 ** 30, "Ti": 2 ** 40, "Pi": 2 ** 50,
            "Ei": 2 ** 60}
# What ValidatePodUpdate says of any other change to a pod's spec.
UPDATE_FORBIDDEN = (
    "spec: Forbidden: pod updates may not change fields other than "
    "`spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,"
    "`spec.tolerations` (only additions to existing tolerations),"
    "`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously "
    "negative)")


class BadQuantity(Exception):
    pass


def quantity(text):
    """A resource.Quantity's value as a Decimal; BadQuantity as the API's
    decoder refuses it."""
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        return Decimal(str(text))
    if not isinstance(text, str):
        raise BadQuantity("quantities must be a string or a number")
    m = QUANTITY.match(text)
    if not m:
        raise BadQuantity("quantities must match the regular expression "
                          "'^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'")
    number, suffix = m.groups()
    try:
        value = Decimal(number)
    except InvalidOperation:
        raise BadQuantity("unable to parse quantity's suffix")
    if suffix in SUFFIXES:
        return value * SUFFIXES[suffix]
    if suffix[:1] in ("e", "E"):
        try:
            return value * (Decimal(10) ** int(suffix[1:]))
        except ValueError:
            pass
    raise BadQuantity("unable to parse quantity's suffix")


def _resources(c):
    r = c.get("resources") if isinstance(c, dict) else None
    return r if isinstance(r, dict) else {}


def _list(r, kind):
    v = r.get(kind)
    return v if isinstance(v, dict) else {}


def _containers(spec):
    """(path, container) of the containers whose resources may be resized:
    the regular ones and the restartable (sidecar) init containers."""
    out = []
    for i, c in enumerate(spec.get("containers") or []):
        out.append((f"spec.containers[{i}]", c))
    for i, c in enumerate(spec.get("initContainers") or []):
        if isinstance(c, dict) and c.get("restartPolicy") == "Always":
            out.append((f"spec.initContainers[{i}]", c))
    return out


def qos(spec):
    """GetPodQOS, with quantities compared by value (1 == 1000m)."""
    any_set, guaranteed = False, True
    for c in (spec.get("containers") or []) + (spec.get("initContainers") or []):
        r = _resources(c)
        for res in RESIZABLE:
            lim = _list(r, "limits").get(res)
            req = _list(r, "requests").get(res, lim)
            any_set = any_set or lim is not None or req is not None
            try:
                same = lim is not None and quantity(req) == quantity(lim)
            except BadQuantity:
                same = False
            guaranteed = guaranteed and same
    if not any_set:
        return "BestEffort"
    return "Guaranteed" if guaranteed else "Burstable"


def resource_errors(path, c):
    """ValidateResourceRequirements for cpu and memory."""
    errors = []
    r = _resources(c)
    values = {}
    for kind in ("requests", "limits"):
        for res, text in _list(r, kind).items():
            where = f"{path}.resources.{kind}[{res}]"
            try:
                v = quantity(text)
            except BadQuantity as e:
                errors.append(f'{where}: Invalid value: "{text}": {e}')
                continue
            if v < 0:
                errors.append(f'{where}: Invalid value: "{text}": must be greater than or '
                              f'equal to 0')
            values[(kind, res)] = (v, text)
    for res in RESIZABLE:
        if ("requests", res) in values and ("limits", res) in values:
            (req, req_text), (lim, lim_text) = values[("requests", res)], values[("limits", res)]
            if req > lim >= 0:  # a negative one is reported once, above
                errors.append(f'{path}.resources.requests: Invalid value: "{req_text}": must be '
                              f'less than or equal to {res} limit of {lim_text}')
    return errors


def update_errors(new, cur):
    """The main pods update (PUT or PATCH without a subresource): a change
    of a container's resources is refused as any other spec change is."""
    old_spec, new_spec = cur.get("spec") or {}, new.get("spec") or {}
    for key in ("containers", "initContainers"):
        old_list, new_list = old_spec.get(key) or [], new_spec.get(key) or []
        if len(old_list) != len(new_list):
            continue  # not this check's business
        for o, n in zip(old_list, new_list):
            if _resources(o) != _resources(n):
                return [UPDATE_FORBIDDEN]
    return []


def update(body, cur):
    """(the pod as stored after a write of `body` through pods/resize, the
    validation errors). `cur` is the stored pod. Only the resizable
    containers' cpu and memory requests and limits are taken from `body`."""
    new = copy.deepcopy(cur)
    if MIRROR_ANNOTATION in ((cur.get("metadata") or {}).get("annotations") or {}):
        return new, [": Forbidden: static pods cannot be resized"]
    spec = cur.get("spec") or {}
    if spec.get("resources"):
        return new, ["spec.resources: Forbidden: pods with pod-level resources cannot be resized"]
    if ((spec.get("os") or {}).get("name")) == "windows":
        return new, [": Forbidden: windows pods cannot be resized"]
    body_spec = body.get("spec") if isinstance(body.get("spec"), dict) else {}
    errors = []
    for key in ("containers", "initContainers"):
        old_list, new_list = spec.get(key) or [], body_spec.get(key)
        if new_list is None:
            continue
        if not isinstance(new_list, list) or len(new_list) != len(old_list) or \
                not all(isinstance(c, dict) for c in new_list):
            errors.append(f"spec.{key}: Forbidden: containers may not be added or removed "
                          f"on resize")
            continue
        for o, n in zip(old_list, new_list):
            if n.get("name") != o.get("name"):
                errors.append(f"spec.{key}: Forbidden: containers may not be renamed or "
                              f"reordered on resize")
    if errors:
        return new, errors
    # Anything but cpu and memory of the resizable containers must be as it was.
    changed_other = False
    resizable = {id(c) for _, c in _containers(spec)}
    new_spec = new.setdefault("spec", {})
    for key in ("containers", "initContainers"):
        new_list = body_spec.get(key)
        if not new_list:
            continue
        for i, o in enumerate(spec.get(key) or []):
            wanted = new_list[i]
            ro, rn = _resources(o), _resources(wanted)
            target = new_spec[key][i]
            out = copy.deepcopy(ro)
            for kind in ("requests", "limits"):
                old_kind, new_kind = _list(ro, kind), _list(rn, kind)
                for res in set(old_kind) | set(new_kind):
                    if res in RESIZABLE and id(o) in resizable:
                        continue
                    if old_kind.get(res) != new_kind.get(res):
                        changed_other = True
                for res in RESIZABLE:
                    if id(o) not in resizable:
                        continue
                    path = f"spec.{key}[{i}].resources.{kind}[{res}]"
                    if res in new_kind:
                        out.setdefault(kind, {})[res] = new_kind[res]
                    elif res in old_kind:
                        what = "request" if kind == "requests" else "limit"
                        errors.append(f"{path}: Forbidden: resource {what} removal is not "
                                      f"supported")
            for k in ("claims",):
                if ro.get(k) != rn.get(k):
                    changed_other = True
            if any(k not in ("resources", "name") and wanted.get(k) != o.get(k) for k in wanted):
                changed_other = True
            target["resources"] = out
    if changed_other:
        errors.append("spec: Forbidden: only cpu and memory resources are mutable")
    for path, c in _containers(new_spec):
        errors += resource_errors(path, c)
    if not errors:
        old_qos = (cur.get("status") or {}).get("qosClass") or qos(spec)
        if qos(new_spec) != old_qos:
            errors.append(f'spec: Invalid value: "{old_qos}": Pod QOS Class may not change as '
                          f'a result of resizing')
    return new, errors
