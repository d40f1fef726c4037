#!/usr/bin/python3
"""hpsched.Client against a real hpsched-server: every method, the error codes, deadlines and retries."""
from __future__ import annotations

import socket
import threading
import time
import unittest

import grpc

import hpsched
from hpsched import Client, HpschedError, Values
from hpsched.v1 import job_pb2, schedule_pb2
from hpsched_testing import ServerProcess, ServerTestCase, free_port, main

STEP = {"step": {"step_size": 10, "gamma": 0.5}}


def steplr(base: float, step: int) -> float:
    return base * 0.5 ** (step // 10)


class ClientTest(ServerTestCase):

    def test_create_get_delete(self):
        job = self.client.create_job("crud", {"lr": {"base_values": [0.1], "schedule": STEP}},
                                     labels={"team": "vision"})
        self.assertIsInstance(job, job_pb2.Job)
        self.assertEqual(job.name, "jobs/crud")
        self.assertEqual(job.version, 1)
        self.assertEqual(dict(job.labels), {"team": "vision"})
        self.assertEqual([hp.name for hp in job.hyperparameters], ["lr"])
        self.assertEqual(list(job.hyperparameters[0].base_values), [0.1])
        self.assertEqual(job.hyperparameters[0].schedule.step.step_size, 10)
        self.assertEqual(self.client.get_job("crud"), job)
        self.assertEqual(self.client.get_job("jobs/crud"), job)
        self.client.delete_job("crud")
        with self.assertRaises(HpschedError) as e:
            self.client.get_job("crud")
        self.assertEqual(e.exception.code, grpc.StatusCode.NOT_FOUND)
        with self.assertRaises(HpschedError) as e:
            self.client.delete_job("jobs/crud")
        self.assertEqual(e.exception.code, grpc.StatusCode.NOT_FOUND)

    def test_create_job_spec_forms(self):
        """A {name: spec} dict, a list of specs, Hyperparameter messages, a Job dict and a Job message all work."""
        schedule = schedule_pb2.Schedule()
        schedule.cosine_annealing.t_max = 20
        forms = {
            "form-map": dict(hyperparameters={"lr": {"base_values": 0.1, "schedule": {"cosine_annealing":
                                                                                       {"t_max": 20}}}}),
            "form-list": dict(hyperparameters=[{"name": "lr", "base_values": [0.1], "schedule": schedule}]),
            "form-msg": dict(hyperparameters=[job_pb2.Hyperparameter(name="lr", base_values=[0.1],
                                                                     schedule=schedule)]),
            "form-json-str": dict(hyperparameters={"lr": {"base_values": [0.1],
                                                          "schedule": '{"cosineAnnealing": {"tMax": "20"}}'}}),
            "form-job-dict": dict(job={"hyperparameters": [{"name": "lr", "base_values": [0.1],
                                                            "schedule": {"cosine_annealing": {"t_max": 20}}}]}),
            "form-job-msg": dict(job=job_pb2.Job(hyperparameters=[job_pb2.Hyperparameter(
                name="lr", base_values=[0.1], schedule=schedule)])),
        }
        for job_id, kwargs in forms.items():
            with self.subTest(job_id):
                job = self.client.create_job(job_id, **kwargs)
                self.assertEqual(job.hyperparameters[0].schedule, schedule)
                self.assertEqual(list(job.hyperparameters[0].base_values), [0.1])
        with self.assertRaises(ValueError):
            self.client.create_job("bad-key", {"lr": {"base_values": [0.1], "schedule": {"no_such_kind": {}}}})
        with self.assertRaises(ValueError):
            self.client.create_job("bad-key", {"lr": {"base": [0.1], "schedule": STEP}})
        with self.assertRaises(TypeError):
            self.client.create_job("bad-both", {"lr": {"base_values": [0.1], "schedule": STEP}}, job={})

    def test_create_is_idempotent_and_already_exists(self):
        spec = {"lr": {"base_values": [0.1], "schedule": STEP}}
        first = self.client.create_job("idem", spec, request_id="req-1")
        self.assertEqual(self.client.create_job("idem", spec, request_id="req-1"), first)
        self.assertEqual(self.client.create_job("idem", spec), first)  # identical spec, new request_id
        with self.assertRaises(HpschedError) as e:
            self.client.create_job("idem", {"lr": {"base_values": [0.2], "schedule": STEP}})
        self.assertEqual(e.exception.code, grpc.StatusCode.ALREADY_EXISTS)
        self.assertEqual(e.exception.method, "CreateJob")
        self.assertIn("idem", e.exception.message)

    def test_invalid_argument_names_the_field(self):
        with self.assertRaises(HpschedError) as e:
            self.client.create_job("bad", {"lr": {"base_values": [0.1], "schedule": {"cosine_annealing":
                                                                                     {"t_max": 0}}}})
        self.assertEqual(e.exception.code, grpc.StatusCode.INVALID_ARGUMENT)
        self.assertIn("job.hyperparameters[0].schedule.cosine_annealing.t_max", e.exception.message)
        self.assertIn("t_max", str(e.exception))
        self.assertIn("INVALID_ARGUMENT", str(e.exception))
        with self.assertRaises(HpschedError) as e:
            self.client.create_job("bad", {"lr": {"base_values": [0.1], "schedule": {"step": {"step_size": -1}}}})
        self.assertEqual(e.exception.code, grpc.StatusCode.INVALID_ARGUMENT)
        self.assertIn("step_size", e.exception.message)
        with self.assertRaises(HpschedError) as e:
            self.client.preview({"cosine_annealing": {"t_max": 0}}, [0.1])
        self.assertEqual(e.exception.code, grpc.StatusCode.INVALID_ARGUMENT)
        self.assertIn("t_max", e.exception.message)
        self.assertEqual(e.exception.attempts, 1)  # not retried

    def test_list_jobs_iterates_pages(self):
        ids = [f"list-{i:02d}" for i in range(7)]
        for job_id in reversed(ids):
            self.client.create_job(job_id, {"lr": {"base_values": [0.1], "schedule": STEP}})
        for page_size in (0, 1, 3, 7, 1000):
            with self.subTest(page_size=page_size):
                names = [j.name for j in self.client.list_jobs(page_size=page_size)]
                mine = [n for n in names if n.startswith("jobs/list-")]
                self.assertEqual(mine, [f"jobs/{i}" for i in ids])
                self.assertEqual(names, sorted(names))

    def test_get_values(self):
        self.client.create_job("values", {
            "lr": {"base_values": [0.1, 0.01], "schedule": STEP},
            "momentum": {"base_values": [0.9, 0.8], "schedule": {"constant": {"factor": 0.5, "total_iters": 3}}},
        })
        values = self.client.get_values("values", step=5, count=30)
        self.assertIsInstance(values, Values)
        self.assertEqual((values.job, values.version, values.start_step, values.count), ("jobs/values", 1, 5, 30))
        self.assertEqual(list(values), [("lr", 0), ("lr", 1), ("momentum", 0), ("momentum", 1)])
        self.assertEqual(values.hyperparameters, ["lr", "momentum"])
        self.assertEqual(values.groups("lr"), 2)
        for g, base in enumerate([0.1, 0.01]):
            for i, v in enumerate(values[("lr", g)]):
                self.assertAlmostEqual(v, steplr(base, 5 + i), delta=1e-12 * base)
        self.assertEqual(values[("momentum", 0)], [0.9] * 30)
        self.assertEqual(values.value("lr", 1, 20), values[("lr", 1)][15])
        with self.assertRaises(IndexError):
            values.value("lr", 0, 35)
        one = self.client.get_values("jobs/values", 0)
        self.assertEqual(one.count, 1)
        self.assertEqual(one[("momentum", 1)], [0.8 * 0.5])
        only = self.client.get_values("values", 0, 3, hyperparameters="momentum")
        self.assertEqual(list(only), [("momentum", 0), ("momentum", 1)])
        response = self.client.get_values_response("values", 0, 1)
        self.assertEqual(response.lr, 0.1)
        with self.assertRaises(HpschedError) as e:
            self.client.get_values("no-such-job", 0)
        self.assertEqual(e.exception.code, grpc.StatusCode.NOT_FOUND)
        with self.assertRaises(HpschedError) as e:
            self.client.get_values("values", -1)
        self.assertEqual(e.exception.code, grpc.StatusCode.INVALID_ARGUMENT)

    def test_batch_get_values(self):
        self.client.create_job("batch", {"lr": {"base_values": [0.1], "schedule": STEP}})
        batch = self.client.batch_get_values([("batch", 0, 5), {"job": "jobs/batch", "step": 25, "count": 5}])
        self.assertEqual([b.start_step for b in batch], [0, 25])
        self.assertEqual(batch[0], self.client.get_values("batch", 0, 5))
        self.assertEqual(batch[1], self.client.get_values("batch", 25, 5))
        with self.assertRaises(HpschedError) as e:
            self.client.batch_get_values([("batch", 0), ("missing", 0)])
        self.assertEqual(e.exception.code, grpc.StatusCode.NOT_FOUND)

    def test_preview(self):
        got = self.client.preview(STEP, [0.1, 0.01], start_step=0, count=30)
        self.assertEqual(len(got), 2)
        for g, base in enumerate([0.1, 0.01]):
            self.assertEqual(len(got[g]), 30)
            for step, v in enumerate(got[g]):
                self.assertAlmostEqual(v, steplr(base, step), delta=1e-12 * base)
        self.assertEqual(self.client.preview(STEP, 0.1, start_step=10)[0], [0.05])
        self.assertEqual(self.client.preview(STEP)[0], [1.0])  # no base values: one group with base 1
        msg = schedule_pb2.Schedule()
        msg.exponential.gamma = 0.5
        self.assertEqual(self.client.preview(msg, [2.0], 0, 3), [[2.0, 1.0, 0.5]])

    def test_thread_safe(self):
        """One client, 8 threads, 25 calls each: every answer is right."""
        self.client.create_job("threads", {"lr": {"base_values": [0.1], "schedule": STEP}})
        errors = []

        def work(seed):
            try:
                for i in range(25):
                    step = (seed * 37 + i * 11) % 500
                    v = self.client.get_values("threads", step, 4)
                    want = [steplr(0.1, s) for s in range(step, step + 4)]
                    for a, b in zip(v[("lr", 0)], want):
                        if abs(a - b) > 1e-12 * 0.1:
                            errors.append((step, v[("lr", 0)], want))
            except Exception as e:  # noqa: BLE001
                errors.append(e)

        threads = [threading.Thread(target=work, args=(s,)) for s in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        self.assertEqual(errors, [])

    def test_package_exports(self):
        self.assertIs(hpsched.Client, Client)
        self.assertIs(hpsched.HpschedError, HpschedError)
        self.assertEqual(hpsched.job_name("x"), "jobs/x")
        self.assertEqual(hpsched.job_name("jobs/x"), "jobs/x")


class ConnectionTest(unittest.TestCase):

    def test_unavailable_after_max_attempts(self):
        """Nothing listens: UNAVAILABLE after max_attempts attempts, well within the deadline."""
        port = free_port()
        with Client(f"127.0.0.1:{port}", timeout=20.0, max_attempts=4, initial_backoff=0.05, max_backoff=0.2) as c:
            start = time.monotonic()
            with self.assertRaises(HpschedError) as e:
                c.get_job("anything")
            elapsed = time.monotonic() - start
        self.assertEqual(e.exception.code, grpc.StatusCode.UNAVAILABLE)
        self.assertEqual(e.exception.attempts, 4)
        self.assertIn("UNAVAILABLE", str(e.exception))
        self.assertLess(elapsed, 5.0)

    def test_default_client_gives_up_within_its_deadline(self):
        """Defaults (timeout 10 s, 5 attempts, backoff 0.1 s doubling): bounded by the deadline."""
        port = free_port()
        with Client(f"127.0.0.1:{port}") as c:
            start = time.monotonic()
            with self.assertRaises(HpschedError) as e:
                c.get_values("x", 0)
            elapsed = time.monotonic() - start
        self.assertEqual(e.exception.code, grpc.StatusCode.UNAVAILABLE)
        self.assertLessEqual(e.exception.attempts, 5)
        self.assertLess(elapsed, 10.5)

    def test_no_retry_with_one_attempt(self):
        with Client(f"127.0.0.1:{free_port()}", max_attempts=1) as c:
            with self.assertRaises(HpschedError) as e:
                c.list_jobs().__next__()
        self.assertEqual((e.exception.code, e.exception.attempts), (grpc.StatusCode.UNAVAILABLE, 1))

    def test_deadline_exceeded(self):
        """A peer that accepts TCP but never speaks HTTP/2: the call ends at its deadline, DEADLINE_EXCEEDED."""
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as silent:
            silent.bind(("127.0.0.1", 0))
            silent.listen(16)
            with Client(f"127.0.0.1:{silent.getsockname()[1]}", timeout=1.0) as c:
                start = time.monotonic()
                with self.assertRaises(HpschedError) as e:
                    c.get_job("anything")
                elapsed = time.monotonic() - start
        self.assertEqual(e.exception.code, grpc.StatusCode.DEADLINE_EXCEEDED)
        self.assertGreater(elapsed, 0.9)
        self.assertLess(elapsed, 3.0)

    def test_retry_until_the_server_is_up(self):
        """The server starts ~1 s after the first attempt; the retried create succeeds, exactly once."""
        port = free_port()
        # The deadline bounds the retries, not an attempt count: a slow machine may take seconds to start the server.
        client = Client(f"127.0.0.1:{port}", timeout=30.0, max_attempts=10_000, initial_backoff=0.1, max_backoff=0.5,
                        channel_options=[("grpc.initial_reconnect_backoff_ms", 100),
                                         ("grpc.min_reconnect_backoff_ms", 100),
                                         ("grpc.max_reconnect_backoff_ms", 500)])
        result = {}

        def create():
            try:
                result["job"] = client.create_job("late", {"lr": {"base_values": [0.1], "schedule": STEP}})
            except Exception as e:  # noqa: BLE001
                result["error"] = e

        thread = threading.Thread(target=create)
        thread.start()
        time.sleep(1.0)
        # Started from this (main) thread: the server dies with the thread that started it.
        with ServerProcess(port=port) as server:
            thread.join(40)
            self.assertFalse(thread.is_alive())
            self.assertNotIn("error", result)
            self.assertEqual(result["job"].name, "jobs/late")
            with Client(server.target) as other:
                self.assertEqual([j.name for j in other.list_jobs()], ["jobs/late"])
        client.close()


if __name__ == "__main__":
    main()
