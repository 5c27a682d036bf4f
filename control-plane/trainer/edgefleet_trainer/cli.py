"""Entry point: one job spec in (--spec FILE, or stdin), JSON lines out, artifacts in outputDir."""
from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import sys
import time
import traceback
from typing import Any, Dict, List, Optional, Tuple

import numpy as np
import torch
from torch import nn

from . import TRAINER_VERSION
from .data import Augment, Dataset, Split, batches, load_dataset, resolve_augment, steps_per_epoch, to_input
from .diagnostics import keep_most_sensitive_float, layer_report, mixed_precision
from .distill import JobPlan, Phase, accuracy, phase_key, predict, train
from .emit import emit, log
from .errors import TrainerError, bad_spec
from .evalset import write_evalset, write_refpred
from .export import export_onnx, sha256_file
from .models import build_student, build_teacher, count_params, load_student_file, load_torchscript
from .qat import calibrate, finalize, fold_all_bn, prepare, set_act_observers
from .spec import JobSpec, Recipe, parse_spec

MAX_TORCH_OPSET = 17  # torch 1.13's exporter; 2.x goes further


def _versions() -> Dict[str, str]:
    import onnx

    return {"torch": torch.__version__, "python": platform.python_version(), "onnx": onnx.__version__,
            "trainer": TRAINER_VERSION}


def _device(spec: JobSpec) -> torch.device:
    if spec.device == "cuda" and not torch.cuda.is_available():
        raise TrainerError("bad-spec", "device: cuda requested but torch.cuda.is_available() is false")
    if spec.device == "cuda" or (spec.device == "auto" and torch.cuda.is_available()):
        return torch.device("cuda")
    return torch.device("cpu")


