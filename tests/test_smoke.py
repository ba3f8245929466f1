from reliable_queue import get_queue
from reliable_queue.worker import Worker
from tests.testapp import tasks


def test_enqueue_and_run_in_burst_worker():
    job = tasks.add.enqueue(2, 3)
    q = get_queue("default")
    assert q.stats()["pending"] == 1
    assert q.get(job.id).state == "pending"
    Worker(burst=True).run(install_signals=False)
    assert [r[:2] for r in tasks.recorded()] == [["add", 5]]
    s = q.stats()
    assert (s["pending"], s["inflight"], s["dead"], s["done"]) == (0, 0, 0, 1)
    assert q.get(job.id) is None
