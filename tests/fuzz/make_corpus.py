#!/usr/bin/python3
"""Regenerates the committed seed corpora of tests/fuzz from real specs.

    /usr/bin/python3 tests/fuzz/make_corpus.py

Valid schedules come from the PyTorch golden cases (tests/golden/torch_golden.json), one or two per kind; invalid ones
are the bad specs of tests/core/kinds_test.cc and tests/service/scheduler_service_test.cc. corpus/schedule holds each
schedule as proto3 JSON and, for the valid ones, also as a serialized hpsched.v1.Schedule (the binary form mutates
better). corpus/expression holds the golden lambda expressions and broken ones; corpus/job_json holds CreateJobRequest
and Job JSON, valid and not. Needs protoc and Debian's python3-protobuf (both in `make deps`).
"""
import importlib
import json
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parents[1]
CORPUS = HERE / "corpus"

# Golden case names used as schedule seeds: every kind, composites, per-group lists and the edges of one_cycle.
GOLDEN_SEEDS = [
    "constant_factor0.5_total10", "step_size10_gamma0.5", "multi_step_dup_2_4_4", "exponential_gamma0.999",
    "linear_start0.25_end1_total4", "polynomial_total10_power0.5", "cosine_tmax20_etamin0.001",
    "cawr_t0_10_tmult3", "cyclic_triangular2_up4", "cyclic_exp_range_gamma0.999_up10",
    "cyclic_fractional_up2.5_down3.5", "one_cycle_three_phase_total100", "one_cycle_epochs10_spe13",
    "lambda_warmup10_cosine90", "seq3_linear_const_step", "seq_lambda_warmup_cos", "chained_const_step_exp",
]

INVALID_SCHEDULES = {
    "bad_cosine_tmax0": {"cosine_annealing": {"t_max": 0}},
    "bad_step_negative": {"step": {"step_size": -3}},
    "bad_sequential_milestones": {"sequential": {"schedules": [{"constant": {}}, {"constant": {}}, {"constant": {}}],
                                                 "milestones": [5, 3]}},
    "bad_exponential_nan": {"exponential": {"gamma": "NaN"}},
    "bad_cosine_eta_min_inf": {"cosine_annealing": {"t_max": 5, "eta_min": "Infinity"}},
    "bad_cyclic_mode": {"cyclic": {"max_lr": [1], "mode": "zigzag"}},
    "bad_one_cycle_pct": {"one_cycle": {"total_steps": 10, "pct_start": 0.1}},
    "bad_lambda_syntax": {"lambda": {"expression": "step *"}},
    "bad_chained_nested": {"chained": {"schedules": [{"chained": {"schedules": [
        {"exponential": {"gamma": 0.9}}, {"cosine_annealing": {"t_max": 0}}]}}]}},
    "bad_empty": {},
}

EXPRESSIONS = {
    "pow_decay": "0.95 ** step",
    "inv_sqrt": "1 / sqrt(max(step, 1))",
    "warmup_cosine": "step < 10 ? (step + 1) / 10 : 0.5 * (1 + cos(pi * (step - 10) / 90))",
    "exp_log": "exp(-0.01 * step) / (1 + log(step + 1))",
    "comparisons": "(step < 20) * 1 + (step >= 20) * 0.1",
    "nested_ternary": "step <= 10 ? 0.1 : step > 20 ? 1 : 0.5",
    "caret_abs_ceil": "abs(1 - step / 50) ^ 2 * 0.9 ^ ceil(step / 7)",
    "caret_right_assoc": "0.99 ^ step ^ 0.5",
    "pow_e_sin_max": "max(0.1, pow(e, -step / 200)) * (1 + 0.1 * sin(step / 5))",
    "eq_pi_e_log": "step == 0 ? 0.5 : step != 1 ? 1 / (1 + pi / e * log(step)) : 0.75",
    "logic_not": "!(step > 3) || step == 7 && -2 ** 2 < 0",
    "min_many": "min(1, 2, step, 0.5e1, .5, 1., 2.5E+4) + floor(step / 3)",
    "guarded_division": "step > 0 ? 1 / step : 0",
    "nan_arm": "step > 0 ? log(-1) : step",
    "bad_trailing_operator": "step *",
    "bad_call": "os.system(1)",
    "bad_unknown_name": "stp * 2",
    "bad_out_of_range": "1e999",
    "bad_arity": "min(1)",
    "bad_chained_comparison": "1 < step < 3",
    "bad_unclosed": "((step + 1)",
    "deep_nesting": "(" * 40 + "step" + ")" * 40,
}

