"""The training job spec: parsed and validated once, typed after that (mirrors shared/training.ts)."""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

from .datasets import Augment, DatasetSpec
from .errors import bad_spec

TEACHER_ARCHS = ("resnet-teacher", "torchvision-resnet18", "torchvision-mobilenet_v2")
STUDENT_ARCHS = ("compact-cnn", "mobilenetv2-mini")


@dataclass
class Recipe:
    id: str
    opset: int
    act_dtype: str  # "int8" | "uint8"
    act_symmetric: bool
    weight_per_channel: bool
    weight_axis: int
    reduce_range: bool
    quantize_residual_add: bool
    float_ops: List[str]
    keep_fp32_fallback: bool
    raw: Dict[str, Any]
    # tuning variants: the k lowest-SQNR layers of the diagnostics kept in float (0: none)
    keep_float_layers: int = 0


@dataclass
class TeacherSpec:
    kind: str  # zoo | torchscript
    arch: str = "resnet-teacher"
    width: float = 1.0
    epochs: int = 1
    depth: int = 2
    path: Optional[str] = None


@dataclass
class StudentSpec:
    kind: str  # zoo | file
    arch: str = "compact-cnn"
    width: float = 1.0
    path: Optional[str] = None


@dataclass
class TrainingSpec:
    batch_size: int = 128
    lr: float = 0.05
    optimizer: str = "sgd"  # sgd | adamw
    weight_decay: float = 5e-4
    # None: the dataset's default (data.resolve_augment); True/False; or an Augment
    augment: Any = None
    student_hard_epochs: int = 0


@dataclass
class DistillSpec:
    temperature: float = 4.0
    alpha: float = 0.7
    epochs: int = 1


@dataclass
class QatSpec:
    epochs: int = 1
    lr: float = 0.005
    freeze_observers_after_epochs: float = 1.0
    freeze_bn_after_epochs: float = 0.5


@dataclass
class PtqSpec:
    enabled: bool = True
    calibration_batches: int = 8


@dataclass
class MixedPrecisionSpec:
    enabled: bool = False
    max_accuracy_drop: float = 0.01
    max_float_layers: int = 4


@dataclass
class JobSpec:
    job_id: str
    output_dir: str
    device: str
    seed: int
    dataset: DatasetSpec
    train_samples: Optional[int]
    test_samples: Optional[int]
    validation_split: float
    teacher: TeacherSpec
    student: StudentSpec
    training: TrainingSpec
    distill: DistillSpec
    qat: QatSpec
    ptq: PtqSpec
    recipes: List[Recipe]
    mixed_precision: MixedPrecisionSpec
    eval_set_size: int
    threads: Optional[int] = None
    raw: Dict[str, Any] = field(default_factory=dict)


