#!/usr/bin/env python3
"""Drives clb-sim with the official Tencent Cloud Python SDK and asserts on SDK model fields.

Usage: sdk_conformance.py --endpoint 127.0.0.1:PORT --secret-id ID --secret-key KEY [--region R]
Exits 0 when every check passed; prints one line per check and the failure otherwise.
"""
import argparse
import json
import sys
import urllib.request

from tencentcloud.common import credential
from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException
from tencentcloud.common.common_client import CommonClient
from tencentcloud.common.profile.client_profile import ClientProfile
from tencentcloud.common.profile.http_profile import HttpProfile
from tencentcloud.clb.v20180317 import clb_client, models as clb
from tencentcloud.tag.v20180813 import tag_client, models as tag

import sdk_checks
from sdk_checks import check, passed, req, wait_task



def carries_request_id(e, what):
    check(bool(e.get_request_id()), what + " carries a RequestId")


def expect_error(fn, code, what):
    sdk_checks.expect_error(fn, code, what, also=carries_request_id)


def set_faults(endpoint, faults):
    """POST /_sim/faults: the emulator's admin route, plain HTTP."""
    body = json.dumps(faults).encode()
    r = urllib.request.Request("http://%s/_sim/faults" % endpoint, data=body, method="POST",
                               headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(r, timeout=10) as resp:
        check(resp.status == 200, "admin route accepted the faults")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--endpoint", required=True)
    ap.add_argument("--secret-id", required=True)
    ap.add_argument("--secret-key", required=True)
    ap.add_argument("--region", default="ap-guangzhou")
    a = ap.parse_args()

    profile = ClientProfile(httpProfile=HttpProfile(endpoint=a.endpoint, protocol="http"))
    cred = credential.Credential(a.secret_id, a.secret_key)
    c = clb_client.ClbClient(cred, a.region, profile)
    t = tag_client.TagClient(cred, a.region, profile)

    # Create, tagged at once, idempotent by ClientToken.
    create = {
        "LoadBalancerType": "OPEN",
        "LoadBalancerName": "sdk-conformance",
        "Tags": [{"TagKey": "tke-clusterId", "TagValue": "cls-sdk"},
                 {"TagKey": "tke-lb-ingress-uuid", "TagValue": "uid-1"}],
        "ClientToken": "sdk-conformance-token",
    }
    r = c.CreateLoadBalancer(req(clb.CreateLoadBalancerRequest, create))
    check(len(r.LoadBalancerIds) == 1 and r.LoadBalancerIds[0].startswith("lb-"), "CreateLoadBalancer returns one lb- id")
    lb = r.LoadBalancerIds[0]
    check(bool(r.RequestId), "CreateLoadBalancer has a RequestId")
    wait_task(c, r.RequestId)
    again = c.CreateLoadBalancer(req(clb.CreateLoadBalancerRequest, create))
    check(again.LoadBalancerIds == [lb], "the same ClientToken returns the same CLB")

    d = c.DescribeLoadBalancers(req(clb.DescribeLoadBalancersRequest, {
        "Filters": [{"Name": "tag:tke-lb-ingress-uuid", "Values": ["uid-1"]}]}))
    check(d.TotalCount == 1 and len(d.LoadBalancerSet) == 1, "tag filter finds exactly the CLB")
    m = d.LoadBalancerSet[0]
    check(m.LoadBalancerId == lb and m.LoadBalancerType == "OPEN" and m.Status == 1, "LoadBalancer model fields")
    check(m.LoadBalancerName == "sdk-conformance", "LoadBalancerName read back")
    check(len(m.LoadBalancerVips) == 1 and m.LoadBalancerVips[0], "LoadBalancerVips has the VIP")
    check(sorted((x.TagKey, x.TagValue) for x in m.Tags) ==
          [("tke-clusterId", "cls-sdk"), ("tke-lb-ingress-uuid", "uid-1")], "Tags given at create are on the CLB")
    check(bool(m.CreateTime) and m.Forward == 1, "CreateTime and Forward")

    # Listeners: one call per protocol.
    r = c.CreateListener(req(clb.CreateListenerRequest, {
        "LoadBalancerId": lb, "Ports": [80], "Protocol": "HTTP", "ListenerNames": ["TKE-DEDICATED-LISTENER"]}))
    check(len(r.ListenerIds) == 1 and r.ListenerIds[0].startswith("lbl-"), "CreateListener HTTP returns lbl- id")
    http_l = r.ListenerIds[0]
    wait_task(c, r.RequestId)
    r = c.CreateListener(req(clb.CreateListenerRequest, {
        "LoadBalancerId": lb, "Ports": [443], "Protocol": "HTTPS", "ListenerNames": ["TKE-DEDICATED-LISTENER"],
        "SniSwitch": 1}))
    https_l = r.ListenerIds[0]
    wait_task(c, r.RequestId)
    expect_error(lambda: c.CreateListener(req(clb.CreateListenerRequest, {
        "LoadBalancerId": lb, "Ports": [80], "Protocol": "HTTP"})), "InvalidParameter.PortCheckFailed",
        "CreateListener on a used port")

    # Rules.
    r = c.CreateRule(req(clb.CreateRuleRequest, {
        "LoadBalancerId": lb, "ListenerId": http_l,
        "Rules": [{"Domain": "a.example.com", "Url": "/"},
                  {"Domain": "a.example.com", "Url": "/api", "HealthCheck": {"HttpCheckPath": "/healthz"}}]}))
    check(len(r.LocationIds) == 2 and all(x.startswith("loc-") for x in r.LocationIds), "CreateRule returns loc- ids")
    loc_root, loc_api = r.LocationIds
    wait_task(c, r.RequestId)
    r = c.CreateRule(req(clb.CreateRuleRequest, {
        "LoadBalancerId": lb, "ListenerId": https_l,
        "Rules": [{"Domain": "b.example.com", "Url": "/",
                   "Certificate": {"SSLMode": "UNIDIRECTIONAL", "CertId": "cert-b"}}]}))
    loc_b = r.LocationIds[0]
    wait_task(c, r.RequestId)
    r = c.ModifyRule(req(clb.ModifyRuleRequest, {
        "LoadBalancerId": lb, "ListenerId": http_l, "LocationId": loc_api, "Scheduler": "LEAST_CONN"}))
    wait_task(c, r.RequestId)

    dl = c.DescribeListeners(req(clb.DescribeListenersRequest, {"LoadBalancerId": lb}))
    check(dl.TotalCount == 2 and len(dl.Listeners) == 2, "DescribeListeners returns both")
    by_port = {x.Port: x for x in dl.Listeners}
    check(by_port[80].Protocol == "HTTP" and by_port[80].ListenerName == "TKE-DEDICATED-LISTENER", "HTTP listener fields")
    check(by_port[443].SniSwitch == 1, "HTTPS listener has SNI on")
    rules = {x.Url: x for x in by_port[80].Rules}
    check(set(rules) == {"/", "/api"}, "rules read back by Url")
    check(rules["/"].DefaultServer is True and rules["/"].Domain == "a.example.com", "first domain is the default")
    check(rules["/api"].HealthCheck.HttpCheckPath == "/healthz", "rule HealthCheck read back")
    check(rules["/api"].Scheduler == "LEAST_CONN", "ModifyRule changed the scheduler")
    b = by_port[443].Rules[0]
    check(b.LocationId == loc_b and b.Certificate.CertId == "cert-b", "SNI domain certificate read back")

    # Targets.
    r = c.RegisterTargets(req(clb.RegisterTargetsRequest, {
        "LoadBalancerId": lb, "ListenerId": http_l, "LocationId": loc_root,
        "Targets": [{"InstanceId": "ins-aaaa1111", "Port": 30080, "Weight": 10}]}))
    wait_task(c, r.RequestId)
    r = c.BatchRegisterTargets(req(clb.BatchRegisterTargetsRequest, {
        "LoadBalancerId": lb, "Targets": [
            {"ListenerId": http_l, "LocationId": loc_api, "EniIp": "10.0.0.5", "Port": 8080, "Weight": 20},
            {"ListenerId": https_l, "LocationId": loc_b, "InstanceId": "ins-bbbb2222", "Port": 30443}]}))
    check(r.FailListenerIdSet == [], "BatchRegisterTargets has no failed listener")
    r = c.BatchModifyTargetWeight(req(clb.BatchModifyTargetWeightRequest, {
        "LoadBalancerId": lb, "ModifyList": [{"ListenerId": http_l, "LocationId": loc_api, "Weight": 50,
                                               "Targets": [{"EniIp": "10.0.0.5", "Port": 8080}]}]}))
    wait_task(c, r.RequestId)
    dt = c.DescribeTargets(req(clb.DescribeTargetsRequest, {"LoadBalancerId": lb}))
    lbs = {x.ListenerId: x for x in dt.Listeners}
    check(set(lbs) == {http_l, https_l}, "DescribeTargets lists both listeners")
    trules = {x.LocationId: x for x in lbs[http_l].Rules}
    root_t = trules[loc_root].Targets
    check(len(root_t) == 1 and root_t[0].InstanceId == "ins-aaaa1111" and root_t[0].Port == 30080
          and root_t[0].Weight == 10 and root_t[0].Type == "CVM", "CVM target read back")
    api_t = trules[loc_api].Targets
    check(len(api_t) == 1 and api_t[0].PrivateIpAddresses == ["10.0.0.5"] and api_t[0].Weight == 50
          and api_t[0].Type == "ENI", "ENI target read back with the new weight")
    th = c.DescribeTargetHealth(req(clb.DescribeTargetHealthRequest, {"LoadBalancerIds": [lb, "lb-00000000"]}))
    check([x.LoadBalancerId for x in th.LoadBalancers] == [lb], "DescribeTargetHealth answers for the CLB that exists")
    hl = {x.Port: x for x in th.LoadBalancers[0].Listeners}
    check(set(hl) == {80, 443} and hl[80].Protocol == "HTTP" and hl[80].ListenerId == http_l
          and hl[80].ListenerName == "TKE-DEDICATED-LISTENER", "DescribeTargetHealth listeners with protocol and port")
    hr = {x.Url: x for x in hl[80].Rules}
    check(set(hr) == {"/", "/api"} and hr["/"].Domain == "a.example.com" and hr["/"].LocationId == loc_root,
          "DescribeTargetHealth rules with domain and url")
    rt0 = hr["/"].Targets
    check(len(rt0) == 1 and rt0[0].TargetId == "ins-aaaa1111" and rt0[0].Port == 30080 and rt0[0].Weight == 10
          and rt0[0].HealthStatus is True, "DescribeTargetHealth CVM target with weight")
    rt1 = hr["/api"].Targets
    check(len(rt1) == 1 and rt1[0].IP == "10.0.0.5" and rt1[0].Port == 8080 and rt1[0].Weight == 50,
          "DescribeTargetHealth ENI target by IP with weight")
    expect_error(lambda: c.DescribeTargetHealth(req(clb.DescribeTargetHealthRequest, {
        "LoadBalancerIds": ["lb-%08d" % i for i in range(31)]})), "LimitExceeded",
        "DescribeTargetHealth takes at most 30 CLBs")
    dd = c.DescribeLoadBalancersDetail(req(clb.DescribeLoadBalancersDetailRequest, {
        "Fields": ["ListenerId", "Protocol", "Port", "LocationId", "Domain", "Url", "TargetId", "TargetAddress",
                   "TargetPort", "TargetWeight", "Tags"],
        "TargetType": "NODE", "Limit": 100,
        "Filters": [{"Name": "tag:tke-clusterId", "Values": ["cls-sdk"]}]}))
    rows = sorted((x.Port, x.Url, x.TargetId, x.TargetAddress, x.TargetPort, x.TargetWeight)
                  for x in dd.LoadBalancerDetailSet)
    check(rows == [(80, "/", "ins-aaaa1111", None, 30080, 10), (80, "/api", None, "10.0.0.5", 8080, 50),
                   (443, "/", "ins-bbbb2222", None, 30443, 10)], "DescribeLoadBalancersDetail rows: %s" % rows)
    check(dd.TotalCount == 3 and all(x.LoadBalancerId == lb for x in dd.LoadBalancerDetailSet), "detail rows name the CLB")
    check(all(x.VpcId is None for x in dd.LoadBalancerDetailSet), "fields not asked for come back null")
    r = c.DeregisterTargets(req(clb.DeregisterTargetsRequest, {
        "LoadBalancerId": lb, "ListenerId": http_l, "LocationId": loc_root,
        "Targets": [{"InstanceId": "ins-aaaa1111", "Port": 30080}]}))
    wait_task(c, r.RequestId)
    r = c.BatchDeregisterTargets(req(clb.BatchDeregisterTargetsRequest, {
        "LoadBalancerId": lb, "Targets": [{"ListenerId": http_l, "LocationId": loc_api, "EniIp": "10.0.0.5", "Port": 8080}]}))
    dt = c.DescribeTargets(req(clb.DescribeTargetsRequest, {"LoadBalancerId": lb, "ListenerIds": [http_l]}))
    check(all(not x.Targets for x in dt.Listeners[0].Rules), "targets deregistered")

    # Tags through the Tag API.
    res = "qcs::clb:%s:uin/:clb/%s" % (a.region, lb)
    tr = t.TagResources(req(tag.TagResourcesRequest, {"ResourceList": [res],
                                                      "Tags": [{"TagKey": "team", "TagValue": "web"}]}))
    check(tr.FailedResources == [], "TagResources has no failed resource")
    d = c.DescribeLoadBalancers(req(clb.DescribeLoadBalancersRequest, {
        "Filters": [{"Name": "tag-key", "Values": ["team"]}]}))
    check([x.LoadBalancerId for x in d.LoadBalancerSet] == [lb], "tag-key filter sees the new tag")
    t.UnTagResources(req(tag.UnTagResourcesRequest, {"ResourceList": [res],
                                                    "TagKeys": ["team", "tke-clusterId"]}))
    d = c.DescribeLoadBalancers(req(clb.DescribeLoadBalancersRequest, {"LoadBalancerIds": [lb]}))
    check([(x.TagKey, x.TagValue) for x in d.LoadBalancerSet[0].Tags] == [("tke-lb-ingress-uuid", "uid-1")],
          "UnTagResources removed the keys")
    g = t.GetResources(req(tag.GetResourcesRequest, {"TagFilters": [{"TagKey": "tke-lb-ingress-uuid", "TagValue": ["uid-1"]}]}))
    check(len(g.ResourceTagMappingList) == 1 and g.ResourceTagMappingList[0].Resource.endswith("clb/" + lb),
          "GetResources finds the CLB by tag")

    rt = t.DescribeResourcesByTags(req(tag.DescribeResourcesByTagsRequest, {
        "TagFilters": [{"TagKey": "tke-lb-ingress-uuid", "TagValue": ["uid-1"]}], "ResourcePrefix": "clb",
        "ServiceType": "clb"}))
    check(rt.TotalCount == 1 and rt.Rows[0].ResourceId == lb and rt.Rows[0].ServiceType == "clb",
          "DescribeResourcesByTags finds the CLB")

    # Errors the SDK must see as such.
    expect_error(lambda: c.DescribeListeners(req(clb.DescribeListenersRequest, {"LoadBalancerId": "lb-missing0"})),
                 "InvalidParameter.LBIdNotFound", "DescribeListeners of a missing CLB")
    wrong = clb_client.ClbClient(credential.Credential(a.secret_id, a.secret_key + "x"), a.region, profile)
    expect_error(lambda: wrong.DescribeLoadBalancers(clb.DescribeLoadBalancersRequest()),
                 "AuthFailure.SignatureFailure", "a request signed with a wrong key")
    stranger = clb_client.ClbClient(credential.Credential("AKIDSTRANGER", a.secret_key), a.region, profile)
    expect_error(lambda: stranger.DescribeLoadBalancers(clb.DescribeLoadBalancersRequest()),
                 "AuthFailure.SecretIdNotFound", "an unknown SecretId")

    common = CommonClient("clb", "2018-03-17", cred, a.region, profile)
    expect_error(lambda: common.call_json("DescribeUnicorns", {}), "InvalidAction", "an unknown action")
    expect_error(lambda: common.call_json("DescribeLoadBalancers", {"Colour": "blue"}), "UnknownParameter",
                 "an unknown parameter")
    expect_error(lambda: common.call_json("CreateListener", {"LoadBalancerId": lb, "Protocol": "HTTP"}),
                 "MissingParameter", "a missing parameter")
    old = CommonClient("clb", "2017-03-12", cred, a.region, profile)
    expect_error(lambda: old.call_json("DescribeLoadBalancers", {}), "NoSuchVersion", "a wrong version")
    raw = common.call_json("DescribeLoadBalancers", {"LoadBalancerIds": [lb]})
    check(raw["Response"]["TotalCount"] == 1, "CommonClient reads the raw envelope")

    # Injected faults, set through the admin route, reach the SDK as the real API's would.
    set_faults(a.endpoint, {"scripted": [{"action": "DescribeLoadBalancers", "code": "RequestLimitExceeded", "count": 1}]})
    expect_error(lambda: c.DescribeLoadBalancers(clb.DescribeLoadBalancersRequest()), "RequestLimitExceeded",
                 "a throttled call")
    set_faults(a.endpoint, {"internal_error_rate": 1.0, "actions": ["DescribeListeners"]})
    expect_error(lambda: c.DescribeListeners(req(clb.DescribeListenersRequest, {"LoadBalancerId": lb})),
                 "InternalError", "an injected InternalError")
    set_faults(a.endpoint, {"drop_rate": 1.0, "actions": ["DescribeTargets"]})
    try:
        c.DescribeTargets(req(clb.DescribeTargetsRequest, {"LoadBalancerId": lb}))
        raise AssertionError("a dropped connection: the call succeeded")
    except TencentCloudSDKException as e:
        check(e.get_code() == "ClientNetworkError", "a dropped connection is a ClientNetworkError (got %s)" % e.get_code())
    set_faults(a.endpoint, {})
    d = c.DescribeLoadBalancers(req(clb.DescribeLoadBalancersRequest, {"LoadBalancerIds": [lb]}))
    check(d.TotalCount == 1, "calls succeed again once the faults are cleared")

    # What a TkeServiceConfig sets: rule health check, session, forward type (HTTPS only),
    # listener keep-alive, the listener's default domain; all read back by DescribeListeners.
    r = c.CreateRule(req(clb.CreateRuleRequest, {
        "LoadBalancerId": lb, "ListenerId": https_l,
        "Rules": [{"Domain": "c.example.com", "Url": "/",
                   "Certificate": {"SSLMode": "UNIDIRECTIONAL", "CertId": "cert-c"}}]}))
    loc_c = r.LocationIds[0]
    wait_task(c, r.RequestId)
    r = c.ModifyRule(req(clb.ModifyRuleRequest, {
        "LoadBalancerId": lb, "ListenerId": https_l, "LocationId": loc_c, "ForwardType": "GRPC",
        "SessionExpireTime": 600, "Scheduler": "IP_HASH",
        "HealthCheck": {"HealthSwitch": 1, "IntervalTime": 10, "TimeOut": 4, "HealthNum": 2, "UnHealthNum": 5,
                        "HttpCode": 2, "HttpCheckPath": "/healthz", "HttpCheckDomain": "c.example.com",
                        "HttpCheckMethod": "GET", "SourceIpType": 1}}))
    wait_task(c, r.RequestId)
    r = c.ModifyListener(req(clb.ModifyListenerRequest, {
        "LoadBalancerId": lb, "ListenerId": https_l, "KeepaliveEnable": 1}))
    wait_task(c, r.RequestId)
    r = c.ModifyDomainAttributes(req(clb.ModifyDomainAttributesRequest, {
        "LoadBalancerId": lb, "ListenerId": https_l, "Domain": "c.example.com", "DefaultServer": True}))
    wait_task(c, r.RequestId)
    expect_error(lambda: c.ModifyRule(req(clb.ModifyRuleRequest, {
        "LoadBalancerId": lb, "ListenerId": http_l, "LocationId": loc_root, "ForwardType": "GRPC"})),
        "InvalidParameterValue", "ForwardType on an HTTP listener")
    expect_error(lambda: c.ModifyRule(req(clb.ModifyRuleRequest, {
        "LoadBalancerId": lb, "ListenerId": https_l, "LocationId": loc_c,
        "HealthCheck": {"IntervalTime": 4}})),
        "InvalidParameterValue", "an IntervalTime not above the TimeOut")
    dl = c.DescribeListeners(req(clb.DescribeListenersRequest, {"LoadBalancerId": lb, "ListenerIds": [https_l]}))
    https = dl.Listeners[0]
    check(https.KeepaliveEnable == 1, "ModifyListener KeepaliveEnable read back")
    by_domain = {x.Domain: x for x in https.Rules}
    rc = by_domain["c.example.com"]
    check(rc.ForwardType == "GRPC" and rc.SessionExpireTime == 600 and rc.Scheduler == "IP_HASH",
          "ModifyRule forward type, session and scheduler read back")
    hc = rc.HealthCheck
    check((hc.HealthSwitch, hc.IntervalTime, hc.TimeOut, hc.HealthNum, hc.UnHealthNum, hc.HttpCode,
           hc.HttpCheckPath, hc.HttpCheckDomain, hc.HttpCheckMethod, hc.SourceIpType) ==
          (1, 10, 4, 2, 5, 2, "/healthz", "c.example.com", "GET", 1), "ModifyRule health check read back")
    check(rc.DefaultServer is True and by_domain["b.example.com"].DefaultServer is False,
          "ModifyDomainAttributes moved the default domain")
    check(by_domain["b.example.com"].ForwardType == "HTTP" and by_domain["b.example.com"].HealthCheck.IntervalTime == 5,
          "a rule not modified keeps the CLB's defaults")

    # The default quotas clb-sim enforces, as DescribeQuota reports them.
    qs = {x.QuotaId: x for x in c.DescribeQuota(clb.DescribeQuotaRequest()).QuotaSet}
    check((qs["TOTAL_LISTENER_QUOTA"].QuotaLimit, qs["TOTAL_LISTENER_RULE_QUOTA"].QuotaLimit,
           qs["TOTAL_TARGET_BIND_QUOTA"].QuotaLimit) == (50, 50, 100), "DescribeQuota default limits")
    check(qs["TOTAL_OPEN_CLB_QUOTA"].QuotaCurrent >= 1 and qs["TOTAL_TARGET_BIND_QUOTA"].QuotaCurrent is None,
          "DescribeQuota counts CLBs, not per-rule use")

    # Lifecycle attributes: deletion protection, pass-to-target, security groups.
    r = c.ModifyLoadBalancerAttributes(req(clb.ModifyLoadBalancerAttributesRequest, {
        "LoadBalancerId": lb, "DeleteProtect": True, "LoadBalancerPassToTarget": True}))
    check(bool(r.DealName), "ModifyLoadBalancerAttributes returns a DealName")
    wait_task(c, r.RequestId)
    c.SetLoadBalancerSecurityGroups(req(clb.SetLoadBalancerSecurityGroupsRequest, {
        "LoadBalancerId": lb, "SecurityGroups": ["sg-aaaa1111", "sg-bbbb2222"]}))
    m = c.DescribeLoadBalancers(req(clb.DescribeLoadBalancersRequest, {"LoadBalancerIds": [lb]})).LoadBalancerSet[0]
    check("DeleteProtect" in (m.AttributeFlags or []), "AttributeFlags shows DeleteProtect")
    check(m.LoadBalancerPassToTarget is True, "LoadBalancerPassToTarget read back")
    check(m.SecureGroups == ["sg-aaaa1111", "sg-bbbb2222"], "SecureGroups read back in order")
    expect_error(lambda: c.DeleteLoadBalancer(req(clb.DeleteLoadBalancerRequest, {"LoadBalancerIds": [lb],
                                                                                  "ForceDelete": True})),
                 "FailedOperation", "a deletion-protected CLB refuses even ForceDelete")
    c.SetLoadBalancerSecurityGroups(req(clb.SetLoadBalancerSecurityGroupsRequest, {"LoadBalancerId": lb}))
    r = c.ModifyLoadBalancerAttributes(req(clb.ModifyLoadBalancerAttributesRequest, {
        "LoadBalancerId": lb, "DeleteProtect": False}))
    wait_task(c, r.RequestId)
    m = c.DescribeLoadBalancers(req(clb.DescribeLoadBalancersRequest, {"LoadBalancerIds": [lb]})).LoadBalancerSet[0]
    check(not m.SecureGroups and "DeleteProtect" not in (m.AttributeFlags or []),
          "SecurityGroups omitted unbinds all; DeleteProtect off again")
    check(m.LoadBalancerPassToTarget is True, "an omitted attribute stays as it was")

    # Redirects: ManualRewrite, DescribeRewrite, the guard on redirected rules, DeleteRewrite,
    # AutoRewrite.
    r = c.ManualRewrite(req(clb.ManualRewriteRequest, {
        "LoadBalancerId": lb, "SourceListenerId": http_l, "TargetListenerId": https_l,
        "RewriteInfos": [{"SourceLocationId": loc_root, "TargetLocationId": loc_b, "RewriteCode": 301,
                          "TakeUrl": True, "SourceDomain": "a.example.com"}]}))
    wait_task(c, r.RequestId)
    dr = c.DescribeRewrite(req(clb.DescribeRewriteRequest, {"LoadBalancerId": lb}))
    check(len(dr.RewriteSet) == 1, "DescribeRewrite lists the redirect")
    w = dr.RewriteSet[0]
    check(w.LocationId == loc_root and w.ListenerId == http_l and w.Domain == "a.example.com" and w.Url == "/",
          "the redirect's source rule")
    check(w.RewriteTarget.TargetListenerId == https_l and w.RewriteTarget.TargetLocationId == loc_b
          and w.RewriteTarget.RewriteCode == 301 and w.RewriteTarget.TakeUrl is True
          and w.RewriteTarget.RewriteType == "Manual", "RewriteTarget fields")
    # DescribeListeners shows the same RewriteTarget on the source rule (the function reads
    # redirects there, without a DescribeRewrite).
    dl = c.DescribeListeners(req(clb.DescribeListenersRequest, {"LoadBalancerId": lb, "ListenerIds": [http_l]}))
    src = [x for l in dl.Listeners for x in (l.Rules or []) if x.LocationId == loc_root]
    check(len(src) == 1 and src[0].RewriteTarget.TargetLocationId == loc_b
          and src[0].RewriteTarget.TargetListenerId == https_l and src[0].RewriteTarget.RewriteCode == 301,
          "DescribeListeners' RewriteTarget of the redirected rule")
    expect_error(lambda: c.ManualRewrite(req(clb.ManualRewriteRequest, {
        "LoadBalancerId": lb, "SourceListenerId": http_l, "TargetListenerId": https_l,
        "RewriteInfos": [{"SourceLocationId": loc_root, "TargetLocationId": loc_b}]})),
        "InvalidParameter.RewriteAlreadyExist", "a second redirect from the same rule")
    expect_error(lambda: c.DeleteRule(req(clb.DeleteRuleRequest, {
        "LoadBalancerId": lb, "ListenerId": http_l, "LocationIds": [loc_root]})),
        "FailedOperation", "DeleteRule of a redirected rule")
    expect_error(lambda: c.DeleteListener(req(clb.DeleteListenerRequest, {
        "LoadBalancerId": lb, "ListenerId": https_l})), "FailedOperation", "DeleteListener of a redirect target")
    pair = {"SourceLocationId": loc_root, "TargetLocationId": loc_b}
    r = c.DeleteRewrite(req(clb.DeleteRewriteRequest, {
        "LoadBalancerId": lb, "SourceListenerId": http_l, "TargetListenerId": https_l, "RewriteInfos": [pair]}))
    wait_task(c, r.RequestId)
    dr = c.DescribeRewrite(req(clb.DescribeRewriteRequest, {"LoadBalancerId": lb}))
    check(dr.RewriteSet == [], "DeleteRewrite removed it")
    expect_error(lambda: c.DeleteRewrite(req(clb.DeleteRewriteRequest, {
        "LoadBalancerId": lb, "SourceListenerId": http_l, "TargetListenerId": https_l, "RewriteInfos": [pair]})),
        "InvalidParameter.SomeRewriteNotFound", "DeleteRewrite of a missing redirect")
    r = c.AutoRewrite(req(clb.AutoRewriteRequest, {
        "LoadBalancerId": lb, "ListenerId": https_l, "Domains": ["b.example.com"], "RewriteCodes": [307],
        "TakeUrls": [True]}))
    wait_task(c, r.RequestId)
    dr = c.DescribeRewrite(req(clb.DescribeRewriteRequest, {"LoadBalancerId": lb, "SourceListenerIds": [http_l]}))
    check(len(dr.RewriteSet) == 1 and dr.RewriteSet[0].Domain == "b.example.com" and dr.RewriteSet[0].Url == "/"
          and dr.RewriteSet[0].RewriteTarget.RewriteType == "Auto" and dr.RewriteSet[0].RewriteTarget.RewriteCode == 307
          and dr.RewriteSet[0].RewriteTarget.TargetLocationId == loc_b, "AutoRewrite mirrored b.example.com/ on HTTP:80")
    mirror = dr.RewriteSet[0].LocationId
    r = c.DeleteRewrite(req(clb.DeleteRewriteRequest, {
        "LoadBalancerId": lb, "SourceListenerId": http_l, "TargetListenerId": https_l,
        "RewriteInfos": [{"SourceLocationId": mirror, "TargetLocationId": loc_b}]}))
    wait_task(c, r.RequestId)
    r = c.DeleteRule(req(clb.DeleteRuleRequest, {"LoadBalancerId": lb, "ListenerId": http_l, "LocationIds": [mirror]}))
    wait_task(c, r.RequestId)

    # Deletes.
    r = c.DeleteRule(req(clb.DeleteRuleRequest, {"LoadBalancerId": lb, "ListenerId": http_l, "LocationIds": [loc_api]}))
    wait_task(c, r.RequestId)
    r = c.DeleteListener(req(clb.DeleteListenerRequest, {"LoadBalancerId": lb, "ListenerId": https_l}))
    wait_task(c, r.RequestId)
    dl = c.DescribeListeners(req(clb.DescribeListenersRequest, {"LoadBalancerId": lb}))
    check([x.ListenerId for x in dl.Listeners] == [http_l] and len(dl.Listeners[0].Rules) == 1, "rule and listener deleted")
    r = c.DeleteLoadBalancer(req(clb.DeleteLoadBalancerRequest, {"LoadBalancerIds": [lb]}))
    wait_task(c, r.RequestId)
    d = c.DescribeLoadBalancers(req(clb.DescribeLoadBalancersRequest, {"LoadBalancerIds": [lb]}))
    check(d.TotalCount == 0 and d.LoadBalancerSet == [], "the CLB is gone")
    print("sdk-conformance: %d checks passed" % passed())


if __name__ == "__main__":
    try:
        main()
    except AssertionError as e:
        print("FAILED:", e)
        sys.exit(1)
    except TencentCloudSDKException as e:
        print("FAILED: unexpected SDK error %s: %s" % (e.get_code(), e.get_message()))
        sys.exit(1)
