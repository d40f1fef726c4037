#!/usr/bin/python3
"""hpsched.Client against a real hpsched-server: every method, the error codes, deadlines and retries; the live-jobs
calls (update_job and its one-liners, report_metrics, watch_job, pending policies) and their retry safety; the API
the client caught up with (peek, GetMetricReports, served_through and watchers, the ListJobs filter); CANCELLED
retried like UNAVAILABLE, through a grpcio proxy of the test's own that ends chosen calls to the real server with a
server-side cancel."""
from __future__ import annotations

import collections
import os
import socket
import subprocess
import tempfile
import threading
import time
import unittest
from concurrent import futures

import grpc
import torch

import hpsched
from hpsched import Client, HpschedError, Values, pin, reschedule, scale
from hpsched.v1 import job_pb2, schedule_pb2, scheduler_service_pb2
from hpsched_testing import ServerProcess, ServerTestCase, closed_port, main

STEP = {"step": {"step_size": 10, "gamma": 0.5}}


def steplr(base: float, step: int) -> float:
    return base * 0.5 ** (step // 10)


def plateau_spec(patience: int = 0, factor: float = 0.5) -> dict:
    return {"lr": {"base_values": [0.1], "schedule": {"reduce_on_plateau": {"metric": "val_loss", "patience": patience,
                                                                            "factor": factor}}}}


class _LostResponse(grpc.RpcError):
    """What the client sees when the server applied a call but its answer was lost: UNAVAILABLE."""

    def code(self):
        return grpc.StatusCode.UNAVAILABLE

    def details(self):
        return "the answer was lost (test)"


class LoseFirstAnswer(grpc.UnaryUnaryClientInterceptor):
    """Lets the first call of `method` reach the server and complete, then reports UNAVAILABLE instead of its answer,
    so the Client retries a call the server has already applied."""

    def __init__(self, method: str):
        self.method = f"/hpsched.v1.SchedulerService/{method}"
        self.sent = 0

    def intercept_unary_unary(self, continuation, client_call_details, request):
        call = continuation(client_call_details, request)
        if client_call_details.method == self.method:
            self.sent += 1
            if self.sent == 1:
                call.result()  # applied on the server
                raise _LostResponse()
        return call


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
        with self.assertRaises(hpsched.SpecError):
            self.client.create_job("bad-key", {"lr": {"base_values": [0.1], "schedule": {"no_such_kind": {}}}})
        with self.assertRaises(hpsched.SpecError):
            self.client.create_job("bad-key", {"lr": {"base": [0.1], "schedule": STEP}})
        with self.assertRaises(TypeError):
            self.client.create_job("bad-both", {"lr": {"base_values": [0.1], "schedule": STEP}}, job={})

    def test_per_group_values_as_plain_numbers(self):
        """"max_lr": 0.1 means one value for every group, as PyTorch writes it; the values are PyTorch's."""
        spec = {"cyclic": {"base_lr": 0.01, "max_lr": 0.1, "step_size_up": 5, "cycle_momentum": False}}
        job = self.client.create_job("plain-numbers", {"lr": {"base_values": [0.5, 0.7], "schedule": spec}})
        self.assertEqual(list(job.hyperparameters[0].schedule.cyclic.max_lr), [0.1])
        self.assertEqual(list(job.hyperparameters[0].schedule.cyclic.base_lr), [0.01])
        opt = torch.optim.SGD([{"params": [torch.nn.Parameter(torch.ones(1))], "lr": lr} for lr in (0.5, 0.7)])
        local = torch.optim.lr_scheduler.CyclicLR(opt, base_lr=0.01, max_lr=0.1, step_size_up=5,
                                                  cycle_momentum=False)
        want = []
        for _ in range(25):
            want.append([g["lr"] for g in opt.param_groups])
            opt.step()
            local.step()
        values = self.client.get_values("plain-numbers", 0, 25)
        for g in range(2):
            for step, (got, expected) in enumerate(zip(values[("lr", g)], (w[g] for w in want))):
                self.assertAlmostEqual(got, expected, delta=1e-15, msg=f"group {g} step {step}")
        # The same in a Job dict, a JSON string and a preview.
        job = self.client.create_job("plain-numbers-job", job={"hyperparameters": [
            {"name": "lr", "base_values": 0.1, "schedule": {"one_cycle": {"max_lr": 0.1, "total_steps": 10}}}]})
        self.assertEqual(list(job.hyperparameters[0].base_values), [0.1])
        self.assertEqual(list(job.hyperparameters[0].schedule.one_cycle.max_lr), [0.1])
        [[initial]] = self.client.preview('{"one_cycle": {"max_lr": 0.1, "total_steps": 10}}', [1.0], 0, 1)
        self.assertAlmostEqual(initial, 0.1 / 25, delta=1e-15)

    def test_pytorch_spellings_are_aliases(self):
        """T_max, T_0, T_mult (PyTorch's), camelCase (protobuf's JSON names): our snake_case fields."""
        for spelling in ({"T_max": 20, "eta_min": 0.001}, {"tMax": 20, "etaMin": 0.001},
                         {"t_max": 20, "eta_min": 0.001}):
            with self.subTest(spelling):
                got = self.client.preview({"cosine_annealing": spelling}, 0.1, 0, 3)
                self.assertEqual(got, self.client.preview(schedule_pb2.Schedule(
                    cosine_annealing=schedule_pb2.CosineAnnealingSchedule(t_max=20, eta_min=0.001)), 0.1, 0, 3))
        job = self.client.create_job("warm-restarts", {"lr": {"base_values": 0.1, "schedule": {
            "cosine_annealing_warm_restarts": {"T_0": 10, "T_mult": 2, "eta_min": 0.0}}}})
        warm = job.hyperparameters[0].schedule.cosine_annealing_warm_restarts
        self.assertEqual((warm.t_0, warm.t_mult), (10, 2))

    def assertSpecError(self, call, message):
        """call() raises the client's SpecError (an HpschedError and a ValueError) with exactly `message`."""
        with self.assertRaises(hpsched.SpecError) as e:
            call()
        self.assertIsInstance(e.exception, HpschedError)
        self.assertIsInstance(e.exception, ValueError)
        self.assertEqual(e.exception.code, grpc.StatusCode.INVALID_ARGUMENT)
        self.assertEqual(e.exception.message, message)
        self.assertNotRegex(e.exception.message, r"[a-z][A-Z]")  # snake_case names only, no camelCase
        return e.exception

    def test_json_layer_errors_name_the_field(self):
        kinds = ", ".join(f.name for f in schedule_pb2.Schedule.DESCRIPTOR.fields)
        create = self.client.create_job
        self.assertSpecError(
            lambda: create("bad", {"lr": {"base_values": [0.1], "schedule": {"cosine_anealing": {"t_max": 20}}}}),
            "hyperparameters['lr'].schedule.cosine_anealing: unknown schedule kind 'cosine_anealing'; did you mean "
            f"cosine_annealing? (valid: {kinds})")
        self.assertSpecError(
            lambda: create("bad", {"lr": {"base_values": [0.1], "schedule": {"cosine_annealing": {"T_maxx": 20}}}}),
            "hyperparameters['lr'].schedule.cosine_annealing.T_maxx: unknown field 'T_maxx'; did you mean t_max? "
            "(valid: t_max, eta_min)")
        self.assertSpecError(
            lambda: create("bad", {"lr": {"base_valus": [0.1], "schedule": STEP}}),
            "hyperparameters['lr'].base_valus: unknown field 'base_valus'; did you mean base_values? (valid: name, "
            "base_values, schedule, segments, plateau_reductions)")
        self.assertSpecError(
            lambda: create("bad", {"lr": {"base_values": [0.1], "schedule": {"sequential": {
                "schedules": [STEP, {"step": {"step_size": "ten"}}], "milestones": 5}}}}),
            "hyperparameters['lr'].schedule.sequential.schedules[1].step.step_size: expected an integer, got str "
            "'ten'")
        self.assertSpecError(
            lambda: create("bad", {"lr": {"base_values": [0.1], "schedule": {"step": {"step_size": 3},
                                                                            "exponential": {"gamma": 0.9}}}}),
            "hyperparameters['lr'].schedule: one kind only, got step and exponential")
        self.assertSpecError(lambda: create("bad", {"lr": 0.1}),
                             "hyperparameters['lr']: expected a Hyperparameter or a dict {\"base_values\", "
                             "\"schedule\"}, got float")
        self.assertSpecError(lambda: create("bad", job={"hyperparameters": [{"name": "lr", "schedul": STEP}]}),
                             "job.hyperparameters[0].schedul: unknown field 'schedul'; did you mean schedule? "
                             "(valid: name, base_values, schedule, segments, plateau_reductions)")
        self.assertSpecError(lambda: self.client.preview('{"step": ', [0.1]),
                             "schedule: not valid JSON: Expecting value: line 1 column 10 (char 9)")
        self.assertSpecError(lambda: self.client.get_values("crud", 0, pending_policy="provisional"),
                             "pending_policy: unknown policy 'provisional'; did you mean provisional_now? (valid: "
                             "wait, wait_then_provisional, provisional_now)")
        # update_job names an unknown key, in both dict forms.
        self.client.create_job("update-keys", {"lr": {"base_values": [0.1], "schedule": STEP}})
        self.assertSpecError(
            lambda: self.client.update_job("update-keys", {"hyperparameter": "lr", "from_step": 5, "scael": 0.5}),
            "updates[0].scael: unknown key 'scael'; did you mean scale? (valid: hyperparameter, from_step, "
            "effective_step, scale, pin, schedule, time, anchor)")
        self.assertSpecError(
            lambda: self.client.update_job("update-keys", {"hyperparameter": "lr", "segment": {
                "effective_step": 5, "pinn": {"values": [0.1]}}}),
            "updates[0].segment.pinn: unknown field 'pinn'; did you mean pin? (valid: effective_step, schedule, "
            "scale, pin, time, anchor, version, create_time)")
        self.assertSpecError(
            lambda: self.client.update_job("update-keys", {"hyperparameter": "lr", "from_step": 5, "schedule": {
                "cosine_annealing": {"t_maks": 10}}}),
            "updates[0].schedule.cosine_annealing.t_maks: unknown field 't_maks'; did you mean t_max? (valid: t_max, "
            "eta_min)")
        self.assertSpecError(
            lambda: self.client.update_job("update-keys", {"hyperparameter": "lr", "from_step": "5", "scale": 0.5}),
            "updates[0].from_step: expected an int, got str '5'")
        self.assertSpecError(lambda: reschedule("lr", {"stepp": {}}, 5),
                             f"lr.schedule.stepp: unknown schedule kind 'stepp'; did you mean step? (valid: {kinds})")

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


class LiveJobsTest(ServerTestCase):
    """update_job, report_metrics, watch_job and the pending policies of get_values."""

    def lr(self, job_id, step, count, group=0):
        return self.client.get_values(job_id, step, count, "lr")[("lr", group)]

    def test_update_job_one_liners_change_values_from_their_step_on(self):
        self.client.create_job("live", {"lr": {"base_values": [0.1, 0.2], "schedule": STEP},
                                        "momentum": {"base_values": [0.9, 0.8], "schedule": {"constant": {}}}})
        before = {g: self.lr("live", 0, 100, g) for g in (0, 1)}  # serves [0, 100)

        job = self.client.update_job("live", scale("lr", 0.5, from_step=100))
        self.assertIsInstance(job, job_pb2.Job)
        self.assertEqual(job.version, 2)
        for g, base in enumerate([0.1, 0.2]):
            got = self.lr("live", 0, 200, g)
            self.assertEqual(got[:100], before[g])
            self.assertEqual(got[100:], [steplr(base, s) * 0.5 for s in range(100, 200)])

        # Steps up to 199 are served now (of every hyperparameter): the next change starts at 200 or later.
        self.client.update_job("live", pin("momentum", [0.5, 0.4], from_step=200))  # one value per group
        momentum = self.client.get_values("live", 199, 2, "momentum")
        self.assertEqual((momentum[("momentum", 0)], momentum[("momentum", 1)]), ([0.9, 0.5], [0.8, 0.4]))

        # Anchored exponential on local time from 300: continues from the value at 300, then * 0.9 per step.
        self.client.update_job("live", reschedule("lr", {"exponential": {"gamma": 0.9}}, from_step=300, anchor=True))
        got = self.lr("live", 298, 5)
        at_300 = steplr(0.1, 300) * 0.5
        self.assertEqual(got[:2], [steplr(0.1, 298) * 0.5, steplr(0.1, 299) * 0.5])
        for i, v in enumerate(got[2:]):
            self.assertAlmostEqual(v, at_300 * 0.9 ** i, delta=1e-15)

        # The same StepLR on global time from 400 (the value of global step 400) and on local time from 500.
        self.client.update_job("live", [reschedule("lr", STEP, from_step=400, time="global"),
                                        {"hyperparameter": "lr", "from_step": 500, "schedule": STEP, "time": "local"}])
        got = self.lr("live", 400, 200)
        self.assertEqual(got[:100], [steplr(0.1, s) for s in range(400, 500)])
        self.assertEqual(got[100:], [steplr(0.1, s) for s in range(100)])
        # A dict of the flat form, and the proto JSON form.
        self.client.update_job("live", {"hyperparameter": "lr", "from_step": 700, "pin": 0.001})
        last = self.client.update_job("live", {"hyperparameter": "lr", "segment": {"effective_step": 800,
                                                                                   "scale": 2.0}})
        self.assertEqual(self.lr("live", 699, 2) + self.lr("live", 799, 2), [steplr(0.1, 199), 0.001, 0.001, 0.002])

        self.assertEqual([s.effective_step for s in last.hyperparameters[1].segments], [200])
        history = [(s.effective_step, s.WhichOneof("change"), s.version) for s in last.hyperparameters[0].segments]
        self.assertEqual(history, [(100, "scale", 2), (300, "schedule", 4), (400, "schedule", 5),
                                   (500, "schedule", 5), (700, "pin", 6), (800, "scale", 7)])
        self.assertTrue(last.hyperparameters[0].segments[1].anchor)
        self.assertEqual(last.hyperparameters[0].segments[2].time, job_pb2.SEGMENT_TIME_GLOBAL)

        # A served step is refused unless allow_rewrite.
        with self.assertRaises(HpschedError) as e:
            self.client.update_job("live", scale("lr", 0.5, from_step=50))
        self.assertEqual(e.exception.code, grpc.StatusCode.FAILED_PRECONDITION)
        self.client.update_job("live", scale("lr", 0.5, from_step=50), allow_rewrite=True)
        self.assertEqual(self.lr("live", 49, 2), [steplr(0.1, 49), steplr(0.1, 50) * 0.5])

        # Client-side checks.
        for bad in ({"hyperparameter": "lr", "pin": 0.1}, {"hyperparameter": "lr", "from_step": 1, "pin": 1,
                                                          "scale": 2}, {"hyperparameter": "lr", "from_step": 1,
                                                                        "scale": 2, "anchor": True}, []):
            with self.subTest(bad=bad), self.assertRaises(hpsched.SpecError):
                self.client.update_job("live", bad)
        with self.assertRaises(hpsched.SpecError):
            reschedule("lr", STEP, from_step=1, time="sideways")
        with self.assertRaises(HpschedError) as e:
            self.client.update_job("live", scale("wd", 0.5, from_step=5000))
        self.assertEqual(e.exception.code, grpc.StatusCode.INVALID_ARGUMENT)
        self.assertIn("updates[0].hyperparameter", e.exception.message)

    def test_update_job_stale_etag_is_aborted(self):
        job = self.client.create_job("etag", {"lr": {"base_values": [0.1], "schedule": STEP}})
        updated = self.client.update_job("etag", scale("lr", 0.5, from_step=100), etag=job.etag)
        self.assertNotEqual(updated.etag, job.etag)
        with self.assertRaises(HpschedError) as e:
            self.client.update_job("etag", scale("lr", 0.5, from_step=200), etag=job.etag)
        self.assertEqual((e.exception.code, e.exception.method), (grpc.StatusCode.ABORTED, "UpdateJob"))
        self.assertEqual(self.client.get_job("etag"), updated)
        self.assertEqual(self.client.update_job("etag", scale("lr", 0.5, from_step=200), etag=updated.etag).version, 3)

    def test_update_job_retried_request_id_is_applied_once(self):
        self.client.create_job("retry-update", {"lr": {"base_values": [0.1], "schedule": STEP}})
        # The same request_id again: the job as it is, the change not applied again.
        first = self.client.update_job("retry-update", scale("lr", 0.5, from_step=100), request_id="req-1")
        again = self.client.update_job("retry-update", scale("lr", 0.5, from_step=100), request_id="req-1")
        self.assertEqual(again, first)
        self.assertEqual(len(again.hyperparameters[0].segments), 1)
        # The client's own retry: the first attempt is applied but its answer lost; the retry carries the generated
        # request_id, so the scale is applied once (lr at 200 is 0.5x, not 0.25x).
        interceptor = LoseFirstAnswer("UpdateJob")
        channel = grpc.intercept_channel(grpc.insecure_channel(self.target), interceptor)
        with Client(channel=channel, initial_backoff=0.01) as lossy:
            job = lossy.update_job("retry-update", scale("lr", 0.5, from_step=200))
        channel.close()
        self.assertEqual(interceptor.sent, 2)
        self.assertEqual(job.version, 3)
        self.assertEqual(len(job.hyperparameters[0].segments), 2)
        self.assertEqual(self.lr("retry-update", 200, 1), [steplr(0.1, 200) * 0.25])

    def test_create_job_with_metrics(self):
        job = self.client.create_job("metrics-forms", plateau_spec(), metrics={"val_loss": 5, "acc": {"first_step": 9}})
        self.assertEqual([(m.name, m.WhichOneof("cadence")) for m in job.metrics],
                         [("val_loss", "every_steps"), ("acc", "first_step")])
        self.assertEqual((job.metrics[0].every_steps, job.metrics[1].first_step), (5, 9))
        job = self.client.create_job("metrics-list", plateau_spec(),
                                     metrics=[{"name": "val_loss", "every_steps": 5},
                                              job_pb2.MetricSpec(name="acc", every_steps=10)])
        self.assertEqual([m.name for m in job.metrics], ["val_loss", "acc"])
        with self.assertRaises(HpschedError) as e:  # the schedule's metric must be declared
            self.client.create_job("metrics-missing", plateau_spec())
        self.assertEqual(e.exception.code, grpc.StatusCode.INVALID_ARGUMENT)
        with self.assertRaises(hpsched.SpecError):  # the client's own error, as every invalid spec
            self.client.create_job("metrics-bad", plateau_spec(), metrics={"val_loss": "5"})

    def test_report_metrics_duplicate_and_conflict(self):
        self.client.create_job("report", plateau_spec(), metrics={"val_loss": 5})
        first = self.client.report_metrics("report", 4, {"val_loss": 1.0})
        self.assertIsInstance(first, scheduler_service_pb2.ReportMetricsResponse)
        self.assertFalse(first.duplicate)
        bad = self.client.report_metrics("jobs/report", 9, {"val_loss": 2.0})  # worse, patience 0: reduce from 10
        self.assertEqual(list(bad.reduction_steps), [10])
        self.assertEqual(self.lr("report", 9, 2), [0.1, 0.05])
        again = self.client.report_metrics("report", 9, {"val_loss": 2.0})
        self.assertTrue(again.duplicate)
        self.assertEqual(list(again.reduction_steps), [])
        with self.assertRaises(HpschedError) as e:
            self.client.report_metrics("report", 9, {"val_loss": 0.5})
        self.assertEqual(e.exception.code, grpc.StatusCode.FAILED_PRECONDITION)
        self.assertIn("val_loss", e.exception.message)
        with self.assertRaises(HpschedError) as e:
            self.client.report_metrics("report", 7, {"val_loss": 0.5})  # not a step of the cadence
        self.assertEqual(e.exception.code, grpc.StatusCode.INVALID_ARGUMENT)
        with self.assertRaises(hpsched.SpecError):
            self.client.report_metrics("report", 14, {})
        self.assertEqual(self.lr("report", 9, 2), [0.1, 0.05])  # nothing changed
        # The client's retry after a lost answer: the server sees the same report twice, a no-op.
        interceptor = LoseFirstAnswer("ReportMetrics")
        channel = grpc.intercept_channel(grpc.insecure_channel(self.target), interceptor)
        with Client(channel=channel, initial_backoff=0.01) as lossy:
            retried = lossy.report_metrics("report", 14, {"val_loss": 3.0})
        channel.close()
        self.assertEqual(interceptor.sent, 2)
        self.assertTrue(retried.duplicate)
        self.assertEqual(self.lr("report", 14, 2), [0.05, 0.025])  # reduced once

    def test_report_metrics_next_step(self):
        self.client.create_job("announced", plateau_spec(), metrics={"val_loss": {"first_step": 9}})
        self.assertEqual(self.client.get_values("announced", 0, 50, pending_policy="provisional_now").provisional_from,
                         10)
        self.client.report_metrics("announced", 9, {"val_loss": 1.0}, next_step=29)
        self.assertEqual(self.client.get_values("announced", 0, 50, pending_policy="provisional_now").provisional_from,
                         30)
        self.assertEqual(list(self.client.report_metrics("announced", 29, {"val_loss": 2.0}, next_step=-1)
                              .reduction_steps), [30])
        values = self.client.get_values("announced", 0, 100)
        self.assertIsNone(values.provisional_from)
        self.assertEqual((values[("lr", 0)][29], values[("lr", 0)][30]), (0.1, 0.05))

    def test_get_values_pending_policies(self):
        self.client.create_job("pending", plateau_spec(), metrics={"val_loss": 10})
        values = self.client.get_values("pending", 5, 10, pending_policy="provisional_now")
        self.assertEqual((values.provisional_from, values.final_count), (10, 5))
        self.assertEqual(values.head(values.final_count).provisional_from, None)
        self.assertIn("provisional_from=10", repr(values))
        self.assertIsNone(self.client.get_values("pending", 0, 10).provisional_from)  # final: no wait
        by_enum = self.client.get_values("pending", 12, 3,
                                         pending_policy=scheduler_service_pb2.PENDING_POLICY_PROVISIONAL_NOW)
        self.assertEqual((by_enum.provisional_from, by_enum.final_count), (12, 0))
        start = time.monotonic()
        values = self.client.get_values("pending", 10, 1, pending_policy="wait_then_provisional", timeout=1.0)
        self.assertGreater(time.monotonic() - start, 0.5)
        self.assertEqual((values.provisional_from, values[("lr", 0)]), (10, [0.1]))
        with self.assertRaises(HpschedError) as e:  # the default policy waits, then fails at the deadline
            self.client.get_values("pending", 10, 1, timeout=1.0)
        self.assertEqual(e.exception.code, grpc.StatusCode.DEADLINE_EXCEEDED)
        batch = self.client.batch_get_values([{"job": "pending", "step": 8, "count": 4,
                                               "pending_policy": "provisional_now"}])
        self.assertEqual(batch[0].provisional_from, 10)
        with self.assertRaises(hpsched.SpecError):
            self.client.get_values("pending", 0, pending_policy="eventually")
        # A waiting call is answered by the report it waits for.
        result = {}
        reader = threading.Thread(target=lambda: result.update(v=self.client.get_values("pending", 10, 1,
                                                                                        timeout=20.0)))
        reader.start()
        self.client.report_metrics("pending", 9, {"val_loss": 1.0})
        reader.join(25)
        self.assertFalse(reader.is_alive())
        self.assertEqual((result["v"][("lr", 0)], result["v"].provisional_from), ([0.1], None))

    def test_watch_job_events(self):
        self.client.create_job("watched", plateau_spec(patience=1), metrics={"val_loss": 10})
        with self.assertRaises(HpschedError) as e:
            next(self.client.watch_job("no-such-job", timeout=10))
        self.assertEqual((e.exception.code, e.exception.method), (grpc.StatusCode.NOT_FOUND, "WatchJob"))

        # Every wait below is bounded by the stream's deadline (a missing event fails with DEADLINE_EXCEEDED).
        watch = self.client.watch_job("watched", timeout=30)
        snapshot = next(watch)
        self.assertIsInstance(snapshot, hpsched.JobEvent)
        self.assertEqual((snapshot.type, snapshot.effective_step), (hpsched.SNAPSHOT, 0))
        self.assertEqual(snapshot.job, self.client.get_job("watched"))
        self.assertEqual(snapshot.event_time.tzinfo is not None, True)

        updated = self.client.update_job("watched", scale("lr", 0.5, from_step=5000))
        event = next(watch)
        self.assertEqual((event.type, event.effective_step, event.job), (hpsched.UPDATED, 5000, updated))
        self.assertGreaterEqual(event.event_time, snapshot.event_time)

        self.client.report_metrics("watched", 9, {"val_loss": 1.0})
        self.client.report_metrics("watched", 19, {"val_loss": 1.5})  # reports that change nothing: no event
        self.client.report_metrics("watched", 29, {"val_loss": 1.5})  # second bad report, patience 1
        event = next(watch)
        self.assertEqual((event.type, event.effective_step), (hpsched.PLATEAU_REDUCED, 30))
        self.assertEqual(event.response.type, scheduler_service_pb2.JOB_EVENT_TYPE_PLATEAU_REDUCED)

        self.client.delete_job("watched")
        event = next(watch)
        self.assertEqual((event.type, event.job.name), (hpsched.DELETED, "jobs/watched"))
        self.assertEqual(list(watch), [])  # the stream ends after a delete

    def test_watch_job_close_and_deadline(self):
        self.client.create_job("watch-close", {"lr": {"base_values": [0.1], "schedule": STEP}})
        # close() from another thread ends an iteration blocked waiting for the next event, quietly.
        watch = self.client.watch_job("watch-close")
        seen = []
        reader = threading.Thread(target=lambda: seen.extend(e.type for e in watch))
        reader.start()
        deadline = time.monotonic() + 10
        while not seen and time.monotonic() < deadline:  # the snapshot has been read: the reader now blocks
            time.sleep(0.01)
        watch.close()
        reader.join(10)
        self.assertFalse(reader.is_alive())
        self.assertEqual(seen, [hpsched.SNAPSHOT])
        self.assertTrue(watch.cancelled)
        # A with block cancels on exit; a timeout ends the stream with DEADLINE_EXCEEDED.
        with self.client.watch_job("watch-close", timeout=1.0) as watch:
            self.assertEqual(next(watch).type, hpsched.SNAPSHOT)
            start = time.monotonic()
            with self.assertRaises(HpschedError) as e:
                next(watch)
            self.assertEqual(e.exception.code, grpc.StatusCode.DEADLINE_EXCEEDED)
            self.assertLess(time.monotonic() - start, 5)
        closed_early = self.client.watch_job("watch-close")
        closed_early.close()
        self.assertEqual(list(closed_early), [])  # closed before the first next(): never opened


class WatchCancelTest(ServerTestCase):
    """Issue 14, fault 4: the class's server of python_remote_scheduler went away mid-suite ("Connection refused").
    Its cause: a WatchJob stream cancelled (its deadline, or a RemoteScheduler's watch closed when it is collected)
    while the server was writing an event to it freed the message under the write, and the write's completion then
    crashed the server (SIGSEGV, server/service/watch_hub.cc). Here: watches with deadlines of a few milliseconds on a
    job that changes all the time; the old server died within a second."""

    def test_watches_cancelled_mid_write_leave_the_server_up(self):
        spec = {"lr": {"base_values": [0.1] * 50, "schedule": STEP}}  # 50 groups: big events, longer writes
        self.client.create_job("churn", spec)
        stop = threading.Event()
        errors = []
        watched = [0]

        def update():
            for k in range(1, 100_000):
                if stop.is_set():
                    return
                try:
                    if k % 200 == 0:  # a job holds at most 256 segments: start it again (DELETED ends watches)
                        self.client.delete_job("churn")
                        self.client.create_job("churn", spec)
                    self.client.update_job("churn", pin("lr", 0.1 + k * 1e-6, from_step=10 ** 9 - k),
                                           allow_rewrite=True)
                except HpschedError as e:
                    errors.append(e)
                    return

        def watch(seed):
            deadlines = [0.001 + 0.003 * ((seed * 7 + i) % 10) for i in range(10)]
            for i in range(100_000):
                if stop.is_set():
                    return
                try:
                    for _ in self.client.watch_job("churn", timeout=deadlines[i % 10]):
                        pass
                except HpschedError as e:
                    if e.code not in (grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.NOT_FOUND):
                        errors.append(e)
                        return
                watched[0] += 1

        threads = [threading.Thread(target=update)] + [threading.Thread(target=watch, args=(s,)) for s in range(8)]
        for t in threads:
            t.start()
        stop.wait(3.0)  # bounded: 3 s of churn
        stop.set()
        for t in threads:
            t.join(30)
        self.assertIsNone(self.server.exit_status(), self.server.log())
        self.assertEqual(errors, [])
        self.assertGreater(watched[0], 20)  # many streams did end at their deadline
        self.assertEqual(self.client.get_job("churn").name, "jobs/churn")


class ApiTest(ServerTestCase):
    """GetValuesRequest.peek, GetMetricReports, Job.served_through and Job.watchers, ListJobsRequest.filter."""

    def test_peek_reads_without_marking_steps_served(self):
        self.client.create_job("peek", {"lr": {"base_values": [0.1], "schedule": STEP}})
        self.assertIsNone(hpsched.served_through(self.client.get_job("peek")))
        peeked = self.client.get_values("peek", 0, 50, peek=True)
        self.assertEqual(peeked[("lr", 0)], [steplr(0.1, s) for s in range(50)])
        batch = self.client.batch_get_values([{"job": "peek", "step": 100, "count": 5, "peek": True}])
        self.assertEqual(batch[0][("lr", 0)], [steplr(0.1, s) for s in range(100, 105)])
        self.assertIsNone(hpsched.served_through(self.client.get_job("peek")), "peeks serve nothing")
        # So an update of the peeked steps needs no allow_rewrite.
        job = self.client.update_job("peek", scale("lr", 0.5, from_step=20))
        self.assertEqual(job.version, 2)
        self.assertIsNone(hpsched.served_through(job))
        # A trainer's read marks its steps; the same read with peek gives the same values and marks nothing more.
        read = self.client.get_values("peek", 0, 30)
        self.assertEqual(self.client.get_values("peek", 0, 30, peek=True), read)
        self.assertEqual(hpsched.served_through(self.client.get_job("peek")), 29)
        self.client.get_values_response("peek", 1000, 10, peek=True)
        self.assertEqual(hpsched.served_through(self.client.get_job("peek")), 29)
        with self.assertRaises(HpschedError) as e:
            self.client.update_job("peek", scale("lr", 0.5, from_step=20))
        self.assertEqual(e.exception.code, grpc.StatusCode.FAILED_PRECONDITION)
        self.assertEqual(e.exception.message, "updates[0].segment.effective_step: 20 would change values already "
                                              "served (up to step 29); choose a later step, or set allow_rewrite")

    def test_get_metric_reports(self):
        self.client.create_job("reports", plateau_spec(), metrics={"val_loss": 10, "acc": 10})
        for step, loss in ((9, 1.0), (19, 0.75), (29, 0.5), (39, 0.625)):
            self.client.report_metrics("reports", step, {"val_loss": loss})
        reports = self.client.get_metric_reports("reports")
        self.assertIsInstance(reports, hpsched.MetricReports)
        self.assertEqual(reports.job, "jobs/reports")
        self.assertEqual(list(reports), ["val_loss", "acc"])  # the order of Job.metrics; acc never reported
        self.assertEqual(reports["val_loss"], hpsched.MetricSeries([9, 19, 29, 39], [1.0, 0.75, 0.5, 0.625], False))
        self.assertEqual(reports["acc"], hpsched.MetricSeries([], [], False))
        self.assertEqual(self.client.get_metric_reports("jobs/reports", start_step=10, end_step=39)["val_loss"],
                         hpsched.MetricSeries([19, 29], [0.75, 0.5], False))
        first_two = self.client.get_metric_reports("reports", max_reports=2)
        self.assertEqual(first_two["val_loss"], hpsched.MetricSeries([9, 19], [1.0, 0.75], True))
        self.assertEqual(first_two.response.metrics[0].truncated, True)
        rest = self.client.get_metric_reports("reports", start_step=first_two["val_loss"].steps[-1] + 1)
        self.assertEqual(rest["val_loss"].steps, [29, 39])
        with self.assertRaises(HpschedError) as e:
            self.client.get_metric_reports("no-such-job")
        self.assertEqual((e.exception.code, e.exception.method), (grpc.StatusCode.NOT_FOUND, "GetMetricReports"))
        with self.assertRaises(HpschedError) as e:
            self.client.get_metric_reports("reports", start_step=20, end_step=10)
        self.assertEqual(e.exception.code, grpc.StatusCode.INVALID_ARGUMENT)
        self.assertEqual(e.exception.message, "end_step: must be 0 (no end) or > start_step (20), got 10")

    def test_served_through_and_watchers_where_jobs_are_returned(self):
        created = self.client.create_job("progress", {"lr": {"base_values": [0.1], "schedule": STEP}},
                                         labels={"suite": "progress"})
        self.assertIsNone(hpsched.served_through(created))
        self.assertEqual(hpsched.watchers(created), 0)
        self.client.get_values("progress", 0, 8)
        self.assertEqual(hpsched.served_through(self.client.get_job("progress")), 7)
        self.assertEqual(hpsched.served_through(self.client.update_job("progress", scale("lr", 2.0, from_step=100))),
                         7)

        def listed():
            jobs = list(self.client.list_jobs(filter='labels.suite = "progress"'))
            self.assertEqual([j.name for j in jobs], ["jobs/progress"])
            return jobs[0]

        self.assertEqual((hpsched.served_through(listed()), hpsched.watchers(listed())), (7, 0))
        self.assertFalse(listed().HasField("watchers"), "unset when no stream is open")
        with self.client.watch_job("progress", timeout=30) as first, self.client.watch_job("progress",
                                                                                           timeout=30) as second:
            self.assertEqual((next(first).type, next(second).type), (hpsched.SNAPSHOT, hpsched.SNAPSHOT))
            self.assertEqual(hpsched.watchers(listed()), 2)  # both streams hold their snapshot: registered
            self.assertEqual(hpsched.watchers(self.client.get_job("progress")), 0, "ListJobs only")

    def test_list_jobs_filter(self):
        for job_id, team in (("flt-a1", "vision"), ("flt-a2", "speech"), ("flt-b1", "vision")):
            self.client.create_job(job_id, {"lr": {"base_values": [0.1], "schedule": STEP}}, labels={"team": team})
        names = lambda f: [j.name for j in self.client.list_jobs(page_size=1, filter=f)]  # noqa: E731
        self.assertEqual(names('labels.team = "vision" AND id:"flt-*"'), ["jobs/flt-a1", "jobs/flt-b1"])
        self.assertEqual(names('id:"flt-a*"'), ["jobs/flt-a1", "jobs/flt-a2"])
        self.assertEqual(names('id = "flt-b1"'), ["jobs/flt-b1"])
        with self.assertRaises(HpschedError) as e:
            names('labels.team = "vision" OR id:"flt-*"')
        self.assertEqual(e.exception.code, grpc.StatusCode.INVALID_ARGUMENT)
        self.assertEqual(e.exception.message, 'filter: position 24: OR is not supported (supported: labels.KEY = '
                                              '"VALUE", id = "ID", id:"PREFIX*", joined by AND)')


def make_certs(directory: str) -> None:
    """ca.pem, and server.pem/.key (for 127.0.0.1) and client.pem/.key signed by it, and other-ca.pem (a CA that
    signed neither), made by openssl."""
    def run(*args):
        subprocess.run(args, cwd=directory, check=True, capture_output=True, timeout=60)

    run("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=hpsched test CA",
        "-keyout", "ca.key", "-out", "ca.pem")
    run("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=another CA",
        "-keyout", "other-ca.key", "-out", "other-ca.pem")
    for name, ext in (("server", "subjectAltName=IP:127.0.0.1"), ("client", "extendedKeyUsage=clientAuth")):
        run("openssl", "req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN=hpsched {name}", "-keyout",
            f"{name}.key", "-out", f"{name}.csr")
        with open(os.path.join(directory, f"{name}.ext"), "w") as f:
            f.write(ext + "\n")
        run("openssl", "x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
            "-days", "2", "-extfile", f"{name}.ext", "-out", f"{name}.pem")


class SecureServerTest(unittest.TestCase):
    """token and tls_*: a server with bearer tokens, TLS and client certificates (--tls_client_ca), as the C++
    client's bearer_token and tls_*_pem."""

    READER, ADMIN = "py-reader-token-0123456789abcdef", "py-admin-token-0123456789abcdef"

    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.TemporaryDirectory(prefix="hpsched-pytest-tls-")
        cls.addClassCleanup(cls.dir.cleanup)
        make_certs(cls.dir.name)
        tokens = os.path.join(cls.dir.name, "tokens")
        with open(tokens, "w") as f:
            f.write(f"reader {cls.READER}\nadmin {cls.ADMIN}\n")
        pem = {}
        for name in ("ca.pem", "other-ca.pem", "client.pem", "client.key"):
            with open(os.path.join(cls.dir.name, name), "rb") as f:
                pem[name] = f.read()
        cls.pem = pem
        d = cls.dir.name
        cls.server = ServerProcess(extra_args=(f"--auth_token_file={tokens}", f"--tls_cert={d}/server.pem",
                                               f"--tls_key={d}/server.key", f"--tls_client_ca={d}/ca.pem")).start()
        cls.addClassCleanup(cls.server.stop)

    def client(self, **kwargs) -> Client:
        kwargs.setdefault("tls_ca", self.pem["ca.pem"].decode())  # str or bytes
        kwargs.setdefault("tls_cert", self.pem["client.pem"])
        kwargs.setdefault("tls_key", self.pem["client.key"])
        client = Client(self.server.target, timeout=30.0, **kwargs)
        self.addCleanup(client.close)
        return client

    def test_tokens_and_roles_over_mutual_tls(self):
        admin = self.client(token=self.ADMIN + "\n")  # as read from a file: the line break is dropped
        job = admin.create_job("secure", {"lr": {"base_values": [0.1], "schedule": STEP}})
        self.assertEqual(job.name, "jobs/secure")
        reader = self.client(token=self.READER)
        self.assertEqual(reader.get_values("secure", 10, 2)[("lr", 0)], [0.05, 0.05])
        with reader.watch_job("secure", timeout=30) as watch:  # the stream carries the token too
            snapshot = next(watch)
            self.assertEqual((snapshot.type, snapshot.job.name, snapshot.job.etag),
                             (hpsched.SNAPSHOT, job.name, job.etag))
        with self.assertRaises(HpschedError) as e:
            reader.delete_job("secure")
        self.assertEqual((e.exception.code, e.exception.attempts), (grpc.StatusCode.PERMISSION_DENIED, 1))
        with self.assertRaises(HpschedError) as e:
            self.client().get_job("secure")
        self.assertEqual((e.exception.code, e.exception.attempts), (grpc.StatusCode.UNAUTHENTICATED, 1))
        self.assertNotIn(self.READER, repr(reader))

    def test_without_tls_or_a_client_certificate_nothing_connects(self):
        for name, kwargs in (("plaintext", {"tls_ca": None, "tls_cert": None, "tls_key": None}),
                             ("no client certificate", {"tls_cert": None, "tls_key": None}),
                             ("another CA", {"tls_ca": self.pem["other-ca.pem"]})):
            with self.subTest(name):
                with self.assertRaises(HpschedError) as e:
                    self.client(token=self.READER, max_attempts=1, **kwargs).get_job("secure")
                self.assertEqual(e.exception.code, grpc.StatusCode.UNAVAILABLE)

    def test_argument_errors(self):
        with self.assertRaisesRegex(ValueError, "^tls_cert and tls_key: give both"):
            Client(self.server.target, tls_cert=self.pem["client.pem"])
        with self.assertRaisesRegex(ValueError, "^token: must be one non-empty word"):
            Client(self.server.target, token="two words")
        with self.assertRaisesRegex(ValueError, "^tls: a given channel has its own credentials"):
            Client(channel=grpc.insecure_channel(self.server.target), tls=True)


class CancellingProxy:
    """A grpcio server run by the test in front of the real hpsched-server, forwarding every SchedulerService call as
    bytes. It ends chosen calls with a server-side cancel (context.cancel(): RST_STREAM CANCEL, which the client sees
    as CANCELLED, as when a server stopping past its shutdown grace ends the calls it still has):

      cancel_before: the first call of each of these methods, before forwarding it (nothing applied);
      cancel_after:  the first call of each of these methods, after the real server answered it (applied, its answer
                     lost);
      hold:          every call of these methods, until the client ends it (received[method] is set when one
                     arrives).

    A real server cannot be made to answer CANCELLED deterministically (a replica stopping past its grace races the
    calls it ends against their answers), hence this proxy; the values and the effects are the real server's.
    """

    HOLD_LIMIT = 60.0  # seconds: liveness bound of a held call

    def __init__(self, upstream: str, cancel_before=(), cancel_after=(), hold=()):
        self.cancel_before, self.cancel_after, self.hold = set(cancel_before), set(cancel_after), set(hold)
        self.calls: collections.Counter = collections.Counter()
        self.requests: dict = collections.defaultdict(list)  # method -> [request bytes]
        self.received: dict = collections.defaultdict(threading.Event)
        self._lock = threading.Lock()
        self._upstream = grpc.insecure_channel(upstream)
        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
        self._server.add_generic_rpc_handlers([self._Handler(self)])
        self.port = self._server.add_insecure_port("127.0.0.1:0")
        self._server.start()

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    def close(self) -> None:
        self._server.stop(0)
        self._upstream.close()

    def __enter__(self) -> "CancellingProxy":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    class _Handler(grpc.GenericRpcHandler):
        def __init__(self, proxy: "CancellingProxy"):
            self.proxy = proxy

        def service(self, details):
            full = details.method
            name = full.rsplit("/", 1)[-1]
            if name == "WatchJob":
                return grpc.unary_stream_rpc_method_handler(
                    lambda request, context: self.proxy._stream(full, name, request, context))
            return grpc.unary_unary_rpc_method_handler(
                lambda request, context: self.proxy._unary(full, name, request, context))

    def _arrive(self, name: str, request: bytes, context) -> int:
        with self._lock:
            self.calls[name] += 1
            self.requests[name].append(request)
            n = self.calls[name]
        self.received[name].set()
        if name in self.hold:
            ended = threading.Event()
            context.add_callback(ended.set)
            ended.wait(self.HOLD_LIMIT)
        return n

    def _unary(self, full: str, name: str, request: bytes, context):
        first = self._arrive(name, request, context) == 1
        if name in self.hold:
            return b""  # the client has ended the call
        if first and name in self.cancel_before:
            context.cancel()
            return b""
        try:
            response = self._upstream.unary_unary(full)(request, timeout=context.time_remaining(),
                                                        metadata=context.invocation_metadata())
        except grpc.RpcError as e:
            context.abort(e.code(), e.details())
        if first and name in self.cancel_after:
            context.cancel()
            return b""
        return response

    def _stream(self, full: str, name: str, request: bytes, context):
        first = self._arrive(name, request, context) == 1
        if name in self.hold:
            return
        if first and name in self.cancel_before:
            context.cancel()
            return
        yield from self._upstream.unary_stream(full)(request, timeout=context.time_remaining())


class CancelledTest(ServerTestCase):
    """CANCELLED is retried like UNAVAILABLE, as the C++ client does (client/client.cc): the client never cancels its
    own calls, so CANCELLED is a server ending one, and every call is safe to repeat. Except the client's own
    cancellations: close() and JobWatch.cancel() are not retried."""

    def proxy(self, **kwargs) -> CancellingProxy:
        proxy = CancellingProxy(self.target, **kwargs)
        self.addCleanup(proxy.close)
        return proxy

    def via(self, proxy: CancellingProxy, **kwargs) -> Client:
        client = Client(proxy.target, timeout=30.0, initial_backoff=0.01, max_backoff=0.05, **kwargs)
        self.addCleanup(client.close)
        return client

    def test_reads_are_retried(self):
        self.client.create_job("cancel-read", {"lr": {"base_values": [0.1], "schedule": STEP}})
        proxy = self.proxy(cancel_before={"GetValues", "GetJob", "ListJobs", "Preview", "BatchGetValues",
                                          "GetMetricReports", "WatchJob"})
        client = self.via(proxy)
        self.assertEqual(client.get_values("cancel-read", 5, 20), self.client.get_values("cancel-read", 5, 20))
        self.assertEqual(client.get_job("cancel-read"), self.client.get_job("cancel-read"))
        self.assertIn("jobs/cancel-read", [j.name for j in client.list_jobs()])
        self.assertEqual(client.preview(STEP, [0.1], 0, 12), [[steplr(0.1, s) for s in range(12)]])
        self.assertEqual(client.batch_get_values([("cancel-read", 0, 3)])[0][("lr", 0)],
                         [steplr(0.1, s) for s in range(3)])
        self.assertEqual(list(client.get_metric_reports("cancel-read")), [])
        with client.watch_job("cancel-read", timeout=30) as watch:  # opening the stream retries too
            self.assertEqual(next(watch).type, hpsched.SNAPSHOT)
        for method in ("GetValues", "GetJob", "ListJobs", "Preview", "BatchGetValues", "GetMetricReports",
                       "WatchJob"):
            with self.subTest(method=method):
                self.assertEqual(proxy.calls[method], 2, "the cancelled attempt and its retry")

    def test_mutations_applied_before_the_cancel_apply_once(self):
        proxy = self.proxy(cancel_after={"CreateJob", "UpdateJob", "ReportMetrics", "DeleteJob"})
        client = self.via(proxy)
        job = client.create_job("cancel-write", plateau_spec(), metrics={"val_loss": 10})
        self.assertEqual((job.name, job.version), ("jobs/cancel-write", 1))
        self.assertEqual(proxy.calls["CreateJob"], 2)
        requests = [scheduler_service_pb2.CreateJobRequest.FromString(r) for r in proxy.requests["CreateJob"]]
        self.assertEqual(requests[0], requests[1], "the retry is the same request, request_id included")
        self.assertTrue(requests[0].request_id)

        job = client.update_job("cancel-write", scale("lr", 0.5, from_step=500))
        self.assertEqual(job.version, 2, "applied once: the retry's request_id was recognized")
        self.assertEqual(self.client.get_job("cancel-write").version, 2)

        response = client.report_metrics("cancel-write", 9, {"val_loss": 1.0})
        self.assertTrue(response.duplicate, "the retry found the report the cancelled attempt made")
        self.assertEqual(self.client.get_metric_reports("cancel-write")["val_loss"].steps, [9])

        # DeleteJob has no request_id: its retry finds the job gone (as the C++ client's).
        with self.assertRaises(HpschedError) as e:
            client.delete_job("cancel-write")
        self.assertEqual((e.exception.code, e.exception.attempts), (grpc.StatusCode.NOT_FOUND, 2))
        with self.assertRaises(HpschedError) as e:
            self.client.get_job("cancel-write")
        self.assertEqual(e.exception.code, grpc.StatusCode.NOT_FOUND)
        for method in ("CreateJob", "UpdateJob", "ReportMetrics", "DeleteJob"):
            self.assertEqual(proxy.calls[method], 2, method)

    def test_attempts_are_bounded(self):
        self.client.create_job("cancel-once", {"lr": {"base_values": [0.1], "schedule": STEP}})
        proxy = self.proxy(cancel_before={"GetJob"})
        with self.assertRaises(HpschedError) as e:
            self.via(proxy, max_attempts=1).get_job("cancel-once")
        self.assertEqual((e.exception.code, e.exception.attempts), (grpc.StatusCode.CANCELLED, 1))
        self.assertEqual(proxy.calls["GetJob"], 1)

    def test_close_cancels_calls_in_flight_without_retrying_them(self):
        proxy = self.proxy(hold={"GetValues"})
        client = self.via(proxy)
        result = {}

        def read():
            try:
                result["values"] = client.get_values("anything", 0)
            except HpschedError as e:
                result["error"] = e

        reader = threading.Thread(target=read)
        reader.start()
        self.assertTrue(proxy.received["GetValues"].wait(30), "the call reached the proxy")
        client.close()
        reader.join(30)
        self.assertFalse(reader.is_alive())
        self.assertEqual((result["error"].code, result["error"].attempts), (grpc.StatusCode.CANCELLED, 1))
        self.assertEqual(proxy.calls["GetValues"], 1)

    def test_a_cancelled_watch_is_not_reopened(self):
        proxy = self.proxy(hold={"WatchJob"})
        watch = self.via(proxy).watch_job("anything", timeout=30)
        seen = []
        reader = threading.Thread(target=lambda: seen.extend(watch))
        reader.start()
        self.assertTrue(proxy.received["WatchJob"].wait(30), "the stream reached the proxy")
        watch.cancel()
        reader.join(30)
        self.assertFalse(reader.is_alive())
        self.assertEqual(seen, [])  # ended quietly
        self.assertEqual(proxy.calls["WatchJob"], 1)


class ConnectionTest(unittest.TestCase):

    def test_unavailable_after_max_attempts(self):
        """Nothing listens: UNAVAILABLE after max_attempts attempts, well within the deadline."""
        with closed_port() as port, Client(f"127.0.0.1:{port}", timeout=20.0, max_attempts=4, initial_backoff=0.05,
                                           max_backoff=0.2) as c:
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
        with closed_port() as port, Client(f"127.0.0.1:{port}") as c:
            start = time.monotonic()
            with self.assertRaises(HpschedError) as e:
                c.get_values("x", 0)
            elapsed = time.monotonic() - start
        self.assertEqual(e.exception.code, grpc.StatusCode.UNAVAILABLE)
        self.assertLessEqual(e.exception.attempts, 5)
        self.assertLess(elapsed, 10.5)

    def test_no_retry_with_one_attempt(self):
        with closed_port() as port, Client(f"127.0.0.1:{port}", max_attempts=1) as c:
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
        reservation = closed_port()  # refused until the server starts, and nobody else's meanwhile
        port = reservation.__enter__()
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
        reservation.__exit__(None, None, None)  # released only now: the server binds it within its start-up
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