class _Reader:
    """Typed access to one JSON object with error messages that name the field path."""

    def __init__(self, obj: Any, where: str) -> None:
        if not isinstance(obj, dict):
            raise bad_spec(f"{where or 'spec'}: expected an object, got {type(obj).__name__}")
        self.obj = obj
        self.where = where
        self.seen: set = set()

    def _path(self, key: str) -> str:
        return f"{self.where}.{key}" if self.where else key

    def has(self, key: str) -> bool:
        return key in self.obj and self.obj[key] is not None

    def raw(self, key: str, default: Any = None, required: bool = False) -> Any:
        self.seen.add(key)
        if key not in self.obj or self.obj[key] is None:
            if required:
                raise bad_spec(f"{self._path(key)}: required")
            return default
        return self.obj[key]

    def str(self, key: str, default: Optional[str] = None, required: bool = False,
            choices: Optional[tuple] = None, pattern: Optional[str] = None) -> Any:
        v = self.raw(key, default, required)
        if v is None:
            return None
        if not isinstance(v, str) or not v:
            raise bad_spec(f"{self._path(key)}: expected a non-empty string")
        if choices is not None and v not in choices:
            raise bad_spec(f"{self._path(key)}: must be one of {', '.join(choices)} (got {v!r})")
        if pattern is not None and not re.fullmatch(pattern, v):
            raise bad_spec(f"{self._path(key)}: {v!r} does not match {pattern}")
        return v

    def int(self, key: str, default: Optional[int] = None, required: bool = False,
            lo: Optional[int] = None, hi: Optional[int] = None) -> Any:
        v = self.raw(key, default, required)
        if v is None:
            return None
        if isinstance(v, bool) or not isinstance(v, int):
            if isinstance(v, float) and v.is_integer():
                v = int(v)
            else:
                raise bad_spec(f"{self._path(key)}: expected an integer, got {v!r}")
        if lo is not None and v < lo:
            raise bad_spec(f"{self._path(key)}: must be >= {lo} (got {v})")
        if hi is not None and v > hi:
            raise bad_spec(f"{self._path(key)}: must be <= {hi} (got {v})")
        return v

    def num(self, key: str, default: Optional[float] = None, required: bool = False,
            lo: Optional[float] = None, hi: Optional[float] = None, lo_open: bool = False) -> Any:
        v = self.raw(key, default, required)
        if v is None:
            return None
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise bad_spec(f"{self._path(key)}: expected a number, got {v!r}")
        v = float(v)
        if lo is not None and (v < lo or (lo_open and v == lo)):
            raise bad_spec(f"{self._path(key)}: must be {'>' if lo_open else '>='} {lo} (got {v})")
        if hi is not None and v > hi:
            raise bad_spec(f"{self._path(key)}: must be <= {hi} (got {v})")
        return v

    def bool(self, key: str, default: Optional[bool] = None, required: bool = False) -> Any:
        v = self.raw(key, default, required)
        if v is None:
            return None
        if not isinstance(v, bool):
            raise bad_spec(f"{self._path(key)}: expected true or false, got {v!r}")
        return v

    def sub(self, key: str, required: bool = False) -> Optional["_Reader"]:
        v = self.raw(key, None, required)
        if v is None:
            return None
        return _Reader(v, self._path(key))

    def strict(self, allowed: Optional[set] = None) -> None:
        extra = set(self.obj) - (allowed if allowed is not None else self.seen)
        if extra:
            raise bad_spec(f"{self.where or 'spec'}: unknown field(s) {', '.join(sorted(extra))}")


def parse_recipe(obj: Any, where: str) -> Recipe:
    r = _Reader(obj, where)
    rid = r.str("id", required=True, pattern=r"[a-z0-9][a-z0-9-]*")
    fmt = r.str("format", required=True)
    if fmt != "qdq":
        raise bad_spec(f"{where}.format: only 'qdq' is supported (got {fmt!r})")
    opset = r.int("opset", required=True, lo=13, hi=21)
    a = r.sub("activations", required=True)
    assert a is not None
    act_dtype = a.str("dtype", required=True, choices=("int8", "uint8"))
    act_sym = a.bool("symmetric", required=True)
    a.str("granularity", required=True, choices=("per-tensor",))
    a.strict()
    w = r.sub("weights", required=True)
    assert w is not None
    w.str("dtype", required=True, choices=("int8",))
    if w.bool("symmetric", required=True) is not True:
        raise bad_spec(f"{where}.weights.symmetric: must be true")
    gran = w.str("granularity", required=True, choices=("per-channel", "per-tensor"))
    axis = w.int("axis", default=0, lo=0)
    if axis != 0:
        raise bad_spec(f"{where}.weights.axis: only 0 (output channels) is supported")
    w.strict()
    float_ops = r.raw("floatOps", [])
    if not isinstance(float_ops, list) or not all(isinstance(s, str) and s for s in float_ops):
        raise bad_spec(f"{where}.floatOps: expected a list of op type names")
    recipe = Recipe(
        id=rid, opset=opset, act_dtype=act_dtype, act_symmetric=act_sym,
        weight_per_channel=gran == "per-channel", weight_axis=axis,
        reduce_range=r.bool("reduceRange", default=False),
        quantize_residual_add=r.bool("quantizeResidualAdd", default=True),
        float_ops=list(float_ops),
        keep_fp32_fallback=r.bool("keepFp32Fallback", default=False),
        raw=dict(obj),
        keep_float_layers=r.int("keepFloatLayers", default=0, lo=0, hi=16),
    )
    r.strict()
    return recipe


