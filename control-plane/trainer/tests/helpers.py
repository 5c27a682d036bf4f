import copy
from typing import Any, Dict

X86 = {"id": "x86-64-vnni", "format": "qdq", "opset": 13,
       "activations": {"dtype": "uint8", "symmetric": False, "granularity": "per-tensor"},
       "weights": {"dtype": "int8", "symmetric": True, "granularity": "per-channel", "axis": 0},
       "reduceRange": False}
JETSON = {"id": "jetson-trt-int8", "format": "qdq", "opset": 13,
          "activations": {"dtype": "int8", "symmetric": True, "granularity": "per-tensor"},
          "weights": {"dtype": "int8", "symmetric": True, "granularity": "per-channel", "axis": 0},
          "quantizeResidualAdd": True}
ARM = {"id": "armv82-dotprod", "format": "qdq", "opset": 13,
       "activations": {"dtype": "int8", "symmetric": False, "granularity": "per-tensor"},
       "weights": {"dtype": "int8", "symmetric": True, "granularity": "per-channel", "axis": 0}}
GENERIC = {"id": "generic-cpu", "format": "qdq", "opset": 13,
           "activations": {"dtype": "uint8", "symmetric": False, "granularity": "per-tensor"},
           "weights": {"dtype": "int8", "symmetric": True, "granularity": "per-tensor", "axis": 0},
           "reduceRange": True}


def base_spec(**over: Any) -> Dict[str, Any]:
    spec: Dict[str, Any] = {
        "jobId": "t1", "outputDir": "/tmp/edgefleet-test", "device": "cpu", "seed": 0,
        "dataset": {"kind": "fashion-mnist"}, "validationSplit": 0.1,
        "teacher": {"kind": "zoo", "arch": "resnet-teacher", "width": 0.25, "epochs": 1},
        "student": {"kind": "zoo", "arch": "compact-cnn", "width": 0.5},
        "training": {"batchSize": 32, "lr": 0.05, "optimizer": "sgd"},
        "distill": {"temperature": 4.0, "alpha": 0.7, "epochs": 1},
        "qat": {"epochs": 1, "freezeObserversAfterEpochs": 1, "freezeBnAfterEpochs": 0.5},
        "ptq": {"enabled": True, "calibrationBatches": 2},
        "recipes": [copy.deepcopy(X86)],
        "evalSetSize": 100,
    }
    spec.update(over)
    return spec
