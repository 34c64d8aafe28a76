"""8 Python client threads x 1,000 calls against a Python handler: every
reply matches its request."""

import threading


THREADS = 8
CALLS = 1000


def handler(data, client_id):
    return {"t": data["t"], "i": data["i"], "sq": data["i"] * data["i"],
            "tag": data["tag"][::-1], "client": client_id}


def _run(clients):
    errors, counts = [], [0] * THREADS

    def worker(t):
        c = clients[t % len(clients)]
        try:
            for i in range(CALLS):
                tag = "t%d-i%d" % (t, i)
                r = c.send_and_receive({"endpoint": "h", "data": {
                    "t": t, "i": i, "tag": tag}})
                if (r["t"], r["i"], r["sq"], r["tag"]) != \
                        (t, i, i * i, tag[::-1]):
                    errors.append((t, i, r))
                counts[t] += 1
        except Exception as e:  # noqa: BLE001
            errors.append((t, repr(e)))

    ts = [threading.Thread(target=worker, args=(t,))
          for t in range(THREADS)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(120)
    assert not errors, errors[:5]
    assert counts == [CALLS] * THREADS


def test_threads_with_own_clients(make_server, make_client):
    srv = make_server({"h": handler})
    clients = [make_client(srv) for _ in range(THREADS)]
    _run(clients)
    ids = {c.call("h", {"t": 0, "i": 0, "tag": ""})["client"]
           for c in clients}
    assert len(ids) == THREADS


def test_threads_sharing_one_client(make_server, make_client):
    srv = make_server({"h": handler})
    _run([make_client(srv)])
    assert srv.running
