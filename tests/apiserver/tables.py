"""Server-side printing (meta.k8s.io/v1 Table), which kubectl asks for with
`Accept: application/json;as=Table;v=v1;g=meta.k8s.io`: the columns
kube-apiserver prints for pods and nodes, Name and Created At for the rest."""

import datetime


def age(timestamp):
    try:
        t = datetime.datetime.strptime(timestamp, "%Y-%m-%dT%H:%M:%SZ").replace(
            tzinfo=datetime.timezone.utc)
    except (TypeError, ValueError):
        return "<unknown>"
    s = int((datetime.datetime.now(datetime.timezone.utc) - t).total_seconds())
    s = max(s, 0)
    if s < 120:
        return f"{s}s"
    m = s // 60
    if m < 10:
        return f"{m}m{s % 60}s" if s % 60 else f"{m}m"
    if m < 180:
        return f"{m}m"
    h = m // 60
    if h < 48:
        return f"{h}h"
    return f"{h // 24}d"


def column(name, kind="string", priority=0, fmt=""):
    return {"name": name, "type": kind, "format": fmt, "description": "", "priority": priority}


def pod_status_text(pod):
    """kubectl's STATUS for a pod, as the server prints it."""
    status = pod.get("status", {})
    reason = status.get("reason") or status.get("phase", "")
    inits = status.get("initContainerStatuses") or []
    spec_inits = pod.get("spec", {}).get("initContainers") or []
    initializing = False
    for i, c in enumerate(inits):
        state = c.get("state", {})
        term = state.get("terminated")
        if term and term.get("exitCode") == 0:
            continue
        if c.get("started") and "running" in state:
            continue
        initializing = True
        if term:
            reason = "Init:" + (term.get("reason") or f"ExitCode:{term.get('exitCode')}")
        elif state.get("waiting", {}).get("reason") not in (None, "", "PodInitializing"):
            reason = "Init:" + state["waiting"]["reason"]
        else:
            reason = f"Init:{i}/{len(spec_inits)}"
        break
    ready = 0
    restarts = sum(c.get("restartCount", 0) for c in inits)
    if not initializing:
        restarts = 0
        running = False
        for c in reversed(status.get("containerStatuses") or []):
            restarts += c.get("restartCount", 0)
            state = c.get("state", {})
            if state.get("waiting", {}).get("reason"):
                reason = state["waiting"]["reason"]
            elif state.get("terminated"):
                t = state["terminated"]
                reason = t.get("reason") or (f"Signal:{t['signal']}" if t.get("signal")
                                             else f"ExitCode:{t.get('exitCode')}")
            elif c.get("ready") and "running" in state:
                running = True
                ready += 1
        if reason == "Completed" and running:
            reason = "Running"
    if pod.get("metadata", {}).get("deletionTimestamp"):
        reason = "Terminating"
    return reason, ready, restarts


def pod_row(pod):
    reason, ready, restarts = pod_status_text(pod)
    total = len(pod.get("spec", {}).get("containers") or [])
    status = pod.get("status", {})
    return [pod["metadata"]["name"], f"{ready}/{total}", reason, restarts,
            age(pod["metadata"].get("creationTimestamp")), status.get("podIP") or "<none>",
            pod.get("spec", {}).get("nodeName") or "<none>", "<none>", "<none>"]


def node_row(node):
    conditions = {c.get("type"): c.get("status") for c in
                  node.get("status", {}).get("conditions") or []}
    status = "Ready" if conditions.get("Ready") == "True" else "NotReady"
    if node.get("spec", {}).get("unschedulable"):
        status += ",SchedulingDisabled"
    roles = sorted(k.split("/", 1)[1] for k in (node["metadata"].get("labels") or {})
                   if k.startswith("node-role.kubernetes.io/"))
    addresses = {a.get("type"): a.get("address") for a in
                 node.get("status", {}).get("addresses") or []}
    info = node.get("status", {}).get("nodeInfo") or {}
    return [node["metadata"]["name"], status, ",".join(roles) or "<none>",
            age(node["metadata"].get("creationTimestamp")), info.get("kubeletVersion", ""),
            addresses.get("InternalIP", "<none>"), addresses.get("ExternalIP", "<none>"),
            info.get("osImage", "<unknown>"), info.get("kernelVersion", "<unknown>"),
            info.get("containerRuntimeVersion", "<unknown>")]


def table(kind, objects, meta, include_object="Metadata"):
    if kind == "Pod":
        columns = [column("Name", fmt="name"), column("Ready"), column("Status"),
                   column("Restarts", "string"), column("Age"), column("IP", priority=1),
                   column("Node", priority=1), column("Nominated Node", priority=1),
                   column("Readiness Gates", priority=1)]
        row = pod_row
    elif kind == "Node":
        columns = [column("Name", fmt="name"), column("Status"), column("Roles"), column("Age"),
                   column("Version"), column("Internal-IP", priority=1),
                   column("External-IP", priority=1), column("OS-Image", priority=1),
                   column("Kernel-Version", priority=1), column("Container-Runtime", priority=1)]
        row = node_row
    else:
        columns = [column("Name", fmt="name"), column("Created At", "date")]

        def row(o):
            return [o["metadata"]["name"], o["metadata"].get("creationTimestamp")]
    rows = []
    for o in objects:
        if include_object == "Object":
            obj = o
        elif include_object == "None":
            obj = None
        else:
            obj = {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
                   "metadata": o.get("metadata", {})}
        cells = row(o)
        if kind == "Pod":
            cells[3] = str(cells[3])
        r = {"cells": cells}
        if obj is not None:
            r["object"] = obj
        rows.append(r)
    return {"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": meta,
            "columnDefinitions": columns, "rows": rows}