class Job:
    def __init__(self, spec: JobSpec) -> None:
        self.spec = spec
        self.device = _device(spec)
        self.out = spec.output_dir
        self.artifacts: List[Dict[str, Any]] = []
        self.durations: Dict[str, Any] = {}
        self.metrics: Dict[str, Any] = {"recipes": {}}
        self.diagnostics: Dict[str, Any] = {}
        self.eval_split: Optional[Split] = None
        self.augment: Augment = Augment()
        self.dataset_info: Dict[str, Any] = {}
        self.warnings: List[Dict[str, Any]] = []
        self.hard_student: Optional[nn.Module] = None
        self.ts_teacher: Optional[nn.Module] = None
        self.plan: Optional[JobPlan] = None

    # ------------------------------------------------------------------ helpers
    def log(self, level: str, message: str, **fields: Any) -> None:
        log(level, message, self.spec.job_id, **fields)

    def warn(self, code: str, message: str, **extra: Any) -> None:
        """A finding the operator must see: a log line now, and in the result's warnings."""
        self.warnings.append({"code": code, "message": message, **extra})
        self.log("warn", message, code=code, **extra)

    def seed(self, offset: int = 0) -> None:
        s = self.spec.seed + offset
        torch.manual_seed(s)
        np.random.seed(s % (2**32))

    def select_split(self, ds: Dataset) -> Split:
        return ds.val if ds.val is not None else ds.test

    def artifact(self, kind: str, model: Optional[nn.Module], file: str, *, quantized: bool = False,
                 recipe: Optional[Recipe] = None, opset: int = 13, extra: Optional[Dict[str, Any]] = None) -> None:
        assert self.eval_split is not None
        path = os.path.join(self.out, file)
        input_shape = list(self.eval_split.x.shape[1:])
        line: Dict[str, Any] = {"type": "artifact", "kind": kind, "file": file}
        if model is not None:
            t0 = time.time()
            export_onnx(model, tuple(input_shape), path, opset=opset, quantized=quantized)  # type: ignore[arg-type]
            pred = predict(model, self.eval_split, self.device)
            ref = file[: -len(".onnx")] + ".refpred.bin"
            write_refpred(os.path.join(self.out, ref), pred)
            line["referencePredictionsFile"] = ref
            line["accuracy"] = float((pred == self.eval_split.y).mean())
            self.durations["export"] = self.durations.get("export", 0.0) + time.time() - t0
        if recipe is not None:
            line["recipeId"] = recipe.id
        line.update({"sha256": sha256_file(path), "sizeBytes": os.path.getsize(path),
                     "inputShape": [1] + input_shape})
        if extra:
            line.update(extra)
        line["jobId"] = self.spec.job_id
        self.artifacts.append(line)
        emit(line)

    def _train_kwargs(self) -> Dict[str, Any]:
        t = self.spec.training
        return dict(device=self.device, batch_size=t.batch_size, optimizer=t.optimizer,
                    weight_decay=t.weight_decay, augment=self.augment, job_id=self.spec.job_id, plan=self.plan)

    def _job_eta_before(self, key: str) -> Dict[str, Any]:
        """The whole-job estimate for a line emitted outside a training loop, just before phase `key`."""
        if self.plan is None:
            return {}
        eta, progress = self.plan.estimate(key, 0, None)
        return {} if progress is None else {"jobEtaSeconds": eta, "jobProgress": progress}

    def make_plan(self, ds: Dataset) -> JobPlan:
        """Every training phase this job will run, with its planned steps: the whole-job ETA's denominator."""
        spec = self.spec
        spe = steps_per_epoch(ds.train, spec.training.batch_size)
        phases: List[Tuple[str, int]] = []
        if spec.teacher.kind != "torchscript":
            phases.append(("teacher", spe * spec.teacher.epochs))
        if spec.training.student_hard_epochs > 0:
            phases.append(("student-hard", spe * spec.training.student_hard_epochs))
        phases.append(("distill", spe * spec.distill.epochs))
        for recipe in spec.recipes:
            phases.append((phase_key("qat", recipe.id), spe * spec.qat.epochs))
        return JobPlan(phases)

    def new_student(self, ds: Dataset) -> nn.Module:
        s = self.spec.student
        self.seed(1)
        c = ds.input_shape[0]
        if s.kind == "file":
            assert s.path
            return load_student_file(s.path, s.width, ds.num_classes, c).to(self.device)
        return build_student(s.arch, s.width, ds.num_classes, c).to(self.device)

    # ------------------------------------------------------------------ pipeline
    def run(self) -> Dict[str, Any]:
        spec = self.spec
        t_start = time.time()
        os.makedirs(self.out, exist_ok=True)
        t0 = time.time()
        ds = load_dataset(spec.dataset, seed=spec.seed, validation_split=spec.validation_split,
                          batch_size=spec.training.batch_size, train_samples=spec.train_samples,
                          test_samples=spec.test_samples)
        self.durations["data"] = time.time() - t0
        self.log("info", f"dataset {ds.name}: {len(ds.train.y)} train, {len(ds.val.y) if ds.val else 0} val, "
                 f"{len(ds.test.y)} test, {ds.num_classes} classes, input {list(ds.input_shape)}",
                 device=str(self.device))
        self.augment = resolve_augment(spec.training.augment, spec.dataset.kind)
        self.log("info", f"augmentation: {self.augment.describe()}", translate=self.augment.translate, flip=self.augment.flip)
        self.dataset_info = {"name": ds.name, "numClasses": ds.num_classes, "inputShape": list(ds.input_shape),
                             "trainSamples": len(ds.train.y), "valSamples": len(ds.val.y) if ds.val else 0,
                             "testSamples": len(ds.test.y),
                             "augment": {"translate": self.augment.translate, "flip": self.augment.flip}}
        if ds.class_names is not None:
            self.dataset_info["classNames"] = ds.class_names
        sel = self.select_split(ds)

        rng = np.random.default_rng(spec.seed)
        n_eval = min(spec.eval_set_size, len(ds.test.y))
        idx = np.sort(rng.permutation(len(ds.test.y))[:n_eval])
        self.eval_split = Split(ds.test.x[idx], ds.test.y[idx])
        write_evalset(os.path.join(self.out, "evalset.bin"), self.eval_split.x, self.eval_split.y, ds.num_classes)
        self.artifact("evalset", None, "evalset.bin", extra={"count": n_eval, "numClasses": ds.num_classes,
                                                              **({"classNames": ds.class_names} if ds.class_names else {})})

        self.plan = self.make_plan(ds)
        self.preflight(ds)
        teacher = self.teacher(ds, sel)
        if spec.training.student_hard_epochs > 0:
            self.student_hard(ds, sel)
        student = self.distill(ds, sel, teacher)
        student = self.choose_student(ds, sel, student)
        self.artifact("student-fp32", student, "student-fp32.onnx")
        for recipe in spec.recipes:
            self.recipe(ds, sel, student, teacher, recipe)

        self.durations["total"] = time.time() - t_start
        result = {"type": "result", "jobId": spec.job_id, "metrics": self.metrics,
                  "diagnostics": self.diagnostics, "warnings": self.warnings,
                  "versions": _versions(), "durations": self.durations,
                  "dataset": self.dataset_info,
                  "artifacts": [{k: a[k] for k in ("kind", "file", "recipeId", "sha256", "sizeBytes") if k in a}
                                for a in self.artifacts]}
        meta = dict(result)
        meta.pop("type")
        meta["spec"] = spec.raw
        meta["artifacts"] = self.artifacts
        meta["device"] = str(self.device)
        with open(os.path.join(self.out, "metadata.json"), "w") as f:
            json.dump(meta, f, indent=2, allow_nan=False, default=_json_default)
        return result

    def teacher(self, ds: Dataset, sel: Split) -> nn.Module:
        t = self.spec.teacher
        c = ds.input_shape[0]
        if t.kind == "torchscript":
            assert t.path
            model = self.ts_teacher if self.ts_teacher is not None else load_torchscript(t.path, self.device)
            self.durations["teacher"] = 0.0
        else:
            self.seed(0)
            model = build_teacher(t.arch, t.width, ds.num_classes, c, t.depth).to(self.device)
            self.log("info", f"teacher {t.arch} width {t.width} depth {t.depth}: {count_params(model)} parameters")
            secs, _ = train(model, Phase("teacher", t.epochs, self.spec.training.lr), ds.train, sel,
                            seed=self.spec.seed, **self._train_kwargs())
            self.durations["teacher"] = secs
        model.eval()
        for p in model.parameters():
            p.requires_grad_(False)
        self.metrics["teacherFp32"] = accuracy(model, ds.test, self.device)
        try:
            self.artifact("teacher-fp32", model, "teacher-fp32.onnx")
        except Exception as e:  # a TorchScript teacher may not export; the job goes on without its ONNX
            self.log("warn", f"teacher ONNX export failed: {type(e).__name__}: {e}")
        return model

    def student_hard(self, ds: Dataset, sel: Split) -> None:
        model = self.new_student(ds)
        secs, _ = train(model, Phase("student-hard", self.spec.training.student_hard_epochs, self.spec.training.lr),
                        ds.train, sel, seed=self.spec.seed + 2, **self._train_kwargs())
        self.durations["studentHard"] = secs
        self.metrics["studentHardFp32"] = accuracy(model, ds.test, self.device)
        self.artifact("student-hard-fp32", model, "student-hard-fp32.onnx")
        model.eval()
        self.hard_student = model

    def distill(self, ds: Dataset, sel: Split, teacher: nn.Module) -> nn.Module:
        d = self.spec.distill
        model = self.new_student(ds)
        self.log("info", f"student {self.spec.student.arch if self.spec.student.kind == 'zoo' else self.spec.student.path}"
                 f": {count_params(model)} parameters")
        secs, _ = train(model, Phase("distill", d.epochs, self.spec.training.lr), ds.train, sel,
                        seed=self.spec.seed + 3, teacher=teacher, temperature=d.temperature, alpha=d.alpha,
                        **self._train_kwargs())
        self.durations["distill"] = secs
        model.eval()
        self.metrics["studentFp32"] = accuracy(model, ds.test, self.device)
        return model

    def choose_student(self, ds: Dataset, sel: Split, distilled: nn.Module) -> nn.Module:
        """Distillation is meant to beat hard labels; when it does not (a weak teacher, a bad
        temperature), say so and let the better student go forward to quantization. Decided on the
        selection split (validation, else test); studentFp32 is then the chosen student's test accuracy."""
        self.metrics["studentDistilledFp32"] = self.metrics["studentFp32"]
        self.metrics["studentChosen"] = "distilled"
        if self.hard_student is None:
            return distilled
        d_sel = accuracy(distilled, sel, self.device)
        h_sel = accuracy(self.hard_student, sel, self.device)
        if h_sel <= d_sel:
            return distilled
        split = "validation" if ds.val is not None else "test"
        self.metrics["studentChosen"] = "hard-label"
        self.metrics["studentFp32"] = self.metrics["studentHardFp32"]
        self.warn("distillation-worse-than-hard-labels",
                  f"the distilled student is worse than the hard-label one: {d_sel:.1%} vs {h_sel:.1%} on the {split} split "
                  f"(test: {self.metrics['studentDistilledFp32']:.1%} vs {self.metrics['studentHardFp32']:.1%}); "
                  f"the hard-label student goes forward to quantization. Check the teacher's accuracy "
                  f"({self.metrics.get('teacherFp32', float('nan')):.1%}), distill.temperature and distill.alpha",
                  distilledSelection=d_sel, hardLabelSelection=h_sel)
        return self.hard_student

    # ------------------------------------------------------------------ preflight
    def preflight(self, ds: Dataset) -> None:
        """Teacher and student take the dataset's input and give its class count: checked on two
        samples before any training, so a mismatch is a bad-spec error naming the field in seconds,
        not an internal traceback minutes into a phase."""
        x = to_input(torch.from_numpy(ds.train.x[:2].copy())).to(self.device)
        t = self.spec.teacher
        if t.kind == "torchscript":
            assert t.path
            self.ts_teacher = load_torchscript(t.path, self.device)
            self._check_model(self.ts_teacher, x, ds, "teacher.path", f"TorchScript teacher {t.path}")
        else:
            self.seed(0)
            self._check_model(build_teacher(t.arch, t.width, ds.num_classes, ds.input_shape[0], t.depth).to(self.device),
                              x, ds, "teacher.arch", f"zoo teacher {t.arch}")
        s = self.spec.student
        self._check_model(self.new_student(ds), x, ds, "student.path" if s.kind == "file" else "student.arch",
                          f"student {s.path if s.kind == 'file' else s.arch}")

    def _check_model(self, model: nn.Module, x: torch.Tensor, ds: Dataset, field: str, what: str) -> None:
        shape = [1] + list(ds.input_shape)
        try:
            with torch.no_grad():
                out = model.eval()(x)
        except Exception as e:  # noqa: BLE001 - any failure here is the model not fitting the data
            first = f"{type(e).__name__}: {e}".strip().splitlines()[0][:300]
            raise bad_spec(f"{field}: the {what} does not accept the dataset's input {shape} "
                           f"({ds.name}, {ds.num_classes} classes): {first}", field)
        if not isinstance(out, torch.Tensor) or out.ndim != 2 or out.shape[0] != x.shape[0]:
            got = list(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
            raise bad_spec(f"{field}: the {what} returns {got} for a batch of {x.shape[0]} inputs {shape}; "
                           f"expected logits [batch, {ds.num_classes}]", field)
        if out.shape[1] != ds.num_classes:
            raise bad_spec(f"{field}: the {what} outputs {out.shape[1]} classes; the dataset ({ds.name}) has "
                           f"{ds.num_classes}", field)

    def calib_batches(self, ds: Dataset, n: int) -> List[torch.Tensor]:
        gen = torch.Generator().manual_seed(self.spec.seed + 7)
        out = []
        for x, _ in batches(ds.train, self.spec.training.batch_size, device=self.device, shuffle=True, gen=gen):
            out.append(x)
            if len(out) >= n:
                break
        return out

    def recipe(self, ds: Dataset, sel: Split, student: nn.Module, teacher: nn.Module, recipe: Recipe) -> None:
        spec = self.spec
        opset = min(recipe.opset, MAX_TORCH_OPSET)
        if opset != recipe.opset:
            self.log("warn", f"recipe {recipe.id}: opset {recipe.opset} exported as {opset} (torch exporter limit)")
        rm: Dict[str, Any] = {"qatInt8": None, "ptqInt8": None, "floatLayers": []}
        self.metrics["recipes"][recipe.id] = rm
        durations: Dict[str, float] = {}
        self.durations.setdefault("recipes", {})[recipe.id] = durations
        fp32_sel = accuracy(student, sel, self.device)

        if spec.ptq.enabled:
            t0 = time.time()
            ptq, _ = prepare(student, recipe, fold_bn_now=True)
            calibrate(ptq, self.calib_batches(ds, spec.ptq.calibration_batches))
            rm["ptqInt8"] = accuracy(ptq, ds.test, self.device)
            durations["ptq"] = time.time() - t0
            emit({"type": "progress", "phase": "ptq", "recipeId": recipe.id, "epoch": 1, "epochs": 1, "step": 1,
                  "totalSteps": 1, "loss": None, "accuracy": accuracy(ptq, sel, self.device), "lr": None,
                  "etaSeconds": 0, "jobId": spec.job_id, **self._job_eta_before(phase_key("qat", recipe.id))})
            self.artifact("student-int8-ptq", ptq, f"student-int8-ptq-{recipe.id}.onnx", quantized=True,
                          recipe=recipe, opset=opset)

        t0 = time.time()
        q = spec.qat
        fold_now = q.freeze_bn_after_epochs <= 0 or q.epochs == 0
        qat, plan = prepare(student, recipe, fold_bn_now=fold_now)
        qat.to(self.device)
        if plan.unquantized_ops:
            kinds: Dict[str, int] = {}
            for op in plan.unquantized_ops:
                kinds[op.split(" ")[0]] = kinds.get(op.split(" ")[0], 0) + 1
            summary = ", ".join(f"{k} x{n}" for k, n in kinds.items())
            self.warn("ops-kept-float",
                      f"recipe {recipe.id}: {len(plan.unquantized_ops)} ops kept in float because the recipe has no int8 "
                      f"form for them ({summary}: {', '.join(plan.unquantized_ops[:8])}"
                      f"{'...' if len(plan.unquantized_ops) > 8 else ''}); each runs between a DequantizeLinear and a "
                      f"QuantizeLinear, in float", recipeId=recipe.id, ops=plan.unquantized_ops)
        calibrate_first = self.calib_batches(ds, min(4, spec.ptq.calibration_batches))
        with torch.no_grad():  # start from PTQ ranges, then let QAT move them
            qat.eval()
            for x in calibrate_first:
                qat(x)
        state = {"bn_folded": fold_now, "observers": True}

        def on_step(epoch_f: float) -> Optional[nn.Module]:
            changed = None
            if not state["bn_folded"] and epoch_f >= q.freeze_bn_after_epochs:
                fold_all_bn(qat)
                state["bn_folded"] = True
                changed = qat
                self.log("info", f"recipe {recipe.id}: BN folded into conv at epoch {epoch_f:.2f}")
            if state["observers"] and epoch_f >= q.freeze_observers_after_epochs:
                set_act_observers(qat, False)
                state["observers"] = False
                self.log("info", f"recipe {recipe.id}: activation observers frozen at epoch {epoch_f:.2f}")
            return changed

        train(qat, Phase("qat", q.epochs, q.lr, recipe.id), ds.train, sel, seed=spec.seed + 11,
              teacher=teacher, temperature=spec.distill.temperature, alpha=spec.distill.alpha,
              on_step=on_step, **self._train_kwargs())
        finalize(qat)
        durations["qat"] = time.time() - t0
        q_sel = accuracy(qat, sel, self.device)

        t0 = time.time()
        calib = self.calib_batches(ds, 1)[0][:256]
        report = layer_report(qat, calib)
        outliers = [r["layer"] for r in report if r["outlier"]]
        diag: Dict[str, Any] = {"layers": report, "outlierLayers": outliers,
                                "quantizedLayers": plan.quantized_layers, "floatLayers": plan.float_layers}
        if spec.mixed_precision.enabled:
            qat, info = mixed_precision(
                qat, recipe, report, fp32_accuracy=fp32_sel, quant_accuracy=q_sel,
                max_drop=spec.mixed_precision.max_accuracy_drop,
                max_float_layers=spec.mixed_precision.max_float_layers,
                calib=lambda: self.calib_batches(ds, spec.ptq.calibration_batches),
                evaluate=lambda m: accuracy(m, sel, self.device))
            diag["mixedPrecision"] = info
            rm["floatLayers"] = info["floatLayers"]
        elif recipe.keep_float_layers > 0:
            qat, floats = keep_most_sensitive_float(
                qat, recipe, report, recipe.keep_float_layers,
                calib=lambda: self.calib_batches(ds, spec.ptq.calibration_batches))
            diag["floatLayers"] = sorted(set(plan.float_layers) | set(floats))
            rm["floatLayers"] = floats
        durations["diagnostics"] = time.time() - t0
        self.diagnostics[recipe.id] = diag
        rm["qatInt8"] = accuracy(qat, ds.test, self.device)
        rm["fp32Selection"] = fp32_sel
        self.artifact("student-int8-qat", qat, f"student-int8-qat-{recipe.id}.onnx", quantized=True,
                      recipe=recipe, opset=opset, extra={"floatLayers": rm["floatLayers"]})


def _json_default(o: Any) -> Any:
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o)
    return str(o)


