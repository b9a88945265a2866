#!/usr/bin/env python3
"""Drives clb-sim's SSL Certificates API (and CLB's DescribeLoadBalancerListByCertId) with the
official Tencent Cloud Python SDK (`tencentcloud-sdk-python-ssl`) and asserts on model fields.

Usage: sdk_conformance_ssl.py --endpoint 127.0.0.1:PORT --secret-id ID --secret-key KEY [--region R]
"""
import argparse
import sys

from tencentcloud.common import credential
from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException
from tencentcloud.common.profile.client_profile import ClientProfile
from tencentcloud.common.profile.http_profile import HttpProfile
from tencentcloud.clb.v20180317 import clb_client, models as clb
from tencentcloud.ssl.v20191205 import ssl_client, models as ssl

import sdk_checks
from sdk_checks import check, passed, req, wait_task

# Shapes only: the emulator checks PEM markers, never the cryptography.
CERT = "-----BEGIN CERTIFICATE-----\nMIIBconformance\n-----END CERTIFICATE-----\n"
KEY_MARK = "KEYBYTESNEVERECHOED"
KEY = "-----BEGIN PRIVATE KEY-----\n" + KEY_MARK + "\n-----END PRIVATE KEY-----\n"


def does_not_echo_the_key(e, what):
    check(KEY_MARK not in (e.get_message() or ""), what + ": the error does not echo the key")


def expect_error(fn, code, what):
    sdk_checks.expect_error(fn, code, what, also=does_not_echo_the_key)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--endpoint", required=True)
    ap.add_argument("--secret-id", required=True)
    ap.add_argument("--secret-key", required=True)
    ap.add_argument("--region", default="ap-guangzhou")
    a = ap.parse_args()
    profile = ClientProfile(httpProfile=HttpProfile(endpoint=a.endpoint, protocol="http"))
    cred = credential.Credential(a.secret_id, a.secret_key)
    s = ssl_client.SslClient(cred, "", profile)
    c = clb_client.ClbClient(cred, a.region, profile)

    tags = [{"TagKey": "tke-clusterId", "TagValue": "cls-sdk"},
            {"TagKey": "clb-ingress-secret-uid", "TagValue": "uid-secret"}]
    up = s.UploadCertificate(req(ssl.UploadCertificateRequest, {
        "CertificatePublicKey": CERT, "CertificatePrivateKey": KEY, "CertificateType": "SVR",
        "Alias": "shop/web-tls", "Tags": tags, "Repeatable": True}))
    cert = up.CertificateId
    check(bool(cert) and bool(up.RequestId), "UploadCertificate returns a CertificateId and a RequestId")
    again = s.UploadCertificate(req(ssl.UploadCertificateRequest, {
        "CertificatePublicKey": CERT, "CertificatePrivateKey": KEY, "Repeatable": False}))
    check(again.RepeatCertId == cert, "Repeatable=false names the identical certificate in RepeatCertId")
    expect_error(lambda: s.UploadCertificate(req(ssl.UploadCertificateRequest, {
        "CertificatePublicKey": CERT, "CertificatePrivateKey": "not a key " + KEY_MARK})),
        "FailedOperation.CertificateMatchError", "UploadCertificate with a broken key")
    expect_error(lambda: s.UploadCertificate(req(ssl.UploadCertificateRequest, {
        "CertificatePublicKey": "garbage", "CertificatePrivateKey": KEY})),
        "FailedOperation.CertificateParseError", "UploadCertificate with a broken certificate")

    d = s.DescribeCertificates(req(ssl.DescribeCertificatesRequest, {
        "Limit": 1000, "Tags": [{"TagKey": "tke-clusterId", "TagValue": "cls-sdk"}]}))
    check(d.TotalCount == 1 and len(d.Certificates) == 1, "DescribeCertificates filters by tag")
    m = d.Certificates[0]
    check(m.CertificateId == cert and m.Alias == "shop/web-tls" and m.CertificateType == "SVR",
          "Certificates model: id, alias, type")
    check(sorted((t.TagKey, t.TagValue) for t in m.Tags) ==
          sorted((t["TagKey"], t["TagValue"]) for t in tags), "Certificates model: tags read back")
    check(m.Status == 1 and m.From == "upload", "an uploaded certificate is issued, from upload")
    d = s.DescribeCertificates(req(ssl.DescribeCertificatesRequest, {
        "Tags": [{"TagKey": "tke-clusterId", "TagValue": "cls-other"}]}))
    check(d.TotalCount == 0 and d.Certificates == [], "another cluster's tag finds nothing")

    # Bound on an HTTPS listener: the CLB read says so, and a checked delete refuses.
    r = c.CreateLoadBalancer(req(clb.CreateLoadBalancerRequest, {"LoadBalancerType": "OPEN"}))
    lb = r.LoadBalancerIds[0]
    wait_task(c, r.RequestId)
    r = c.CreateListener(req(clb.CreateListenerRequest, {
        "LoadBalancerId": lb, "Ports": [443], "Protocol": "HTTPS", "ListenerNames": ["TKE-DEDICATED-LISTENER"],
        "Certificate": {"SSLMode": "UNIDIRECTIONAL", "CertId": cert}}))
    listener = r.ListenerIds[0]
    wait_task(c, r.RequestId)
    b = c.DescribeLoadBalancerListByCertId(req(clb.DescribeLoadBalancerListByCertIdRequest, {"CertIds": [cert, "nobody"]}))
    by = {x.CertId: [y.LoadBalancerId for y in x.LoadBalancers] for x in b.CertSet}
    check(by == {cert: [lb], "nobody": []}, "DescribeLoadBalancerListByCertId names the CLB using the certificate")
    expect_error(lambda: s.DeleteCertificate(req(ssl.DeleteCertificateRequest, {"CertificateId": cert, "IsCheckResource": True})),
                 "FailedOperation.BoundResources", "a checked delete of a bound certificate")

    r = c.DeleteListener(req(clb.DeleteListenerRequest, {"LoadBalancerId": lb, "ListenerId": listener}))
    wait_task(c, r.RequestId)
    b = c.DescribeLoadBalancerListByCertId(req(clb.DescribeLoadBalancerListByCertIdRequest, {"CertIds": [cert]}))
    check(len(b.CertSet) == 1 and b.CertSet[0].LoadBalancers == [], "unbound: no CLB uses it")
    dr = s.DeleteCertificate(req(ssl.DeleteCertificateRequest, {"CertificateId": cert}))
    check(dr.DeleteResult is True and bool(dr.RequestId), "DeleteCertificate answers DeleteResult true")
    expect_error(lambda: s.DeleteCertificate(req(ssl.DeleteCertificateRequest, {"CertificateId": cert})),
                 "FailedOperation.CertificateNotFound", "deleting it again")
    d = s.DescribeCertificates(req(ssl.DescribeCertificatesRequest, {"CertIds": [cert]}))
    check(d.TotalCount == 0, "the certificate is gone")
    r = c.DeleteLoadBalancer(req(clb.DeleteLoadBalancerRequest, {"LoadBalancerIds": [lb]}))
    wait_task(c, r.RequestId)
    print("sdk-conformance-ssl: %d checks passed" % passed())


if __name__ == "__main__":
    try:
        main()
    except AssertionError as e:
        print("FAILED:", e)
        sys.exit(1)
    except TencentCloudSDKException as e:
        print("FAILED: unexpected SDK error %s: %s" % (e.get_code(), e.get_message()))
        sys.exit(1)
