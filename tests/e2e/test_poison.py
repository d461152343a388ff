"""No request can stall the others (issue: a group POST whose vars nest 40
deep passed validation, could not be encoded, and sat at the head of the
api's queue until its timeout, holding every later request of the loop).

The api's timeout is set to a minute, so a request stuck in front of the
others would hold the GETs far beyond the client's 15 s bound; the poisoned
requests themselves must be answered 400 at once, not 503 at the timeout.
These are bounded waits, not speed targets."""
import json
import threading

import requests

GROUP = {"name": "g1", "role": "r", "attributes": '{"a":"b"}', "instance_type": "r3.xlarge",
         "cpus": "10", "ram": "64", "disk_size": "50"}


def deep(levels):
    """A JSON object nested `levels` deep."""
    value = 1
    for _ in range(levels):
        value = {"a": value}
    return value


def test_poisoned_requests_do_not_hold_ordinary_ones(stack_factory):
    s = stack_factory(api_env={"DEXTER_API_TIMEOUT_MS": "60000"})
    r = requests.post(s.url("/clusters"), data={"name": "p1", "provider": "aws", "type": "mesos"},
                      timeout=15)
    assert r.status_code == 201, r.text
    poisons = [
        # vars as a form field holding JSON text, and as a JSON body
        ("form", dict(GROUP, vars=json.dumps(deep(40)))),
        ("json", dict(GROUP, vars=deep(40))),
        ("json", dict(GROUP, vars=deep(33))),
    ]
    answers, errors = [], []

    def poison():
        try:
            for _ in range(10):
                for kind, body in poisons:
                    if kind == "form":
                        r = requests.post(s.url("/clusters/p1/groups"), data=body, timeout=15)
                    else:
                        r = requests.post(s.url("/clusters/p1/groups"), json=body, timeout=15)
                    answers.append((kind, r.status_code, r.json()))
        except Exception as e:          # a timeout is the failure this test looks for
            errors.append("poison: %r" % e)

    def ordinary():
        try:
            with requests.Session() as session:
                for _ in range(100):
                    r = session.get(s.url("/clusters/p1"), timeout=15)
                    answers.append(("get", r.status_code, None))
        except Exception as e:
            errors.append("get: %r" % e)

    threads = [threading.Thread(target=poison)] + [threading.Thread(target=ordinary) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not any(t.is_alive() for t in threads), "requests still unanswered after 120 s"
    assert not errors, errors
    gets = [a for a in answers if a[0] == "get"]
    assert len(gets) == 300 and all(code == 200 for _, code, _ in gets), \
        sorted({code for _, code, _ in gets})
    bad = [a for a in answers if a[0] != "get"]
    assert len(bad) == 30
    for kind, code, body in bad:
        assert code == 400, (kind, code, body)
        assert body["code"] == "INVALID", (kind, body)
        # A JSON body too deep is refused as a whole (no field); a form's
        # vars text is refused as the field it is.
        assert body.get("field") in ((None, "vars") if kind == "json" else ("vars",)), (kind, body)
    # The group was never made, and the cluster still answers.
    assert requests.get(s.url("/clusters/p1/groups/g1"), timeout=15).status_code == 404