def _hw(d: _Reader, key: str) -> Optional[tuple]:
    v = d.raw(key)
    if v is None:
        return None
    if (not isinstance(v, list) or len(v) != 2
            or not all(isinstance(x, int) and not isinstance(x, bool) and 8 <= x <= 4096 for x in v)):
        raise bad_spec(f"dataset.{key}: expected [H, W], integers 8..4096")
    return (v[0], v[1])


def _channels(d: _Reader) -> Optional[int]:
    v = d.int("channels")
    if v is not None and v not in (1, 3):
        raise bad_spec(f"dataset.channels: 1 (grey) or 3 (RGB), got {v}")
    return v


def _augment(tr: _Reader) -> Any:
    v = tr.raw("augment")
    if v is None or isinstance(v, bool):
        return v
    a = tr.sub("augment")
    assert a is not None
    out = Augment(translate=a.int("translate", default=0, lo=0, hi=8), flip=a.bool("flip", default=False))
    a.strict()
    return out


def parse_dataset(d: Optional[_Reader]) -> DatasetSpec:
    """The `dataset` object of a job spec (also what the control plane's submit-time inspection sends)."""
    assert d is not None
    kind = d.str("kind", required=True, choices=("fashion-mnist", "npz", "idx", "imagefolder", "csv"))
    if kind == "fashion-mnist":
        ds = DatasetSpec(kind, path=d.str("path"))
    elif kind == "npz":
        ds = DatasetSpec(kind, path=d.str("path", required=True),
                         layout=d.str("layout", default="auto", choices=("auto", "nchw", "nhwc")))
    elif kind == "imagefolder":
        ds = DatasetSpec(kind, path=d.str("path", required=True), test_path=d.str("testPath"),
                         image_size=_hw(d, "imageSize"), channels=_channels(d))
    elif kind == "csv":
        shape = d.raw("imageShape")
        if shape is not None and (not isinstance(shape, list) or len(shape) not in (2, 3)
                                  or not all(isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= 4096 for v in shape)):
            raise bad_spec("dataset.imageShape: expected [H, W] or [C, H, W] of positive integers")
        ds = DatasetSpec(kind, path=d.str("path", required=True), test_path=d.str("testPath"),
                         label_column=d.str("labelColumn", default="label"), image_column=d.str("imageColumn"),
                         image_shape=tuple(shape) if shape else None, image_size=_hw(d, "imageSize"),
                         channels=_channels(d))
    else:
        ds = DatasetSpec(kind, train_images=d.str("trainImages", required=True),
                         train_labels=d.str("trainLabels", required=True),
                         test_images=d.str("testImages", required=True),
                         test_labels=d.str("testLabels", required=True))
    d.strict()
    return ds


