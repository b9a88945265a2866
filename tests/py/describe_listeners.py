#!/usr/bin/env python3
"""Reads a CLB's listeners back through the official Tencent Cloud Python SDK and prints the
DescribeListeners response as the SDK's models serialise it (one JSON document): the
end-to-end tests look at the CLB the way a user of the SDK (or tccli) would.

Usage: describe_listeners.py --endpoint 127.0.0.1:PORT --secret-id ID --secret-key KEY
       --region R --lb LB_ID
"""
import argparse
import sys

from tencentcloud.common import credential
from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException
from tencentcloud.common.profile.client_profile import ClientProfile
from tencentcloud.common.profile.http_profile import HttpProfile
from tencentcloud.clb.v20180317 import clb_client, models as clb


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--endpoint", required=True)
    ap.add_argument("--secret-id", required=True)
    ap.add_argument("--secret-key", required=True)
    ap.add_argument("--region", default="ap-guangzhou")
    ap.add_argument("--lb", required=True)
    a = ap.parse_args()
    profile = ClientProfile(httpProfile=HttpProfile(endpoint=a.endpoint, protocol="http"))
    c = clb_client.ClbClient(credential.Credential(a.secret_id, a.secret_key), a.region, profile)
    r = clb.DescribeListenersRequest()
    r.LoadBalancerId = a.lb
    try:
        print(c.DescribeListeners(r).to_json_string())
    except TencentCloudSDKException as e:
        print("SDK error %s: %s" % (e.get_code(), e.get_message()), file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
