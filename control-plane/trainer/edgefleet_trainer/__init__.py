"""EdgeFleet trainer: distill a teacher into a small student, QAT per recipe, export int8 ONNX."""

TRAINER_VERSION = "0.1.0"