def parse_spec(obj: Any) -> JobSpec:
    r = _Reader(obj, "")
    job_id = r.str("jobId", required=True, pattern=r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
    output_dir = r.str("outputDir", required=True)
    device = r.str("device", default="auto", choices=("auto", "cpu", "cuda"))
    seed = r.int("seed", default=0, lo=0)
    threads = r.int("threads", default=None, lo=1, hi=256)

    ds = parse_dataset(r.sub("dataset", required=True))

    lim = r.sub("limits")
    train_samples = test_samples = None
    if lim is not None:
        train_samples = lim.int("trainSamples", lo=1)
        test_samples = lim.int("testSamples", lo=1)
        lim.strict()
    val_split = r.num("validationSplit", default=0.0, lo=0.0, hi=0.5)

    t = r.sub("teacher", required=True)
    assert t is not None
    tkind = t.str("kind", required=True, choices=("zoo", "torchscript"))
    if tkind == "zoo":
        teacher = TeacherSpec("zoo", arch=t.str("arch", default="resnet-teacher", choices=TEACHER_ARCHS),
                              width=t.num("width", default=1.0, lo=0.0, hi=8.0, lo_open=True),
                              epochs=t.int("epochs", default=1, lo=0),
                              depth=t.int("depth", default=2, lo=1, hi=8))
    else:
        teacher = TeacherSpec("torchscript", path=t.str("path", required=True), epochs=0)
    t.strict()

    s = r.sub("student", required=True)
    assert s is not None
    skind = s.str("kind", required=True, choices=("zoo", "file"))
    if skind == "zoo":
        student = StudentSpec("zoo", arch=s.str("arch", default="compact-cnn", choices=STUDENT_ARCHS),
                              width=s.num("width", default=1.0, lo=0.0, hi=8.0, lo_open=True))
    else:
        path = s.str("path", required=True)
        if not re.fullmatch(r".+\.py:[A-Za-z_][A-Za-z0-9_]*", path):
            raise bad_spec(f"student.path: expected 'file.py:ClassName' (got {path!r})")
        student = StudentSpec("file", path=path, width=s.num("width", default=1.0, lo=0.0, lo_open=True))
    s.strict()

    tr = r.sub("training", required=True)
    assert tr is not None
    training = TrainingSpec(
        batch_size=tr.int("batchSize", default=128, lo=1, hi=65536),
        lr=tr.num("lr", default=0.05, lo=0.0, hi=10.0, lo_open=True),
        optimizer=tr.str("optimizer", default="sgd", choices=("sgd", "adamw")),
        weight_decay=tr.num("weightDecay", default=5e-4, lo=0.0, hi=1.0),
        augment=_augment(tr),
        student_hard_epochs=tr.int("studentHardEpochs", default=0, lo=0),
    )
    tr.strict()

    di = r.sub("distill", required=True)
    assert di is not None
    distill = DistillSpec(temperature=di.num("temperature", default=4.0, lo=0.0, hi=100.0, lo_open=True),
                          alpha=di.num("alpha", default=0.7, lo=0.0, hi=1.0),
                          epochs=di.int("epochs", default=1, lo=0))
    di.strict()

    q = r.sub("qat", required=True)
    assert q is not None
    qat = QatSpec(epochs=q.int("epochs", default=1, lo=0),
                  lr=q.num("lr", default=training.lr * 0.1, lo=0.0, lo_open=True),
                  freeze_observers_after_epochs=q.num("freezeObserversAfterEpochs", default=1.0, lo=0.0),
                  freeze_bn_after_epochs=q.num("freezeBnAfterEpochs", default=0.5, lo=0.0))
    q.strict()

    p = r.sub("ptq")
    ptq = PtqSpec()
    if p is not None:
        ptq = PtqSpec(enabled=p.bool("enabled", default=True),
                      calibration_batches=p.int("calibrationBatches", default=8, lo=1))
        p.strict()

    rec_raw = r.raw("recipes", required=True)
    if not isinstance(rec_raw, list) or not rec_raw:
        raise bad_spec("recipes: expected a non-empty list of recipes")
    recipes = [parse_recipe(x, f"recipes[{i}]") for i, x in enumerate(rec_raw)]
    ids = [x.id for x in recipes]
    if len(set(ids)) != len(ids):
        raise bad_spec(f"recipes: duplicate recipe ids {ids}")

    mp = r.sub("mixedPrecision")
    mixed = MixedPrecisionSpec()
    if mp is not None:
        mixed = MixedPrecisionSpec(enabled=mp.bool("enabled", default=False),
                                   max_accuracy_drop=mp.num("maxAccuracyDrop", default=0.01, lo=0.0, hi=1.0),
                                   max_float_layers=mp.int("maxFloatLayers", default=4, lo=0))
        mp.strict()

    eval_set_size = r.int("evalSetSize", default=1000, lo=1, hi=1_000_000)
    r.strict()
    return JobSpec(job_id=job_id, output_dir=output_dir, device=device, seed=seed, dataset=ds,
                   train_samples=train_samples, test_samples=test_samples, validation_split=val_split,
                   teacher=teacher, student=student, training=training, distill=distill, qat=qat,
                   ptq=ptq, recipes=recipes, mixed_precision=mixed, eval_set_size=eval_set_size,
                   threads=threads, raw=dict(obj))
