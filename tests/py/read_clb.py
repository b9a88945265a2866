#!/usr/bin/env python3
"""Reads one CLB back through the official Tencent Cloud Python SDK, as a user's script would,
and prints what the end-to-end tests compare against: listeners, their rules (with the
DefaultServer flag) and the CLB's redirects, as one JSON document.

Usage: read_clb.py --endpoint 127.0.0.1:PORT --secret-id ID --secret-key KEY --region R --lb LB_ID
       [--rewrites] [--targets] [--raw]

With --raw it prints the DescribeListeners response itself, as the SDK's models serialise it
(what a user of the SDK or tccli sees), and nothing else. With --targets every rule also lists its targets (DescribeTargets) as "<instance or IP>:<port>
w<weight>", sorted.
"""
import argparse
import json
import sys

from tencentcloud.common import credential
from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException
from tencentcloud.common.profile.client_profile import ClientProfile
from tencentcloud.common.profile.http_profile import HttpProfile
from tencentcloud.clb.v20180317 import clb_client, models as clb

from sdk_checks import req


def targets_by_rule(c, lb):
    """LocationId -> sorted "<instance or IP>:<port> w<weight>" of every L7 rule of the CLB."""
    resp = c.DescribeTargets(req(clb.DescribeTargetsRequest, {"LoadBalancerId": lb}))
    out = {}
    for l in resp.Listeners or []:
        for r in l.Rules or []:
            names = []
            for t in r.Targets or []:
                who = t.InstanceId or ",".join(t.PrivateIpAddresses or [])
                names.append("%s:%d w%d" % (who, t.Port, t.Weight))
            out[r.LocationId] = sorted(names)
    return out


def main():
    ap = argparse.ArgumentParser()
    for flag in ("--endpoint", "--secret-id", "--secret-key", "--region", "--lb"):
        ap.add_argument(flag, required=True)
    ap.add_argument("--rewrites", action="store_true", help="also DescribeRewrite")
    ap.add_argument("--targets", action="store_true", help="also DescribeTargets")
    ap.add_argument("--raw", action="store_true", help="the DescribeListeners response only")
    a = ap.parse_args()
    http = HttpProfile(endpoint=a.endpoint, protocol="http")
    c = clb_client.ClbClient(
        credential.Credential(a.secret_id, a.secret_key), a.region, ClientProfile(httpProfile=http)
    )
    try:
        listeners = c.DescribeListeners(req(clb.DescribeListenersRequest, {"LoadBalancerId": a.lb}))
    except TencentCloudSDKException as e:
        print("SDK error %s: %s" % (e.get_code(), e.get_message()), file=sys.stderr)
        sys.exit(1)
    if a.raw:
        print(listeners.to_json_string())
        return
    out = {"listeners": [], "rewrites": []}
    bound = targets_by_rule(c, a.lb) if a.targets else {}
    for l in listeners.Listeners or []:
        rules = []
        for r in l.Rules or []:
            rule = {"domain": r.Domain, "url": r.Url, "default_server": bool(r.DefaultServer)}
            if a.targets:
                rule["targets"] = bound.get(r.LocationId, [])
            rules.append(rule)
        rules.sort(key=lambda r: (r["domain"], r["url"]))
        out["listeners"].append(
            {"protocol": l.Protocol, "port": l.Port, "name": l.ListenerName, "rules": rules}
        )
    out["listeners"].sort(key=lambda l: (l["protocol"], l["port"]))
    ports = {l.ListenerId: "%s:%d" % (l.Protocol, l.Port) for l in listeners.Listeners or []}
    urls = {
        r.LocationId: (r.Domain, r.Url)
        for l in listeners.Listeners or []
        for r in l.Rules or []
    }
    rewrites = (
        c.DescribeRewrite(req(clb.DescribeRewriteRequest, {"LoadBalancerId": a.lb})).RewriteSet
        if a.rewrites
        else []
    )
    for r in rewrites or []:
        t = r.RewriteTarget
        target = urls.get(t.TargetLocationId, ("?", "?"))
        out["rewrites"].append(
            {
                "from": "%s %s%s" % (ports.get(r.ListenerId, "?"), r.Domain, r.Url),
                "to": "%s %s%s" % (ports.get(t.TargetListenerId, "?"), target[0], target[1]),
                "code": t.RewriteCode,
                "type": t.RewriteType,
            }
        )
    out["rewrites"].sort(key=lambda r: r["from"])
    print(json.dumps(out, sort_keys=True))


if __name__ == "__main__":
    main()