LR_STEP = {"name": "lr", "base_values": [0.1], "schedule": {"step": {"step_size": 10, "gamma": 0.5}}}
JOBS = {
    "create_readme_demo": {"job_id": "demo", "job": {"hyperparameters": [LR_STEP]}},
    "create_two_hps_labels": {
        "job_id": "vision-run.1", "request_id": "req-42",
        "job": {"hyperparameters": [
            {"name": "lr", "base_values": [0.1, 0.01],
             "schedule": {"sequential": {"schedules": [{"linear": {"start_factor": 0.1, "total_iters": 5}},
                                                        {"cosine_annealing": {"t_max": 55}}], "milestones": [5]}}},
            {"name": "momentum", "base_values": [0.9],
             "schedule": {"cyclic": {"base_lr": [0.85], "max_lr": [0.95], "step_size_up": 100}}}],
            "labels": {"team": "vision", "run": "a-1"}}},
    "create_one_cycle_per_group": {"job_id": "oc", "job": {"hyperparameters": [
        {"name": "lr", "base_values": [0.1, 0.01, 0.001],
         "schedule": {"one_cycle": {"max_lr": [1.0, 0.1, 0.01], "total_steps": 1000, "three_phase": True}}}]}},
    "create_lambda_chained": {"job_id": "lam", "job": {"hyperparameters": [
        {"name": "weight_decay", "base_values": [1e-4],
         "schedule": {"chained": {"schedules": [{"lambda": {"expression": "min(1, (step + 1) / 10)"}},
                                                {"exponential": {"gamma": 0.99}}]}}}]}},
    "job_with_output_fields": {"name": "jobs/x", "version": "3", "etag": "abc",
                               "createTime": "2024-01-01T00:00:00Z", "hyperparameters": [LR_STEP]},
    "bad_no_hyperparameters": {"job_id": "x", "job": {}},
    "bad_duplicate_names": {"job_id": "x", "job": {"hyperparameters": [LR_STEP, LR_STEP]}},
    "bad_label_key": {"job_id": "x", "job": {"hyperparameters": [LR_STEP], "labels": {"Team": "x"}}},
    "bad_base_nan": {"job_id": "x", "job": {"hyperparameters": [
        {"name": "lr", "base_values": ["NaN"], "schedule": {"constant": {}}}]}},
    "bad_per_group_count": {"job_id": "x", "job": {"hyperparameters": [
        {"name": "lr", "base_values": [0.1, 0.2, 0.3], "schedule": {"cyclic": {"max_lr": [1.0, 2.0]}}}]}},
    "bad_job_id": {"job_id": "Not A Valid Id", "job": {"hyperparameters": [LR_STEP]}},
    "bad_hp_name": {"job_id": "x", "job": {"hyperparameters": [
        {"name": "9lr", "base_values": [0.1], "schedule": {"constant": {}}}]}},
}


def load_schedule_module():
    out = pathlib.Path(tempfile.mkdtemp(prefix="hpsched-corpus-"))
    # Every hpsched/v1 file: schedule.proto imports the catalog's files.
    protos = sorted(str(p.relative_to(ROOT / "proto")) for p in (ROOT / "proto" / "hpsched" / "v1").glob("*.proto"))
    subprocess.run(["protoc", f"-I{ROOT / 'proto'}", f"--python_out={out}", *protos], check=True)
    (out / "hpsched" / "__init__.py").touch()
    (out / "hpsched" / "v1" / "__init__.py").touch()
    sys.path.insert(0, str(out))
    module = importlib.import_module("hpsched.v1.schedule_pb2")
    return module, out


def write(path, data):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data if isinstance(data, bytes) else data.encode())


def main():
    from google.protobuf import json_format

    schedule_pb2, tmp = load_schedule_module()
    try:
        shutil.rmtree(CORPUS, ignore_errors=True)
        golden = {c["name"]: c for c in json.loads((ROOT / "tests/golden/torch_golden.json").read_text())["cases"]}
        for name in GOLDEN_SEEDS:
            schedule = golden[name]["schedule"]
            text = json.dumps(schedule, sort_keys=True)
            write(CORPUS / "schedule" / f"{name}.json", text)
            message = json_format.Parse(text, schedule_pb2.Schedule())
            write(CORPUS / "schedule" / f"{name}.pb", message.SerializeToString(deterministic=True))
        for name, schedule in INVALID_SCHEDULES.items():
            write(CORPUS / "schedule" / f"{name}.json", json.dumps(schedule, sort_keys=True))
        for name, text in EXPRESSIONS.items():
            write(CORPUS / "expression" / f"{name}.txt", text)
        for name, job in JOBS.items():
            write(CORPUS / "job_json" / f"{name}.json", json.dumps(job, sort_keys=True))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    for sub in sorted(os.listdir(CORPUS)):
        print(f"{sub}: {len(os.listdir(CORPUS / sub))} files")


if __name__ == "__main__":
    main()
