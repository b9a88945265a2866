"""What the SDK conformance scripts share: counted checks, typed requests from plain dicts,
expected API errors and CLB task waits. A failed check raises, so the script exits non-zero."""
import json
import time

from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException
from tencentcloud.clb.v20180317 import models as clb

_passed = 0


def passed():
    """How many checks have passed so far."""
    return _passed


def check(cond, what):
    global _passed
    if not cond:
        raise AssertionError(what)
    _passed += 1
    print("ok", what)


def req(model_cls, params):
    r = model_cls()
    r.from_json_string(json.dumps(params))
    return r


def expect_error(fn, code, what, also=None):
    """`fn` must fail with the API error `code`; `also(e, what)` checks more of that error."""
    try:
        fn()
    except TencentCloudSDKException as e:
        check(e.get_code() == code, "%s -> %s (got %s)" % (what, code, e.get_code()))
        if also is not None:
            also(e, what)
        return
    raise AssertionError(what + ": expected " + code + ", the call succeeded")


def wait_task(c, request_id):
    for _ in range(200):
        r = c.DescribeTaskStatus(req(clb.DescribeTaskStatusRequest, {"TaskId": request_id}))
        if r.Status == 0:
            return
        if r.Status != 2:
            raise AssertionError("task %s has status %s" % (request_id, r.Status))
        time.sleep(0.02)
    raise AssertionError("task %s never finished" % request_id)
