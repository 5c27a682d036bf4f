#!/usr/bin/env python3
"""Kernel bench export: torchvision resnet18 / mobilenet_v2 at 224x224 (random init, calibrated on
random data) through the trainer's own QDQ pipeline, fp32 + one int8 model per CPU recipe.
Writes <out>/manifest.json. Run by bench/kernel-bench.ts."""
import argparse
import json
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "control-plane", "trainer"))

import torch  # noqa: E402

from edgefleet_trainer.export import export_onnx  # noqa: E402
from edgefleet_trainer.models import torchvision_model  # noqa: E402
from edgefleet_trainer.qat import calibrate, prepare  # noqa: E402
from edgefleet_trainer.spec import parse_recipe  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--recipes", required=True, help="JSON list of {label, recipe}")
    ap.add_argument("--archs", default="resnet18,mobilenet_v2")
    ap.add_argument("--calib-batches", type=int, default=4)
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    torch.set_num_threads(os.cpu_count() or 1)
    torch.set_flush_denormal(True)
    variants = json.loads(args.recipes)
    manifest = []
    for arch in args.archs.split(","):
        torch.manual_seed(0)
        model = torchvision_model(arch, 1000, 3, small_input=False).eval()
        fp32 = os.path.join(args.out, f"{arch}-fp32.onnx")
        export_onnx(model, (3, 224, 224), fp32)
        manifest.append({"arch": arch, "variant": "fp32", "file": os.path.basename(fp32)})
        gen = torch.Generator().manual_seed(1)
        calib = [torch.rand(8, 3, 224, 224, generator=gen) for _ in range(args.calib_batches)]
        for v in variants:
            t0 = time.time()
            recipe = parse_recipe(v["recipe"], v["label"])
            gm, plan = prepare(model, recipe, fold_bn_now=True)
            calibrate(gm, calib)
            path = os.path.join(args.out, f"{arch}-{v['label']}.onnx")
            export_onnx(gm, (3, 224, 224), path, quantized=True)
            manifest.append({"arch": arch, "variant": v["label"], "recipeId": recipe.id, "file": os.path.basename(path),
                             "quantizedLayers": len(plan.quantized_layers), "floatLayers": plan.float_layers,
                             "exportSeconds": time.time() - t0})
            print(json.dumps({"exported": path}), flush=True)
    with open(os.path.join(args.out, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