def _read_spec(arg: Optional[str]) -> Any:
    try:
        if arg is None or arg == "-":
            text = sys.stdin.read()
        else:
            with open(arg) as f:
                text = f.read()
    except OSError as e:
        raise TrainerError("bad-spec", f"cannot read spec {arg}: {e}")
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise TrainerError("bad-spec", f"spec is not valid JSON: {e}")


def _on_sigterm(_signum: int, _frame: Any) -> None:
    raise KeyboardInterrupt


def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(prog="edgefleet-trainer", description=__doc__)
    ap.add_argument("--spec", help="job spec JSON file, or - for stdin (default: stdin)")
    args = ap.parse_args(argv)
    signal.signal(signal.SIGTERM, _on_sigterm)
    job_id: Optional[str] = None
    try:
        raw = _read_spec(args.spec)
        if isinstance(raw, dict) and isinstance(raw.get("jobId"), str):
            job_id = raw["jobId"]
        spec = parse_spec(raw)
        torch.set_num_threads(spec.threads or max(1, os.cpu_count() or 1))
        torch.set_flush_denormal(True)  # denormals made CPU QAT steps up to 10x slower here
        emit(Job(spec).run())
        return 0
    except TrainerError as e:
        _error(e.code, e.message, job_id, e.field)
        return 2
    except KeyboardInterrupt:
        _error("cancelled", "cancelled by signal", job_id)
        return 130
    except (torch.cuda.OutOfMemoryError if hasattr(torch.cuda, "OutOfMemoryError") else MemoryError,
            MemoryError) as e:  # type: ignore[misc]
        _error("out-of-memory", f"{type(e).__name__}: {e}".splitlines()[0][:500], job_id)
        return 3
    except RuntimeError as e:
        if "out of memory" in str(e).lower():
            _error("out-of-memory", str(e).splitlines()[0][:500], job_id)
            return 3
        _internal(e, job_id)
        return 1
    except Exception as e:  # noqa: BLE001 - the contract: one error line, never a bare traceback
        _internal(e, job_id)
        return 1


def _error(code: str, message: str, job_id: Optional[str], field: Optional[str] = None) -> None:
    line: Dict[str, Any] = {"type": "error", "code": code, "message": message}
    if field is not None:
        line["field"] = field
    if job_id is not None:
        line["jobId"] = job_id
    emit(line)


def _internal(e: BaseException, job_id: Optional[str]) -> None:
    sys.stderr.write(traceback.format_exc())
    _error("internal", f"{type(e).__name__}: {e}".splitlines()[0][:500], job_id)
